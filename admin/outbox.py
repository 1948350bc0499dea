"""`cli.py outbox`: jobs that gave up, listed and re-queued."""

from __future__ import annotations

import click

from admin.common import database_url, refuse, with_store
from outbox.admin import NotRetryable, failed_jobs, retry_failed


@click.group()
def outbox() -> None:
    """Jobs that gave up (replies and mail never delivered): list them, re-queue them."""


@outbox.command("failed")
@database_url
def outbox_failed(database_url: str) -> None:
    """Every failed job: id, kind, when it gave up (UTC), attempts and its last error (no
    message content, addresses or ids)."""
    jobs = with_store(database_url, failed_jobs)
    if not jobs:
        click.echo("No failed jobs.")
        return
    click.echo(f"{'JOB':<8} {'KIND':<20} {'FAILED AT (UTC)':<17} {'TRIES':>5}  LAST ERROR")
    for job in jobs:
        click.echo(f"{job.id:<8} {job.kind:<20} {job.failed_at:%Y-%m-%d %H:%M} {job.attempts:>5}  {job.last_error}")


@outbox.command("retry")
@click.argument("jobs", nargs=-1, type=click.IntRange(min=1))
@click.option("--all", "every", is_flag=True, help="Re-queue every failed job.")
@database_url
def outbox_retry(jobs: tuple[int, ...], every: bool, database_url: str) -> None:
    """Re-queue failed JOBS (ids from `outbox failed`), or --all of them, once the fault that
    stopped them has ended: the running bot sends them at its next poll, with a fresh
    OUTBOX_GIVE_UP_AFTER_HOURS."""
    if every == bool(jobs):
        raise click.UsageError("give either job ids or --all")
    try:
        requeued = with_store(database_url, lambda store: retry_failed(store, None if every else jobs))
    except NotRetryable as error:
        refuse(error)
    if not requeued:
        click.echo("No failed jobs; nothing changed.")
        return
    click.echo(f"re-queued {len(requeued)} failed job{'s' if len(requeued) != 1 else ''}: "
               + ", ".join(str(job) for job in requeued))
