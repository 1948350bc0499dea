"""`cli.py purge`: the retention period, applied now."""

from __future__ import annotations

from pathlib import Path

import click

from admin.common import database_url, with_store
from admin.settings import setting_option
from handlers.retention import RetentionPolicy, purge_expired
from mail.eml import EmlOutbox


@click.command()
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
@setting_option(
    "--days",
    setting="retention_days",
    type=click.IntRange(min=1),
    show_default=True,
    help="Remove personal data older than this [env RETENTION_DAYS].",
)
@setting_option(
    "--audit-days",
    setting="audit_retention_days",
    type=click.IntRange(min=1),
    show_default=True,
    help="Remove audit entries older than this [env AUDIT_RETENTION_DAYS].",
)
@setting_option(
    "--mail-outbox-dir",
    setting="mail_outbox_dir",
    type=click.Path(file_okay=False, path_type=Path),
    show_default=True,
    help="The .eml transport's folder, whose old mail files go too [env MAIL_OUTBOX_DIR].",
)
@database_url
def purge(dry_run: bool, days: int, audit_days: int, mail_outbox_dir: Path, database_url: str) -> None:
    """Remove (or with --dry-run, count) data older than the retention period, per table, and
    the .eml transport's mail files older than it."""
    policy = RetentionPolicy(days, audit_days)
    mail = EmlOutbox(mail_outbox_dir, sender="")
    counts = with_store(
        database_url, lambda store: purge_expired(store, policy, dry_run=dry_run, mail=mail)
    )
    click.echo(
        f"{'would remove' if dry_run else 'removed'} (data older than {days} days, "
        f"audit entries older than {audit_days} days):"
    )
    for table, count in counts.items():
        click.echo(f"  {table}: {count}")
