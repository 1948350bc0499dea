"""Turn appPackage/ into the zip that Teams accepts, with the bot's app id filled in.

The manifest in appPackage/ is a template: the app id and the version are placeholders, because
each council registers its own Azure bot and the id must match the one the bot runs with. The
builder fills them in as JSON values (never by editing the text), then checks the limits Teams
enforces on upload, so an admin learns about a too-long name here rather than from a vague
"manifest is invalid" in the Teams admin centre.
"""

from __future__ import annotations

import copy
import json
import os
import re
import struct
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

APP_PACKAGE_DIR = Path(__file__).resolve().parent.parent / "appPackage"
MANIFEST_NAME = "manifest.json"

BOT_ID_PLACEHOLDER = "{{BOT_ID}}"
VERSION_PLACEHOLDER = "{{VERSION}}"

# Entra app ids are GUIDs written 8-4-4-4-12; Teams rejects braces and the 32-digit form.
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Teams wants major.minor.patch, numbers only, no leading zeros.
_VERSION = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_ACCENT = re.compile(r"^#[0-9a-fA-F]{6}$")

# Limits from the Teams app manifest schema (v1.22).
NAME_SHORT_MAX = 30
NAME_FULL_MAX = 100
DESCRIPTION_SHORT_MAX = 80
DESCRIPTION_FULL_MAX = 4000
DEVELOPER_NAME_MAX = 32
URL_MAX = 2048
VERSION_MAX = 256
COMMAND_LISTS_MAX = 3
COMMANDS_PER_LIST_MAX = 10
COMMAND_TITLE_MAX = 32
COMMAND_DESCRIPTION_MAX = 128
VALID_DOMAINS_MAX = 16
BOT_SCOPES = frozenset({"personal", "team", "groupChat", "copilot"})
ICON_SIZES = {"color": (192, 192), "outline": (32, 32)}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ManifestError(ValueError):
    """The rendered manifest or its icons break a rule Teams checks on upload.

    `problems` lists every problem found, so one run tells the admin everything to fix.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"Teams would reject this app package:\n{lines}")


def build_package(
    app_id: str,
    out: Path,
    *,
    version: str = "1.0.0",
    valid_domains: Sequence[str] = (),
    developer: Mapping[str, str] | None = None,
    template_dir: Path = APP_PACKAGE_DIR,
) -> Path:
    """Write the Teams app zip for `app_id` and return its path.

    `out` is the zip file to write; if it is an existing directory the zip is written inside it
    as colleague-questions-bot-<version>.zip. Nothing is written unless every check passes.

    Raises ValueError if `app_id` is empty or not a GUID, ManifestError (a ValueError) listing
    every problem if the manifest or icons would be rejected by Teams, and FileNotFoundError if
    the template or an icon is missing.
    """
    app_id = _checked_app_id(app_id)
    if isinstance(valid_domains, str):
        raise TypeError("valid_domains must be a sequence of domain names, not one string")

    template = json.loads((template_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    manifest = render_manifest(template, app_id, version=version, valid_domains=valid_domains, developer=developer)
    icons = _read_icons(manifest, template_dir)
    problems = check_manifest(manifest, icons)
    if problems:
        raise ManifestError(problems)

    if out.is_dir():
        out = out / f"colleague-questions-bot-{version}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    files = {MANIFEST_NAME: (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()}
    files.update(icons)
    _write_zip(out, files)
    return out


def render_manifest(
    template: Mapping[str, Any],
    app_id: str,
    *,
    version: str,
    valid_domains: Sequence[str] = (),
    developer: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return a copy of `template` with the placeholders replaced, the domains added and the
    developer's name and addresses (`name`, `websiteUrl`, `privacyUrl`, `termsOfUseUrl`) set.

    Placeholders are whole JSON string values, so the substitution cannot break the JSON or
    inject anything whatever the values contain.
    """
    values = {BOT_ID_PLACEHOLDER: app_id, VERSION_PLACEHOLDER: version}

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(item) for item in node]
        if isinstance(node, str):
            return values.get(node, node)
        return node

    manifest: dict[str, Any] = fill(copy.deepcopy(dict(template)))
    domains = list(manifest.get("validDomains", []))
    for domain in valid_domains:
        if domain not in domains:
            domains.append(domain)
    manifest["validDomains"] = domains
    if developer:
        manifest["developer"] = {**manifest.get("developer", {}), **developer}
    return manifest


def check_manifest(manifest: Mapping[str, Any], icons: Mapping[str, bytes]) -> list[str]:
    """Return every problem Teams would reject the package for; an empty list means it is fine.

    `icons` maps each icon file name in the manifest to its bytes.
    """
    problems: list[str] = []

    def length(path: str, value: Any, maximum: int, *, required: bool = True) -> None:
        if value is None and not required:
            return
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{path} is missing or empty")
        elif len(value) > maximum:
            problems.append(
                f"{path} {value!r} is {len(value)} characters; Teams allows at most {maximum}"
            )

    for path, value in _strings(manifest, ""):
        if "{{" in value:
            problems.append(f"{path} still holds the placeholder {value!r}")

    manifest_version = manifest.get("manifestVersion")
    schema = manifest.get("$schema", "")
    if not isinstance(manifest_version, str) or f"/v{manifest_version}/" not in schema:
        problems.append(
            f"manifestVersion {manifest_version!r} does not match $schema {schema!r}"
        )

    if not _GUID.match(str(manifest.get("id", ""))):
        problems.append(f"id {manifest.get('id')!r} is not a GUID")

    version = manifest.get("version")
    if not isinstance(version, str) or not _VERSION.match(version) or len(version) > VERSION_MAX:
        problems.append(
            f"version {version!r} must be three whole numbers without leading zeros, e.g. 1.0.0"
        )

    name = manifest.get("name") or {}
    length("name.short", name.get("short"), NAME_SHORT_MAX)
    length("name.full", name.get("full"), NAME_FULL_MAX, required=False)

    description = manifest.get("description") or {}
    length("description.short", description.get("short"), DESCRIPTION_SHORT_MAX)
    length("description.full", description.get("full"), DESCRIPTION_FULL_MAX)

    developer = manifest.get("developer") or {}
    length("developer.name", developer.get("name"), DEVELOPER_NAME_MAX)
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        url = developer.get(key)
        length(f"developer.{key}", url, URL_MAX)
        if isinstance(url, str) and url and not url.startswith("https://"):
            problems.append(f"developer.{key} {url!r} must start with https://")

    accent = manifest.get("accentColor")
    if not isinstance(accent, str) or not _ACCENT.match(accent):
        problems.append(f"accentColor {accent!r} must be a colour like #1F6E8C")

    problems.extend(_bot_problems(manifest.get("bots") or []))
    problems.extend(_domain_problems(manifest.get("validDomains") or []))
    problems.extend(_icon_problems(manifest.get("icons") or {}, icons))
    return problems


def png_size(data: bytes) -> tuple[int, int]:
    """Return (width, height) from a PNG's header; ValueError if `data` is not a PNG."""
    width, height, _ = _png_header(data)
    return width, height


def _checked_app_id(app_id: str) -> str:
    """The app id, stripped, or a ValueError saying what is wrong and where it comes from."""
    value = (app_id or "").strip()
    if not value:
        raise ValueError(
            "the bot's app id is empty: set MicrosoftAppId to the Application (client) id of the "
            "bot's Entra app registration before building the Teams package"
        )
    if not _GUID.match(value):
        raise ValueError(
            f"the bot's app id {value!r} is not a GUID: MicrosoftAppId must be the Application "
            "(client) id of the bot's Entra app registration, like "
            "00000000-0000-0000-0000-000000000000"
        )
    return value


def _bot_problems(bots: Sequence[Any]) -> list[str]:
    """Checks on the bots section: one bot, known scopes, command menus within limits."""
    if len(bots) != 1:
        return [f"bots must hold exactly one bot, not {len(bots)}"]
    problems: list[str] = []
    bot = bots[0]
    if not _GUID.match(str(bot.get("botId", ""))):
        problems.append(f"bots[0].botId {bot.get('botId')!r} is not a GUID")
    scopes = bot.get("scopes") or []
    unknown = [scope for scope in scopes if scope not in BOT_SCOPES]
    if not scopes or unknown:
        problems.append(f"bots[0].scopes {scopes!r} must be some of {sorted(BOT_SCOPES)}")

    command_lists = bot.get("commandLists") or []
    if len(command_lists) > COMMAND_LISTS_MAX:
        problems.append(
            f"bots[0].commandLists has {len(command_lists)} lists; Teams allows at most "
            f"{COMMAND_LISTS_MAX}"
        )
    for i, command_list in enumerate(command_lists):
        where = f"bots[0].commandLists[{i}]"
        list_scopes = command_list.get("scopes") or []
        stray = [scope for scope in list_scopes if scope not in scopes]
        if not list_scopes or stray:
            problems.append(f"{where}.scopes {list_scopes!r} must be among the bot's scopes")
        commands = command_list.get("commands") or []
        if not commands or len(commands) > COMMANDS_PER_LIST_MAX:
            problems.append(
                f"{where} has {len(commands)} commands; Teams needs 1 to {COMMANDS_PER_LIST_MAX}"
            )
        seen: set[str] = set()
        for j, command in enumerate(commands):
            title = command.get("title")
            for key, maximum in (("title", COMMAND_TITLE_MAX),
                                 ("description", COMMAND_DESCRIPTION_MAX)):
                value = command.get(key)
                path = f"{where}.commands[{j}].{key}"
                if not isinstance(value, str) or not value.strip():
                    problems.append(f"{path} is missing or empty")
                elif len(value) > maximum:
                    problems.append(
                        f"{path} {value!r} is {len(value)} characters; Teams allows at most "
                        f"{maximum}"
                    )
            if isinstance(title, str):
                if title.casefold() in seen:
                    problems.append(f"{where} lists the command {title!r} twice")
                seen.add(title.casefold())
    return problems


def _domain_problems(domains: Sequence[Any]) -> list[str]:
    """Teams wants bare host names (wildcards allowed), at most 16 of them."""
    problems: list[str] = []
    if len(domains) > VALID_DOMAINS_MAX:
        problems.append(
            f"validDomains has {len(domains)} entries; Teams allows at most {VALID_DOMAINS_MAX}"
        )
    for i, domain in enumerate(domains):
        if not isinstance(domain, str) or not domain or len(domain) > URL_MAX:
            problems.append(f"validDomains[{i}] {domain!r} must be a non-empty domain name")
        elif "://" in domain or any(ch.isspace() for ch in domain):
            problems.append(
                f"validDomains[{i}] {domain!r} must be a bare domain such as "
                "bot.example.org, without https:// or spaces"
            )
    return problems


def _icon_problems(names: Mapping[str, Any], icons: Mapping[str, bytes]) -> list[str]:
    """Both icons present at the zip root, real PNGs of the sizes Teams demands."""
    problems: list[str] = []
    for kind, (width, height) in ICON_SIZES.items():
        name = names.get(kind)
        if not isinstance(name, str) or not name:
            problems.append(f"icons.{kind} is missing")
            continue
        if "/" in name or "\\" in name:
            problems.append(f"icons.{kind} {name!r} must be a plain file name at the zip root")
            continue
        data = icons.get(name)
        if data is None:
            problems.append(f"icons.{kind} file {name!r} was not found")
            continue
        try:
            actual_width, actual_height, has_alpha = _png_header(data)
        except ValueError as exc:
            problems.append(f"icons.{kind} {name!r}: {exc}")
            continue
        if (actual_width, actual_height) != (width, height):
            problems.append(
                f"icons.{kind} {name!r} is {actual_width}x{actual_height}; Teams needs "
                f"{width}x{height}"
            )
        if kind == "outline" and not has_alpha:
            problems.append(
                f"icons.outline {name!r} has no transparency; Teams needs white on transparent"
            )
    return problems


def _png_header(data: bytes) -> tuple[int, int, bool]:
    """(width, height, has_alpha) from the PNG signature and IHDR chunk, without Pillow."""
    if len(data) < 33 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height, _depth, colour_type = struct.unpack(">IIBB", data[16:26])
    # Colour types 4 and 6 carry an alpha channel; others may add one with a tRNS chunk.
    return width, height, colour_type in (4, 6) or "tRNS" in _png_chunk_types(data)


def _png_chunk_types(data: bytes) -> set[str]:
    """The chunk types in a PNG, walking the chunk lengths rather than searching the bytes."""
    types: set[str] = set()
    offset = len(_PNG_SIGNATURE)
    while offset + 8 <= len(data):
        (size,) = struct.unpack(">I", data[offset:offset + 4])
        chunk_type = data[offset + 4:offset + 8].decode("latin-1")
        types.add(chunk_type)
        if chunk_type == "IEND":
            break
        offset += 12 + size  # length, type, data, CRC
    return types


def _read_icons(manifest: Mapping[str, Any], template_dir: Path) -> dict[str, bytes]:
    """The icon files the manifest names, read from the template folder."""
    icons: dict[str, bytes] = {}
    for name in (manifest.get("icons") or {}).values():
        if isinstance(name, str) and name and "/" not in name and "\\" not in name:
            path = template_dir / name
            if path.is_file():
                icons[name] = path.read_bytes()
    return icons


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string value in the manifest with a readable path, for placeholder checks."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def _write_zip(out: Path, files: Mapping[str, bytes]) -> None:
    """Write the zip beside `out`, then rename it over, so a failure never leaves half a zip.

    Fixed timestamps make the same inputs give the same bytes, which keeps rebuilds comparable.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=".teams-package-", suffix=".zip", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
            for name, data in files.items():
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it owner-only; the zip is not a secret
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
