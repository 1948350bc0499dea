"""`cli.py subject`: subject rights (UK GDPR), export or erase what is held about one person,
in the database and in the places mail about them is kept."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from admin.common import database_url, with_store
from admin.settings import CommandSettings, pass_settings
from config.settings import Settings
from handlers.subjects import BadSubject, MailKept, erase_subject, export_subject, subject_email
from mail.base import MailSearchFailed
from mail.eml import EmlOutbox
from mail.graph import GraphClient, SharedMailbox
from store.store import Store
from wiring import graph_config

T = TypeVar("T")


@click.group()
def subject() -> None:
    """Subject rights (UK GDPR): export or erase what the bot holds about one person."""


def _subject_email(_: click.Context, __: click.Parameter, value: str) -> str:
    try:
        return subject_email(value)
    except BadSubject as error:
        raise click.BadParameter(str(error)) from None


def _with_kept_mail(
    settings: Settings, mailbox: bool, work: Callable[[Store, list[MailKept]], Awaitable[T]]
) -> Callable[[Store], Awaitable[T]]:
    """`work(store, kept)` with the places mail about people is kept: the `.eml` folder, and
    with `mailbox` the shared mailbox through Graph (its client closed afterwards)."""

    async def run(store: Store) -> T:
        graph = GraphClient(graph_config(settings)) if mailbox else None
        kept: list[MailKept] = [EmlOutbox(settings.mail_outbox_dir, settings.mailbox_address)]
        try:
            return await work(store, kept + ([SharedMailbox(graph)] if graph else []))
        finally:
            if graph is not None:
                await graph.aclose()

    return run


def _run_over_mail(database_url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    """`with_store`, where a place mail is kept that cannot be searched is exit 1."""
    try:
        return with_store(database_url, work)
    except MailSearchFailed as error:
        click.echo(f"Error: {error}; nothing was changed", err=True)
        sys.exit(1)


@subject.command("export")
@click.option("--user", "email", required=True, callback=_subject_email, help="The person's email address.")
@database_url
@pass_settings
def subject_export(command_settings: CommandSettings, email: str, database_url: str) -> None:
    """Print, as JSON, everything held about the person (questions, answers, roles, audit...),
    and the mail files and (with Graph) shared-mailbox messages that concern them."""
    settings = command_settings.load(Settings)
    data = _run_over_mail(database_url, _with_kept_mail(
        settings, settings.graph_enabled, lambda store, kept: export_subject(store, email, kept)))
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@subject.command("erase")
@click.option("--user", "email", required=True, callback=_subject_email, help="The person's email address.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--mailbox", is_flag=True, help="Also delete the shared mailbox's messages about them (Graph).")
@database_url
@pass_settings
def subject_erase(command_settings: CommandSettings, email: str, yes: bool, mailbox: bool, database_url: str) -> None:
    """Delete the person's questions and identity, and the mail files (with --mailbox, the
    shared-mailbox messages) about them; name them "erased" in others' records."""
    settings = command_settings.load(Settings)
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
