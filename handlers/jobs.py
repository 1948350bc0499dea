"""Every outbox job the product runs, each registered beside its function with @job.

Importing this module imports every module that registers one; `runners` refuses to start if a
kind in domain.jobs still has no function (a module missing from this list, or a new kind)."""

from __future__ import annotations

# Imported for their @job registrations.
from handlers import (  # noqa: F401
    answering,
    board,
    feedback,
    forwarding,
    inbox,
    mail_replies,
    moderation,
    replies,
    triage,
)
from handlers.deps import Deps
from outbox.jobs import runners
from outbox.worker import JobHandler, batched, rerunnable


def job_runners(deps: Deps) -> dict[str, JobHandler | batched | rerunnable]:
    """Every job kind's function, given `deps`, for the outbox worker."""
    return runners(deps)
