"""`cli.py roles`: hosts and moderators, over the handlers the bot's Teams commands use."""

from __future__ import annotations

import click

from admin.common import CLI_ACTOR, database_url, with_store
from handlers.markdown import plain_line
from handlers.roles import change_role, describe, granted_roles


@click.group()
def roles() -> None:
    """Hosts and moderators (admins are set by the ADMINS setting)."""


@roles.command("grant")
@click.argument("role")
@click.argument("who")
@database_url
def roles_grant(role: str, who: str, database_url: str) -> None:
    """Give WHO (an email address or Entra object id) the ROLE host or moderator."""
    _change(database_url, role, who, grant=True)


@roles.command("revoke")
@click.argument("role")
@click.argument("who")
@database_url
def roles_revoke(role: str, who: str, database_url: str) -> None:
    """Take the ROLE host or moderator away from WHO."""
    _change(database_url, role, who, grant=False)


def _change(database_url: str, role: str, who: str, *, grant: bool) -> None:
    """Grant or revoke, as the CLI's actor, and say exactly what was stored."""
    change = with_store(database_url, lambda store: change_role(store, grant=grant, role=role, who=who, by=CLI_ACTOR))
    click.echo(describe(change))


@roles.command("list")
@database_url
def roles_list(database_url: str) -> None:
    """Every granted role: role, who, and who granted it."""
    granted = with_store(database_url, granted_roles)
    if not granted:
        click.echo("No hosts or moderators yet (admins come from the ADMINS setting).")
    for principal, role, by in granted:
        click.echo(f"{role:<10} {principal}  (granted by {plain_line(by)})")
