"""`cli.py teams`: the Teams app package admins upload."""

from __future__ import annotations

from pathlib import Path

import click

from admin.common import refuse
from admin.settings import CommandSettings, pass_settings, setting_option
from config.settings import TeamsAppSettings
from teams_package import build_package


@click.group()
def teams() -> None:
    """The Teams app package admins upload."""


@teams.command("package")
@setting_option("--app-id", setting="app_id",
                help="The bot's Entra application (client) id [env MicrosoftAppId].")
@click.option("--output", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="The zip to write, or a folder to write colleague-questions-bot-VERSION.zip in.")
@click.option("--version", "app_version", default="1.0.0", show_default=True,
              help="The app version Teams shows; raise it for every upload of a changed package.")
@pass_settings
def teams_package(command_settings: CommandSettings, app_id: str, output: Path, app_version: str) -> None:
    """Build the zip (manifest with the app id, the developer from TEAMS_DEVELOPER_NAME and the
    TEAMS_*_URL settings, and both icons) ready to upload to Teams."""
    developer = command_settings.load(TeamsAppSettings).developer()
    try:
        written = build_package(app_id, output, version=app_version, developer=developer)
    except (ValueError, FileNotFoundError) as error:  # ManifestError is a ValueError
        refuse(error)
    click.echo(f"wrote the Teams app package to {written}")
