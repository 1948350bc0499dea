"""Build the Teams app package (manifest plus icons, zipped) that admins upload to Teams."""

from __future__ import annotations

from teams_package.build import (
    APP_PACKAGE_DIR,
    ManifestError,
    build_package,
    check_manifest,
    png_size,
    render_manifest,
)

__all__ = [
    "APP_PACKAGE_DIR",
    "ManifestError",
    "build_package",
    "check_manifest",
    "png_size",
    "render_manifest",
]
