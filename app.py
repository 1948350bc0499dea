"""The app factory and entry point: `create_app(settings)` wires services; `main()` runs it."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from functools import partial

from aiohttp import web
from pydantic import ValidationError

from bot.auth import build_authentication
from bot.channel import TeamsChannel
from bot.endpoint import MessagesEndpoint
from bot.sender import TeamsConnector
from bot.teams import Audience, QuestionsBot
from clock import SYSTEM_CLOCK, Clock
from config.settings import Settings, load_settings
from faq.live import LiveMatcher, live_matcher_for_file
from faq.store import FaqFormatError
from handlers.channels import TEAMS, Channel
from handlers.deps import Deps
from handlers.inbox import handle_inbound
from handlers.jobs import job_runners
from handlers.reminders import remind_waiting
from handlers.retention import RetentionPolicy, purge_expired
from mail.base import MailTransport
from mail.eml import EmlOutbox
from mail.graph import GraphClient
from mail.graph_inbox import GraphInbox
from mail.watcher import InboxWatcher
from ops.metrics import MetricsListener, bearer_only, metrics_handler
from ops.periodic import Periodic
from outbox.precedence import RequestsFirst
from outbox.retry import RetryPolicy
from outbox.worker import OutboxWorker
from store.db import create_engine
from store.leadership import leading
from store.migrate import upgrade_async
from store.store import Store
from wiring import graph_config, limits, mail_policy, mail_transport

log = logging.getLogger("questions_bot")

MAILBOX_STATE = "mailbox.delta"
# How long aiohttp keeps reading a refused body (408, 413) so the client sees the answer before
# the connection closes; its default, 10 s, would hold a slow client that long again.
LINGERING_SECONDS = 2.0
STORE = web.AppKey("store", Store)
WORKER = web.AppKey("worker", OutboxWorker)
METRICS_LISTENER = web.AppKey("metrics_listener", MetricsListener)


def create_app(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> web.Application:
    """Build the app. Fails fast (FaqFormatError, ValidationError) on a bad FAQ or settings.
    Every time it reads comes from `clock` (tests move theirs forward rather than sleep)."""
    matcher = live_matcher_for_file(
        settings.faq_path, threshold=settings.faq_threshold, min_precision=settings.faq_min_precision
    )
    # handler_args reach every server the app runs under (run_app and the tests' TestServer):
    # aiohttp closes a connection that has not sent complete headers within keepalive_timeout,
    # and reads what is left of a refused body (408, 413) for lingering_time before closing.
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        handler_args={
            "keepalive_timeout": settings.request_timeout_seconds,
            "lingering_time": min(settings.request_timeout_seconds, LINGERING_SECONDS),
        },
    )
    engine = create_engine(settings.database_url)
    store = Store(engine, clock)
    auth = build_authentication(settings, clock)
    connector = TeamsConnector(auth, clock)
    graph = GraphClient(graph_config(settings), clock) if settings.graph_enabled else None
    deps = Deps(
        store=store,
        faq=matcher,
        mail=mail_transport(settings, graph, clock),
        limits=limits(settings),
        log=log,
        clock=clock,
        channels={TEAMS: TeamsChannel(connector, settings.tenants)},
        admins=frozenset(settings.admins),
    )
    requests_first = RequestsFirst()
    job_deps = replace(deps, store=store.in_background())  # nobody waits on a job's transactions
    worker = OutboxWorker(
        store,
        job_runners(job_deps),
        retry=RetryPolicy(
            max_attempts=settings.outbox_max_attempts,
            give_up_after=timedelta(hours=settings.outbox_give_up_after_hours),
        ),
        poll_seconds=settings.outbox_poll_seconds,
        lease_seconds=settings.outbox_lease_seconds,
        make_way=requests_first.make_way,
    )
    store.after_enqueue = worker.wake
    app[STORE] = store
    app[WORKER] = worker

    async def database(_: web.Application) -> AsyncIterator[None]:
        await upgrade_async(settings.database_url)
        await matcher.reload(store)  # FAQ entries moderators added (faq_entries), off the loop
        yield
        await engine.dispose()

    async def outbox_worker(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(worker.run(), name="outbox-worker")
        yield
        await worker.stop()
        await task
        await connector.close()

    # Started in this order, stopped in reverse: the watcher stops feeding work, the worker
    # finishes what it holds, then the Graph client and the database close.
    app.cleanup_ctx.append(database)
    metrics = metrics_handler(store, worker)
    if settings.metrics_port is not None:
        app[METRICS_LISTENER] = MetricsListener(metrics, settings.metrics_host, settings.metrics_port)
        app.cleanup_ctx.append(app[METRICS_LISTENER].running)
    if graph is not None:
        app.cleanup_ctx.append(partial(_graph_client, graph))
    app.cleanup_ctx.append(outbox_worker)
    if graph is not None:
        app.cleanup_ctx.append(partial(_mailbox_watcher, settings, deps, graph))
    for duty in background_duties(settings, store.in_background(), deps.mail, matcher, deps.channel):
        app.cleanup_ctx.append(duty.running)
    endpoint = MessagesEndpoint(
        auth,
        QuestionsBot(deps, Audience.of(settings.tenants, auth_enabled=settings.auth_enabled)),
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.request_timeout_seconds,
    )

    async def messages(request: web.Request) -> web.StreamResponse:
        with requests_first.request():
            return await endpoint.handle(request)

    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    metrics_token = settings.metrics_token.get_secret_value()
    if metrics_token:
        app.router.add_get("/metrics", bearer_only(metrics, metrics_token))
    elif settings.metrics_port is None:
        log.info("/metrics is off: set METRICS_PORT (a private listener) or METRICS_TOKEN to serve it")
    return app


def background_duties(
    settings: Settings, store: Store, mail: MailTransport, matcher: LiveMatcher, channel: Callable[[str], Channel]
) -> list[Periodic]:
    """The retention purge (at start, then every RETENTION_INTERVAL_SECONDS; with the `.eml`
    transport its old files too), the reminder of questions waiting too long, and taking in
    FAQ entries moderators added on other instances; all safe to run on several instances at
    once. `channel`: the chat channel of a source (Deps.channel), where reminders are posted."""
    mail_files = mail if isinstance(mail, EmlOutbox) else None
    policy = RetentionPolicy(settings.retention_days, settings.audit_retention_days)
    reminder_after = timedelta(hours=settings.reminder_after_hours)

    async def purge() -> str | None:
        removed = await purge_expired(store, policy, mail=mail_files)
        return ", ".join(f"removed {count} {table}" for table, count in removed.items() if count) or None

    async def remind() -> str | None:
        listed = await remind_waiting(store, channel, after=reminder_after, now=store.clock.now())
        return f"{listed} waiting questions listed for the moderators" if listed else None

    async def take_in_faq_entries() -> None:
        await matcher.reload(store)  # rebuilds (and says so) only when the entries changed

    return [
        Periodic("retention", purge, interval=settings.retention_interval_seconds, log=log),
        Periodic("reminders", remind, interval=settings.reminder_check_seconds, log=log),
        Periodic("faq", take_in_faq_entries, interval=settings.faq_reload_seconds, log=log),
    ]


async def _mailbox_watcher(
    settings: Settings, deps: Deps, graph: GraphClient, _: web.Application
) -> AsyncIterator[None]:
    async def load_state() -> str | None:
        async with deps.store.unit() as unit:
            return await unit.state.get(MAILBOX_STATE)

    async def save_state(value: str) -> None:
        async with deps.store.unit() as unit:
            await unit.state.put(MAILBOX_STATE, value)

    watcher = InboxWatcher(
        GraphInbox(graph),
        load_state=load_state,
        save_state=save_state,
        on_mail=partial(handle_inbound, deps, mail_policy(settings)),
        poll_seconds=settings.mail_poll_seconds,
        now=deps.clock.now,
    )
    stopped = asyncio.Event()

    async def watch_while_leading() -> None:
        """With several instances on one PostgreSQL database, one of them reads the mailbox."""
        async with leading(
            deps.store.engine, "mailbox watcher", stopped=stopped, poll_seconds=settings.mail_poll_seconds
        ) as leader:
            if leader:
                await watcher.run()

    task = asyncio.create_task(watch_while_leading(), name="mailbox-watcher")
    yield
    stopped.set()
    watcher.stop()
    await task


async def _graph_client(graph: GraphClient, _: web.Application) -> AsyncIterator[None]:
    yield
    await graph.aclose()


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers, 503 when it does not (for load balancers and `make run`)."""
    reachable = await request.app[STORE].ping()
    return web.json_response(
        {"status": "ok" if reachable else "unavailable", "database": "ok" if reachable else "unreachable"},
        status=200 if reachable else 503,
    )


async def _freeze_what_startup_built(_: web.Application) -> None:
    """Keep the objects that live as long as the process (the model, the FAQ index, the
    libraries) out of the garbage collector's full passes. Unfrozen, every full pass walked
    them: measured under bench/load.py, 166 ms at the median, a pause every few seconds that
    held every request waiting; frozen, 15 ms."""
    gc.freeze()


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
    try:
        app = create_app(settings)
    except FaqFormatError as error:
        print(f"Cannot start: the FAQ file is invalid: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    app.on_startup.append(_freeze_what_startup_built)
    log.info("serving on http://%s:%d (auth %s)", settings.bind_host, settings.port,
             "on" if settings.auth_enabled else "OFF")
    web.run_app(app, host=settings.bind_host, port=settings.port, print=None)


if __name__ == "__main__":
    main()
