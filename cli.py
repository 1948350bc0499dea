"""Admin commands. Each area of the bot adds its own group to `cli`."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

ROOT = Path(__file__).resolve().parent
BUNDLED_FAQ = ROOT / "config" / "faq.yaml"

T = TypeVar("T")

cli = click.Group(help="Colleague questions bot: admin commands.")


def _database_url(command: Callable[..., Any]) -> Callable[..., Any]:
    """The --database-url option every command that reads or writes the database takes."""
    return click.option(
        "--database-url",
        envvar="DATABASE_URL",
        default="sqlite:///var/bot.db",
        show_default=True,
        help="A plain SQLAlchemy URL [env DATABASE_URL].",
    )(command)


def _timezone(command: Callable[..., Any]) -> Callable[..., Any]:
    """--timezone, the bot's TIMEZONE: the clock of every time a command shows or reads."""
    def zone(_context: click.Context, _option: click.Parameter, value: str) -> Any:
        from handlers.clock import zone_named

        try:
            return zone_named(value)
        except ValueError as wrong:
            raise click.BadParameter(str(wrong)) from None

    return click.option(
        "--timezone", envvar="TIMEZONE", default="Europe/London", show_default=True, callback=zone,
        help="IANA time zone of the times shown and read [env TIMEZONE].",
    )(command)


def _with_store(database_url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(store)` once on its own engine. Bad input (`Refused`) is exit 2 with
    the reason on stderr (handlers raise it before writing, so nothing changed); a database that
    cannot be used is exit 1."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from errors import Refused
    from store.db import create_engine
    from store.store import Store

    async def run() -> T:
        engine = create_engine(database_url)
        try:
            return await work(Store(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except Refused as bad:
        click.echo(f"Error: {bad}", err=True)
        sys.exit(2)
    except (DBAPIError, OSError) as error:
        where = make_url(database_url).render_as_string(hide_password=True)
        click.echo(f"Error: cannot use the database {where} ({type(error).__name__}); "
                   "is it reachable and migrated (cli.py db upgrade)?", err=True)
        sys.exit(1)


def _output(command: Callable[..., Any]) -> Callable[..., Any]:
    """The --output option of commands that print a document (digest, export, report, FAQ)."""
    return click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="Write to this file instead of stdout.")(command)


def _write_output(text: str, output: Path | None, what: str) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8", newline="")
    click.echo(f"wrote {what} to {output}")


@cli.group()
def db() -> None:
    """The database: bring its schema up to date."""


@db.command()
@_database_url
def upgrade(database_url: str) -> None:
    """Apply every pending migration (what `make run` does before starting the bot)."""
    from store.migrate import upgrade as upgrade_schema

    upgrade_schema(database_url)
    click.echo("database schema is up to date")


@cli.group()
def faq() -> None:
    """Check FAQ files, try the matcher, calibrate it, learn from use, export the merged FAQ."""


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
@click.option(
    "--database-url",
    envvar="DATABASE_URL",
    default=None,
    help="Also use what the bot's database has learned (moderators' entries), exactly as the "
    "running bot does [env DATABASE_URL]; without it, the file alone.",
)
def match(
    faq_path: Path, threshold: float | None, min_precision: float, database_url: str | None
) -> None:
    """Read one question per line on stdin; print one JSON object per line."""
    from faq.commands import bot_matcher, match_lines
    from faq.matcher import matcher_for_file
    from faq.store import FaqFormatError

    try:
        if database_url is None:
            matcher = matcher_for_file(faq_path, threshold=threshold, min_precision=min_precision)
        else:
            matcher = _with_store(database_url, lambda store: bot_matcher(
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
@click.option(
    "--min-precision", type=float, default=0.97, envvar="FAQ_MIN_PRECISION", show_default=True
)
def calibrate(faq_path: Path, queries: Path, test_path: Path | None, min_precision: float) -> None:
    """Print the precision / answer-rate curve and the recommended threshold."""
    from faq.commands import calibrate_report

    click.echo(calibrate_report(faq_path, queries, test_path, min_precision))


def _faq_file(function: Any) -> Any:
    return click.option(
        "--faq",
        "faq_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=BUNDLED_FAQ,
        envvar="FAQ_PATH",
        show_default=True,
        help="The bundled FAQ file [env FAQ_PATH].",
    )(function)


@faq.command()
@_faq_file
@_database_url
@click.option("--threshold", type=float, default=None, envvar="FAQ_THRESHOLD")
@click.option(
    "--min-precision", type=float, default=0.97, envvar="FAQ_MIN_PRECISION", show_default=True
)
def suggest(
    faq_path: Path, database_url: str, threshold: float | None, min_precision: float
) -> None:
    """List phrasings to add to entries and new entries, learnt from colleagues' verdicts and
    moderators' answers."""
    from faq.commands import suggest_report

    click.echo(_with_store(database_url, lambda store: suggest_report(
        faq_path, store, threshold=threshold, min_precision=min_precision)))


@faq.command()
@_faq_file
@_database_url
@_output
def export(faq_path: Path, database_url: str, output: Path | None) -> None:
    """Write the FAQ the bot answers from (the file plus moderators' entries) as one YAML file."""
    from faq.commands import export_yaml

    text = _with_store(database_url, lambda store: export_yaml(faq_path, store))
    _write_output(text, output, "the FAQ")


@faq.command()
@click.argument("question")
@click.argument("entry_id")
@_faq_file
@_database_url
def link(question: str, entry_id: str, faq_path: Path, database_url: str) -> None:
    """Say FAQ entry ENTRY_ID answers QUESTION (Q-12): its text becomes a phrasing of the entry,
    and if it still waits for the team, the entry's answer goes to its asker."""
    from faq.commands import bot_faq
    from handlers.faq_links import link_question

    async def work(store: Any) -> str:
        return await link_question(store, await bot_faq(faq_path, store), question, entry_id, by=CLI_ACTOR)

    click.echo(_with_store(database_url, work))


# --- retention and subject rights (issue 7) -------------------------------------------------


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    envvar="RETENTION_DAYS",
    default=365,
    show_default=True,
    help="Remove personal data older than this [env RETENTION_DAYS].",
)
@click.option(
    "--audit-days",
    type=click.IntRange(min=1),
    envvar="AUDIT_RETENTION_DAYS",
    default=730,
    show_default=True,
    help="Remove audit entries older than this [env AUDIT_RETENTION_DAYS].",
)
@click.option(
    "--mail-outbox-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MAIL_OUTBOX_DIR",
    default="var/outbox",
    show_default=True,
    help="The .eml transport's folder, whose old mail files go too [env MAIL_OUTBOX_DIR].",
)
@_database_url
def purge(dry_run: bool, days: int, audit_days: int, mail_outbox_dir: Path, database_url: str) -> None:
    """Remove (or with --dry-run, count) data older than the retention period, per table, and
    the .eml transport's mail files older than it."""
    from handlers.retention import RetentionPolicy, purge_expired
    from mail.eml import EmlOutbox

    policy = RetentionPolicy(days, audit_days)
    mail = EmlOutbox(mail_outbox_dir, sender="")
    counts = _with_store(
        database_url, lambda store: purge_expired(store, policy, dry_run=dry_run, mail=mail)
    )
    click.echo(
        f"{'would remove' if dry_run else 'removed'} (data older than {days} days, "
        f"audit entries older than {audit_days} days):"
    )
    for table, count in counts.items():
        click.echo(f"  {table}: {count}")


@cli.group()
def subject() -> None:
    """Subject rights (UK GDPR): export or erase what the bot holds about one person."""


def _subject_email(_: click.Context, __: click.Parameter, value: str) -> str:
    from handlers.subjects import BadSubject, subject_email

    try:
        return subject_email(value)
    except BadSubject as error:
        raise click.BadParameter(str(error)) from None


def _settings() -> Any:
    """The bot's settings from the environment, for commands that act as the bot does;
    invalid settings are exit 2 with every problem listed."""
    from pydantic import ValidationError

    from config.settings import load_settings

    try:
        return load_settings()
    except ValidationError as error:
        click.echo(f"Error: invalid settings:\n{error}", err=True)
        sys.exit(2)


def _with_kept_mail(settings: Any, mailbox: bool, work: Callable[[Any, list[Any]], Awaitable[T]]) -> Callable[[Any], Awaitable[T]]:
    """`work(store, kept)` with the places mail about people is kept: the `.eml` folder, and
    with `mailbox` the shared mailbox through Graph (its client closed afterwards)."""
    from mail.eml import EmlOutbox
    from mail.graph import GraphClient, SharedMailbox

    async def run(store: Any) -> T:
        graph = None
        if mailbox:
            from app import graph_config  # app loads the FAQ model's libraries: only when needed

            graph = GraphClient(graph_config(settings))
        kept: list[Any] = [EmlOutbox(settings.mail_outbox_dir, settings.mailbox_address)]
        try:
            return await work(store, kept + ([SharedMailbox(graph)] if graph else []))
        finally:
            if graph is not None:
                await graph.aclose()

    return run


def _run_over_mail(database_url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    from mail.base import MailSearchFailed

    try:
        return _with_store(database_url, work)
    except MailSearchFailed as error:
        click.echo(f"Error: {error}; nothing was changed", err=True)
        sys.exit(1)


@subject.command("export")
@click.option("--user", "email", required=True, callback=_subject_email, help="The person's email address.")
@_database_url
def subject_export(email: str, database_url: str) -> None:
    """Print, as JSON, everything held about the person (questions, answers, roles, audit...),
    and the mail files and (with Graph) shared-mailbox messages that concern them."""
    from handlers.subjects import export_subject

    settings = _settings()
    data = _run_over_mail(database_url, _with_kept_mail(
        settings, settings.graph_enabled, lambda store, kept: export_subject(store, email, kept)))
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@subject.command("erase")
@click.option("--user", "email", required=True, callback=_subject_email, help="The person's email address.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--mailbox", is_flag=True, help="Also delete the shared mailbox's messages about them (Graph).")
@_database_url
def subject_erase(email: str, yes: bool, mailbox: bool, database_url: str) -> None:
    """Delete the person's questions and identity, and the mail files (with --mailbox, the
    shared-mailbox messages) about them; name them "erased" in others' records."""
    from handlers.subjects import erase_subject

    settings = _settings()
    if mailbox and not settings.graph_enabled:
        raise click.BadParameter("needs Graph mail settings (SHARED_MAILBOX, GRAPH_...)", param_hint="--mailbox")
    if not yes:
        click.confirm(f"Erase everything held about {email}? This cannot be undone", abort=True)
    erasure = _run_over_mail(database_url, _with_kept_mail(
        settings, mailbox, lambda store, kept: erase_subject(store, email, kept)))
    changed = any(erasure.done.values()) or erasure.mail_deleted
    click.echo(f"erased {email}:" if changed else f"nothing held about {email}; nothing changed:")
    for what, count in erasure.done.items():
        click.echo(f"  {what}: {count}")
    click.echo(f"  mail_deleted: {len(erasure.mail_deleted)}")
    for kept in erasure.mail_deleted:
        click.echo(f"    {kept.where}: {kept.subject} ({kept.id})")
    if settings.graph_enabled and not mailbox:
        click.echo("the shared mailbox was not searched: add --mailbox to delete its messages about them")
    problems = [f"could not delete from the {kept.where}: {kept.subject} ({kept.id})" for kept in erasure.mail_left]
    problems += erasure.problems
    if not erasure.wal_truncated:
        problems.append("the database's write-ahead log is still in use and may hold erased data: run erase again")
    for problem in problems:
        click.echo(f"Error: {problem}", err=True)
    if problems:
        sys.exit(1)


# Live events: roles and events, over the same handlers the bot's Teams commands use. ----------

CLI_ACTOR = "cli"  # how the audit log names whoever ran these commands


@cli.group()
def roles() -> None:
    """Hosts and moderators (admins are set by the ADMINS setting)."""


@roles.command("grant")
@click.argument("role")
@click.argument("who")
@_database_url
def roles_grant(role: str, who: str, database_url: str) -> None:
    """Give WHO (an email address or Entra object id) the ROLE host or moderator."""
    from handlers.roles import change_role, describe

    change = _with_store(database_url, lambda store: change_role(
        store, grant=True, role=role, who=who, by=CLI_ACTOR))
    click.echo(describe(change))


@roles.command("revoke")
@click.argument("role")
@click.argument("who")
@_database_url
def roles_revoke(role: str, who: str, database_url: str) -> None:
    """Take the ROLE host or moderator away from WHO."""
    from handlers.roles import change_role, describe

    change = _with_store(database_url, lambda store: change_role(
        store, grant=False, role=role, who=who, by=CLI_ACTOR))
    click.echo(describe(change))


@roles.command("list")
@_database_url
def roles_list(database_url: str) -> None:
    """Every granted role: role, who, and who granted it."""
    from handlers.markdown import plain_line
    from handlers.roles import granted_roles

    granted = _with_store(database_url, granted_roles)
    if not granted:
        click.echo("No hosts or moderators yet (admins come from the ADMINS setting).")
    for principal, role, by in granted:
        click.echo(f"{role:<10} {principal}  (granted by {plain_line(by)})")


@cli.group()
def events() -> None:
    """Live events: open, close, list, publish the digest, export the questions."""


@events.command("open")
@click.argument("title")
@click.option("--description", default=None, help="Shown under the title in the digest.")
@click.option("--ends-at", default=None,
              help="ISO 8601, e.g. 2025-03-14T15:00 (in --timezone unless an offset is given).")
@_timezone
@_database_url
def events_open(title: str, description: str | None, ends_at: str | None, timezone: Any, database_url: str) -> None:
    """Open an event called TITLE: questions asked from now on belong to it."""
    from clock import SYSTEM_CLOCK
    from errors import Refused
    from handlers.hosting import open_event, parse_ends_at

    try:
        ends = parse_ends_at(ends_at, SYSTEM_CLOCK.now(), timezone) if ends_at is not None else None
    except Refused as bad:
        click.echo(f"Error: {bad}", err=True)
        sys.exit(2)
    event_id = _with_store(database_url, lambda store: open_event(
        store, title, by=CLI_ACTOR, description=description, ends_at=ends))
    click.echo(f"opened E-{event_id}")


@events.command("close")
@click.argument("event")
@_database_url
def events_close(event: str, database_url: str) -> None:
    """Close EVENT (3 or E-3)."""
    from handlers.hosting import close_event

    closed_event, closed = _with_store(database_url, lambda store: close_event(store, event, by=CLI_ACTOR))
    click.echo(f"closed E-{closed_event.id}" if closed else f"E-{closed_event.id} was already closed")


@events.command("list")
@_database_url
def events_list(database_url: str) -> None:
    """Every event: reference, state, when it opened (UTC), questions asked, title."""
    from handlers.hosting import list_events
    from handlers.markdown import plain_line

    listed = _with_store(database_url, list_events)
    if not listed:
        click.echo("No events yet.")
    for line in listed:
        e = line.event
        click.echo(f"E-{e.id:<4} {e.status:<7} {e.opened_at:%Y-%m-%d %H:%M} UTC  "
                   f"{line.asked:>5} asked  {plain_line(e.title)}")


@events.command("publish")
@click.argument("event")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@click.option("--names/--no-names", envvar="DIGEST_NAMES", default=False, show_default=True,
              help="Name the askers of public questions [env DIGEST_NAMES].")
@_output
@_timezone
@_database_url
def events_publish(event: str, fmt: str, names: bool, output: Path | None, timezone: Any, database_url: str) -> None:
    """The digest of EVENT's answered questions, as Markdown or a cleaned HTML fragment."""
    from handlers.digest import digest_of

    text = _with_store(database_url, lambda store: digest_of(store, event, fmt,  # type: ignore[arg-type]
                                                             by=CLI_ACTOR, names=names, zone=timezone))
    _write_output(text, output, "the digest")


@events.command("export")
@click.argument("event")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@_output
@_database_url
def events_export(event: str, fmt: str, output: Path | None, database_url: str) -> None:
    """EVENT's questions for the organisers: one row per question (askers only when not anonymous)."""
    from handlers.digest import export_of

    text = _with_store(database_url, lambda store: export_of(store, event, fmt, by=CLI_ACTOR))  # type: ignore[arg-type]
    _write_output(text, output, "the export")


# Event report, offline mail, Teams package (issues 4 and 5). ---------------------------------


@events.command("report")
@click.argument("event")
@click.option("--format", "fmt", type=click.Choice(["md", "text", "html"]), default="md", show_default=True)
@_output
@_timezone
@_database_url
def events_report(event: str, fmt: str, output: Path | None, timezone: Any, database_url: str) -> None:
    """EVENT's figures: asked, answered (FAQ, moderators), dismissed, median wait, busiest
    minutes, top topics; the HTML fragment adds a questions-per-minute chart."""
    from handlers.event_report import report_of

    text = _with_store(database_url, lambda store: report_of(store, event, fmt, by=CLI_ACTOR, zone=timezone))  # type: ignore[arg-type]
    _write_output(text, output, "the report")


@cli.group()
def mail() -> None:
    """Mail without Graph: feed a saved mail into the bot's inbox."""


@mail.command("receive")
@click.argument("file", type=click.Path(path_type=Path))
@_database_url
def mail_receive(file: Path, database_url: str) -> None:
    """Record FILE (an .eml, e.g. a moderator's reply to a forwarded question) as if it had
    arrived in the shared mailbox; the running bot delivers what it causes. Settings (who
    counts as a moderator or as staff) come from the environment, as for the bot."""
    import logging
    from zoneinfo import ZoneInfo

    from pydantic import ValidationError

    from app import mail_policy
    from config.settings import load_settings
    from handlers.deps import Limits
    from handlers.mail_file import receive_mail_file

    try:
        settings = load_settings()
    except ValidationError as error:
        click.echo(f"Error: invalid settings:\n{error}", err=True)
        sys.exit(2)
    limits = Limits(settings.max_question_chars, settings.forward_to, timezone=ZoneInfo(settings.timezone))
    received = _with_store(database_url, lambda store: receive_mail_file(
        store, mail_policy(settings), limits, file, log=logging.getLogger("questions_bot")))
    click.echo(received.describe())


@cli.group()
def outbox() -> None:
    """Jobs that gave up (replies and mail never delivered): list them, re-queue them."""


@outbox.command("failed")
@_database_url
def outbox_failed(database_url: str) -> None:
    """Every failed job: id, kind, when it gave up (UTC), attempts and its last error (no
    message content, addresses or ids)."""
    from outbox.admin import failed_jobs

    jobs = _with_store(database_url, failed_jobs)
    if not jobs:
        click.echo("No failed jobs.")
        return
    click.echo(f"{'JOB':<8} {'KIND':<20} {'FAILED AT (UTC)':<17} {'TRIES':>5}  LAST ERROR")
    for job in jobs:
        click.echo(f"{job.id:<8} {job.kind:<20} {job.failed_at:%Y-%m-%d %H:%M} {job.attempts:>5}  {job.last_error}")


@outbox.command("retry")
@click.argument("jobs", nargs=-1, type=click.IntRange(min=1))
@click.option("--all", "every", is_flag=True, help="Re-queue every failed job.")
@_database_url
def outbox_retry(jobs: tuple[int, ...], every: bool, database_url: str) -> None:
    """Re-queue failed JOBS (ids from `outbox failed`), or --all of them, once the fault that
    stopped them has ended: the running bot sends them at its next poll, with a fresh
    OUTBOX_GIVE_UP_AFTER_HOURS."""
    from outbox.admin import NotRetryable, retry_failed

    if every == bool(jobs):
        raise click.UsageError("give either job ids or --all")
    try:
        requeued = _with_store(database_url, lambda store: retry_failed(store, None if every else jobs))
    except NotRetryable as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    if not requeued:
        click.echo("No failed jobs; nothing changed.")
        return
    click.echo(f"re-queued {len(requeued)} failed job{'s' if len(requeued) != 1 else ''}: "
               + ", ".join(str(job) for job in requeued))


@cli.group()
def teams() -> None:
    """The Teams app package admins upload."""


@teams.command("package")
@click.option("--app-id", envvar="MicrosoftAppId", default="",
              help="The bot's Entra application (client) id [env MicrosoftAppId].")
@click.option("--output", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="The zip to write, or a folder to write colleague-questions-bot-VERSION.zip in.")
@click.option("--version", "app_version", default="1.0.0", show_default=True,
              help="The app version Teams shows; raise it for every upload of a changed package.")
def teams_package(app_id: str, output: Path, app_version: str) -> None:
    """Build the zip (manifest with the app id, the developer from TEAMS_DEVELOPER_NAME and the
    TEAMS_*_URL settings, and both icons) ready to upload to Teams."""
    from pydantic import ValidationError

    from config.settings import TeamsAppSettings
    from teams_package import build_package

    try:
        developer = TeamsAppSettings().developer()
    except ValidationError as error:
        click.echo(f"Error: invalid settings:\n{error}", err=True)
        sys.exit(2)
    try:
        written = build_package(app_id, output, version=app_version, developer=developer)
    except (ValueError, FileNotFoundError) as error:  # ManifestError is a ValueError
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    click.echo(f"wrote the Teams app package to {written}")


if __name__ == "__main__":
    cli()
