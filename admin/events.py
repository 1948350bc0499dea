"""`cli.py events`: live events (open, close, list) and what is made of them (digest, export,
report), over the handlers the bot's Teams commands use."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import click

from admin.common import CLI_ACTOR, database_url, output, refuse, timezone, with_store, write_output
from admin.settings import setting_option
from clock import SYSTEM_CLOCK
from errors import Refused
from handlers.digest import digest_of, export_of
from handlers.event_report import report_of
from handlers.hosting import close_event, list_events, open_event, parse_ends_at
from handlers.markdown import plain_line


@click.group()
def events() -> None:
    """Live events: open, close, list, publish the digest, export the questions."""


@events.command("open")
@click.argument("title")
@click.option("--description", default=None, help="Shown under the title in the digest.")
@click.option("--ends-at", default=None,
              help="ISO 8601, e.g. 2025-03-14T15:00 (in --timezone unless an offset is given).")
@timezone
@database_url
def events_open(
    title: str, description: str | None, ends_at: str | None, timezone: ZoneInfo, database_url: str
) -> None:
    """Open an event called TITLE: questions asked from now on belong to it."""
    try:
        ends = parse_ends_at(ends_at, SYSTEM_CLOCK.now(), timezone) if ends_at is not None else None
    except Refused as bad:
        refuse(bad)
    event_id = with_store(database_url, lambda store: open_event(
        store, title, by=CLI_ACTOR, description=description, ends_at=ends))
    click.echo(f"opened E-{event_id}")


@events.command("close")
@click.argument("event")
@database_url
def events_close(event: str, database_url: str) -> None:
    """Close EVENT (3 or E-3)."""
    closed_event, closed = with_store(database_url, lambda store: close_event(store, event, by=CLI_ACTOR))
    click.echo(f"closed E-{closed_event.id}" if closed else f"E-{closed_event.id} was already closed")


@events.command("list")
@database_url
def events_list(database_url: str) -> None:
    """Every event: reference, state, when it opened (UTC), questions asked, title."""
    listed = with_store(database_url, list_events)
    if not listed:
        click.echo("No events yet.")
    for line in listed:
        e = line.event
        click.echo(f"E-{e.id:<4} {e.status:<7} {e.opened_at:%Y-%m-%d %H:%M} UTC  "
                   f"{line.asked:>5} asked  {plain_line(e.title)}")


@events.command("publish")
@click.argument("event")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@setting_option("--names/--no-names", setting="digest_names", show_default=True,
                help="Name the askers of public questions [env DIGEST_NAMES].")
@output
@timezone
@database_url
def events_publish(
    event: str, fmt: Literal["md", "html"], names: bool, output: Path | None, timezone: ZoneInfo, database_url: str
) -> None:
    """The digest of EVENT's answered questions, as Markdown or a cleaned HTML fragment."""
    text = with_store(database_url, lambda store: digest_of(
        store, event, fmt, by=CLI_ACTOR, names=names, zone=timezone))
    write_output(text, output, "the digest")


@events.command("export")
@click.argument("event")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@output
@database_url
def events_export(event: str, fmt: Literal["csv", "jsonl"], output: Path | None, database_url: str) -> None:
    """EVENT's questions for the organisers: one row per question (askers only when not anonymous)."""
    text = with_store(database_url, lambda store: export_of(store, event, fmt, by=CLI_ACTOR))
    write_output(text, output, "the export")


@events.command("report")
@click.argument("event")
@click.option("--format", "fmt", type=click.Choice(["md", "text", "html"]), default="md", show_default=True)
@output
@timezone
@database_url
def events_report(
    event: str, fmt: Literal["md", "text", "html"], output: Path | None, timezone: ZoneInfo, database_url: str
) -> None:
    """EVENT's figures: asked, answered (FAQ, moderators), dismissed, median wait, busiest
    minutes, top topics; the HTML fragment adds a questions-per-minute chart."""
    text = with_store(database_url, lambda store: report_of(store, event, fmt, by=CLI_ACTOR, zone=timezone))
    write_output(text, output, "the report")
