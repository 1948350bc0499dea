"""`GET /metrics` in the Prometheus text format: backlog, age of the oldest pending job, counts.

Figures that must agree across instances (questions, answers, backlog) are read from the
database at scrape time; retries and failures are this process's own counters.

The figures are the organisation's (how many questions, how far behind), so they are never on
the bot's public listener for anyone to read: they are served on a listener of their own
(METRICS_HOST, METRICS_PORT), or on the bot's listener only with METRICS_TOKEN as a bearer token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.states import QuestionStatus
from outbox.worker import OutboxWorker
from store.store import Store

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Snapshot(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics


async def snapshot(store: Store, worker: OutboxWorker) -> list[Metric]:
    async with store.unit() as unit:
        by_status = await unit.questions.counts()
        forwarded = await unit.questions.mailed_count()
        answers = await unit.answers.count()
        backlog, oldest = await unit.outbox.backlog()
        failed = await unit.outbox.failed_by_kind()
    questions = GaugeMetricFamily("cqb_questions", "Questions recorded, by state", labels=["status"])
    for status in sorted(QuestionStatus):  # every state, 0 when none, so an alert can watch each one
        questions.add_metric([status.value], by_status.get(status, 0))
    jobs = CounterMetricFamily("cqb_outbox_jobs", "Outbox jobs finished by this process", labels=["outcome"])
    for outcome, count in sorted(worker.counts.items()):
        jobs.add_metric([outcome], count)
    return [
        questions,
        GaugeMetricFamily("cqb_answers", "Moderator answers recorded", value=answers),
        GaugeMetricFamily("cqb_forwards", "Questions forwarded to the moderators by mail", value=forwarded),
        GaugeMetricFamily("cqb_outbox_backlog", "Outbox jobs waiting or running", value=backlog),
        GaugeMetricFamily(
            "cqb_outbox_oldest_pending_seconds", "Age of the oldest job not yet done", value=oldest
        ),
        _failed_by_kind(failed, worker.kinds),
        jobs,
    ]


def _failed_by_kind(failed: dict[str, int], kinds: Iterable[str]) -> Metric:
    """Every kind the worker runs, 0 when none failed, so an alert can watch each one."""
    metric = GaugeMetricFamily("cqb_outbox_failed", "Outbox jobs that gave up (never delivered), by kind",
                               labels=["kind"])
    for kind in sorted({*kinds, *failed}):
        metric.add_metric([kind], failed.get(kind, 0))
    return metric


def metrics_handler(store: Store, worker: OutboxWorker) -> Handler:
    async def handle(_: web.Request) -> web.Response:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(await snapshot(store, worker)))
        return web.Response(body=generate_latest(registry), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    return handle


def bearer_only(handler: Handler, token: str) -> Handler:
    """`handler` for requests that carry `Authorization: Bearer <token>`; 401 for the rest."""
    expected = f"Bearer {token}".encode()

    async def handle(request: web.Request) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.Response(status=401, text="a bearer token is needed",
                                headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return await handler(request)

    return handle


class MetricsListener:
    """`/metrics`, alone, on its own address: started after the database, stopped before it."""

    def __init__(self, handler: Handler, host: str, port: int) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self.port: int | None = None  # the port it listens on, once started (METRICS_PORT=0 picks one)

    async def running(self, _: web.Application) -> AsyncIterator[None]:
        app = web.Application()
        app.router.add_get("/metrics", self._handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
            self.port = runner.addresses[0][1]
            log.info("metrics on http://%s:%d/metrics", self._host, self.port)
            yield
        finally:
            await runner.cleanup()
