"""Services built from the settings, for the bot (`app.py`) and the admin commands (`admin/`)
alike, so an operator's command acts on mail exactly as the running bot does."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from clock import Clock
from config.settings import Settings
from handlers.deps import Limits
from handlers.inbox import MailPolicy
from mail.base import MailTransport
from mail.eml import EmlOutbox
from mail.graph import GraphClient, GraphMailTransport, SendPacer
from mail.graph_config import GraphConfig


def limits(settings: Settings) -> Limits:
    """The limits and wording settings every handler reads (question length, retention told to
    colleagues, digest names, time zone)."""
    return Limits(settings.max_question_chars, settings.forward_to, settings.retention_days,
                  settings.digest_names, ZoneInfo(settings.timezone))


def graph_config(settings: Settings) -> GraphConfig:
    return GraphConfig(
        tenant_id=settings.graph_tenant_id,
        client_id=settings.graph_client_id,
        mailbox=settings.shared_mailbox,
        client_secret=settings.graph_client_secret.get_secret_value(),
        certificate_path=settings.graph_certificate_path or None,
        certificate_thumbprint=settings.graph_certificate_thumbprint,
        moderators_address=settings.forward_to,
        authority_host=settings.graph_authority_host,
        graph_url=settings.graph_url,
        ca_bundle=settings.graph_ca_bundle or None,
        max_sends_per_minute=settings.graph_max_sends_per_minute,
        processed_category=settings.graph_processed_category,
    )


def mail_transport(settings: Settings, graph: GraphClient | None, clock: Clock) -> MailTransport:
    """Graph when a shared mailbox is configured, else `.eml` files in MAIL_OUTBOX_DIR."""
    if graph is None:
        return EmlOutbox(settings.mail_outbox_dir, settings.mailbox_address, clock)
    return GraphMailTransport(graph, pacer=SendPacer(settings.graph_max_sends_per_minute))


def mail_policy(settings: Settings) -> MailPolicy:
    """Answers by mail from the mailbox, the forwarding address, MODERATOR_SENDERS, admins and
    granted moderators; staff domains default to the mailbox's domain."""
    return MailPolicy(
        mailbox=settings.mailbox_address,
        moderators=(*settings.moderator_senders, settings.forward_to),
        staff_domains=settings.staff_mail_domains or (settings.mailbox_address.rpartition("@")[2],),
        max_age_days=settings.retention_days,
        admins=frozenset(settings.admins),
    )
