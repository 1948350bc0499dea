"""The app factory and entry point: `create_app(settings)` wires services; `main()` runs it."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web
from pydantic import ValidationError

from bot.auth import build_authentication
from bot.endpoint import MessagesEndpoint
from bot.sender import TeamsConnector, TeamsDirectory, TeamsSender
from bot.teams import QuestionsBot
from config.settings import Settings, load_settings
from faq.matcher import matcher_for_file
from handlers import forwarding, replies, triage
from handlers.deps import Deps, Limits
from mail.eml import EmlOutbox
from outbox.retry import RetryPolicy
from outbox.worker import OutboxWorker
from store.db import create_engine
from store.migrate import upgrade_async
from store.store import Store

log = logging.getLogger("questions_bot")

STORE = web.AppKey("store", Store)
WORKER = web.AppKey("worker", OutboxWorker)


def create_app(settings: Settings) -> web.Application:
    """Build the app. Fails fast (FaqFormatError, ValidationError) on a bad FAQ or settings."""
    matcher = matcher_for_file(
        settings.faq_path, threshold=settings.faq_threshold, min_precision=settings.faq_min_precision
    )
    app = web.Application(client_max_size=settings.max_body_bytes)
    engine = create_engine(settings.database_url)
    store = Store(engine)
    auth = build_authentication(settings)
    connector = TeamsConnector(auth, settings.app_id)
    deps = Deps(
        store=store,
        faq=matcher,
        mail=EmlOutbox(settings.mail_outbox_dir, settings.mail_from_address),
        directory=TeamsDirectory(connector),
        limits=Limits(settings.max_question_chars, settings.moderators_address),
        log=log,
    )
    worker = OutboxWorker(
        store,
        {
            triage.TRIAGE_JOB: partial(triage.triage, deps),
            forwarding.FORWARD: partial(forwarding.forward, deps),
            replies.TEAMS_SEND: TeamsSender(connector).send,
        },
        retry=RetryPolicy(max_attempts=settings.outbox_max_attempts),
        poll_seconds=settings.outbox_poll_seconds,
        lease_seconds=settings.outbox_lease_seconds,
    )
    store.after_enqueue = worker.wake
    app[STORE] = store
    app[WORKER] = worker

    async def database(_: web.Application) -> AsyncIterator[None]:
        await upgrade_async(settings.database_url)
        yield
        await engine.dispose()

    async def outbox_worker(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(worker.run(), name="outbox-worker")
        yield
        await worker.stop()
        await task
        await connector.close()

    app.cleanup_ctx.extend([database, outbox_worker])
    endpoint = MessagesEndpoint(auth, QuestionsBot(deps), max_body_bytes=settings.max_body_bytes)
    app.router.add_post("/api/messages", endpoint.handle)
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers, 503 when it does not (for load balancers and `make run`)."""
    reachable = await request.app[STORE].ping()
    return web.json_response(
        {"status": "ok" if reachable else "unavailable", "database": "ok" if reachable else "unreachable"},
        status=200 if reachable else 503,
    )


def main() -> None:
    try:
        settings = load_settings()
    except ValidationError as error:
        print(f"Invalid settings:\n{error}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not settings.auth_enabled:
        log.warning(
            "MicrosoftAppId is not set: Bot Framework authentication is OFF. Serving on 127.0.0.1 "
            "only, for the Bot Framework Emulator. Set MicrosoftAppId/MicrosoftAppPassword to serve Teams."
        )
    web.run_app(create_app(settings), host=settings.bind_host, port=settings.port, print=None)


if __name__ == "__main__":
    main()
