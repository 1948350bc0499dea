"""`cli.py faq`: check FAQ files, try and calibrate the matcher, learn from use, export.

`faq.commands` and `faq.matcher` load the matcher's model libraries (seconds): each command
imports them when it runs, so `cli.py faq --help` and listing every group do not wait for them."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from admin.common import CLI_ACTOR, database_url, faq_file, min_precision, output, with_store, write_output
from admin.settings import setting_option
from faq.store import FaqFormatError
from handlers.faq_links import link_question
from store.store import Store


@click.group()
def faq() -> None:
    """Check FAQ files, try the matcher, calibrate it, learn from use, export the merged FAQ."""


@faq.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def check(file: Path) -> None:
    """Validate FILE; exit 1 with the problem on stderr if it breaks the format."""
    from faq.commands import check as check_file

    try:
        click.echo(check_file(file))
    except FaqFormatError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)


@faq.command()
@faq_file(help_text=None)
@setting_option(
    "--threshold",
    setting="faq_threshold",
    type=float,
    help="Explicit threshold [env FAQ_THRESHOLD]; default: calibrated or default rule.",
)
@min_precision(help_text="Target precision when calibrating [env FAQ_MIN_PRECISION].")
@setting_option(
    "--database-url",
    setting="database_url",
    default=None,  # not the bot's: unless given or set, the file alone
    help="Also use what the bot's database has learned (moderators' entries), exactly as the "
    "running bot does [env DATABASE_URL]; without it, the file alone.",
)
def match(
    faq_path: Path, threshold: float | None, min_precision: float, database_url: str | None
) -> None:
    """Read one question per line on stdin; print one JSON object per line."""
    from faq.commands import bot_matcher, match_lines
    from faq.matcher import matcher_for_file

    try:
        if database_url is None:
            matcher = matcher_for_file(faq_path, threshold=threshold, min_precision=min_precision)
        else:
            matcher = with_store(database_url, lambda store: bot_matcher(
                faq_path, store, threshold, min_precision))
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
@min_precision()
def calibrate(faq_path: Path, queries: Path, test_path: Path | None, min_precision: float) -> None:
    """Print the precision / answer-rate curve and the recommended threshold."""
    from faq.commands import calibrate_report

    click.echo(calibrate_report(faq_path, queries, test_path, min_precision))


@faq.command()
@faq_file()
@database_url
@setting_option("--threshold", setting="faq_threshold", type=float)
@min_precision()
def suggest(
    faq_path: Path, database_url: str, threshold: float | None, min_precision: float
) -> None:
    """List phrasings to add to entries and new entries, learnt from colleagues' verdicts and
    moderators' answers."""
    from faq.commands import suggest_report

    click.echo(with_store(database_url, lambda store: suggest_report(
        faq_path, store, threshold=threshold, min_precision=min_precision)))


@faq.command()
@faq_file()
@database_url
@output
def export(faq_path: Path, database_url: str, output: Path | None) -> None:
    """Write the FAQ the bot answers from (the file plus moderators' entries) as one YAML file."""
    from faq.commands import export_yaml

    text = with_store(database_url, lambda store: export_yaml(faq_path, store))
    write_output(text, output, "the FAQ")


@faq.command()
@click.argument("question")
@click.argument("entry_id")
@faq_file()
@database_url
def link(question: str, entry_id: str, faq_path: Path, database_url: str) -> None:
    """Say FAQ entry ENTRY_ID answers QUESTION (Q-12): its text becomes a phrasing of the entry,
    and if it still waits for the team, the entry's answer goes to its asker."""
    from faq.commands import bot_faq

    async def work(store: Store) -> str:
        return await link_question(store, await bot_faq(faq_path, store), question, entry_id, by=CLI_ACTOR)

    click.echo(with_store(database_url, work))
