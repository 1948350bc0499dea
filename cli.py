"""Admin commands. Each area of the bot adds its own group to `cli`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent
BUNDLED_FAQ = ROOT / "config" / "faq.yaml"

cli = click.Group(help="Colleague questions bot: admin commands.")


@cli.group()
def db() -> None:
    """The database: bring its schema up to date."""


@db.command()
@click.option(
    "--database-url",
    envvar="DATABASE_URL",
    default="sqlite:///var/bot.db",
    show_default=True,
    help="A plain SQLAlchemy URL [env DATABASE_URL].",
)
def upgrade(database_url: str) -> None:
    """Apply every pending migration (what `make run` does before starting the bot)."""
    from store.migrate import upgrade as upgrade_schema

    upgrade_schema(database_url)
    click.echo("database schema is up to date")


@cli.group()
def faq() -> None:
    """Check FAQ files, try the matcher, calibrate its threshold."""


@faq.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def check(file: Path) -> None:
    """Validate FILE; exit 1 with the problem on stderr if it breaks the format."""
    from faq.commands import check as check_file
    from faq.store import FaqFormatError

    try:
        click.echo(check_file(file))
    except FaqFormatError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)


@faq.command()
@click.option(
    "--faq",
    "faq_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=BUNDLED_FAQ,
    envvar="FAQ_PATH",
    show_default=True,
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    envvar="FAQ_THRESHOLD",
    help="Explicit threshold [env FAQ_THRESHOLD]; default: calibrated or default rule.",
)
@click.option(
    "--min-precision",
    type=float,
    default=0.97,
    envvar="FAQ_MIN_PRECISION",
    show_default=True,
    help="Target precision when calibrating [env FAQ_MIN_PRECISION].",
)
def match(faq_path: Path, threshold: float | None, min_precision: float) -> None:
    """Read one question per line on stdin; print one JSON object per line."""
    from faq.commands import match_lines
    from faq.matcher import matcher_for_file
    from faq.store import FaqFormatError

    try:
        matcher = matcher_for_file(faq_path, threshold=threshold, min_precision=min_precision)
    except FaqFormatError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    for line in match_lines(matcher, sys.stdin):
        click.echo(line)
        sys.stdout.flush()


@faq.command()
@click.option("--faq", "faq_path", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option(
    "--queries",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Labelled questions (JSONL); split even/odd into dev/test unless --test.",
)
@click.option(
    "--test",
    "test_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Separate test questions; then all of --queries is dev.",
)
@click.option(
    "--min-precision", type=float, default=0.97, envvar="FAQ_MIN_PRECISION", show_default=True
)
def calibrate(faq_path: Path, queries: Path, test_path: Path | None, min_precision: float) -> None:
    """Print the precision / answer-rate curve and the recommended threshold."""
    from faq.commands import calibrate_report

    click.echo(calibrate_report(faq_path, queries, test_path, min_precision))


if __name__ == "__main__":
    cli()
