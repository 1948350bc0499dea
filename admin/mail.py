"""`cli.py mail`: the mail loop without Graph, a saved mail fed into the bot's inbox."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from admin.common import database_url, with_store
from admin.settings import CommandSettings, pass_settings
from config.settings import Settings
from handlers.mail_file import receive_mail_file
from wiring import limits, mail_policy


@click.group()
def mail() -> None:
    """Mail without Graph: feed a saved mail into the bot's inbox."""


@mail.command("receive")
@click.argument("file", type=click.Path(path_type=Path))
@database_url
@pass_settings
def mail_receive(command_settings: CommandSettings, file: Path, database_url: str) -> None:
    """Record FILE (an .eml, e.g. a moderator's reply to a forwarded question) as if it had
    arrived in the shared mailbox; the running bot delivers what it causes. Settings (who
    counts as a moderator or as staff) come from the environment, as for the bot."""
    settings = command_settings.load(Settings)
    received = with_store(database_url, lambda store: receive_mail_file(
        store, mail_policy(settings), limits(settings), file, log=logging.getLogger("questions_bot")))
    click.echo(received.describe())
