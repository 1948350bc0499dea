"""What every admin command shares: options that default to the bot's own settings, running
work on a store, writing a document, and the exit codes of each failure."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from admin.settings import Decorator, setting_option
from errors import Refused
from handlers.clock import zone_named
from store.db import create_engine
from store.store import Store

T = TypeVar("T")

CLI_ACTOR = "cli"  # how the audit log names whoever ran these commands


def database_url(command: Callable[..., Any]) -> Callable[..., Any]:
    """The --database-url option every command that reads or writes the database takes."""
    return setting_option(
        "--database-url", setting="database_url", show_default=True, help="A plain SQLAlchemy URL [env DATABASE_URL]."
    )(command)


def _zone(_context: click.Context, _option: click.Parameter, value: str) -> ZoneInfo:
    try:
        return zone_named(value)
    except ValueError as wrong:
        raise click.BadParameter(str(wrong)) from None


def timezone(command: Callable[..., Any]) -> Callable[..., Any]:
    """--timezone, the bot's TIMEZONE: the clock of every time a command shows or reads."""
    return setting_option(
        "--timezone", setting="timezone", show_default=True, callback=_zone,
        help="IANA time zone of the times shown and read [env TIMEZONE].",
    )(command)


def faq_file(help_text: str | None = "The bundled FAQ file [env FAQ_PATH].") -> Decorator:
    """--faq, the bot's FAQ_PATH."""
    return setting_option(
        "--faq", "faq_path", setting="faq_path", type=click.Path(path_type=Path, dir_okay=False), show_default=True,
        help=help_text,
    )


def min_precision(help_text: str | None = None) -> Decorator:
    """--min-precision, the bot's FAQ_MIN_PRECISION: the precision calibration aims for."""
    return setting_option(
        "--min-precision", setting="faq_min_precision", type=float, show_default=True, help=help_text
    )


def output(command: Callable[..., Any]) -> Callable[..., Any]:
    """The --output option of commands that print a document (digest, export, report, FAQ)."""
    return click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="Write to this file instead of stdout.")(command)


def write_output(text: str, output: Path | None, what: str) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8", newline="")
    click.echo(f"wrote {what} to {output}")


def with_store(database_url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run `work(store)` once on its own engine. Bad input (`Refused`) is exit 2 with
    the reason on stderr (handlers raise it before writing, so nothing changed); a database that
    cannot be used is exit 1."""

    async def run() -> T:
        engine = create_engine(database_url)
        try:
            return await work(Store(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except Refused as bad:
        refuse(bad)
    except (DBAPIError, OSError) as error:
        where = make_url(database_url).render_as_string(hide_password=True)
        click.echo(f"Error: cannot use the database {where} ({type(error).__name__}); "
                   "is it reachable and migrated (cli.py db upgrade)?", err=True)
        sys.exit(1)


def refuse(bad: Exception) -> NoReturn:
    """Bad input: the reason on stderr, exit 2 (nothing was changed)."""
    click.echo(f"Error: {bad}", err=True)
    sys.exit(2)
