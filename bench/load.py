"""Load benchmark: the questions bot as separate processes, driven like Teams drives it.

Why this shape: what matters in production is the whole path, so the bot runs as a real
`python app.py` process (JWT validation on, real database, real outbox) and this tool plays
Teams and the Bot Connector (tests/support/channel.py, on its own thread): it POSTs signed
activities from many users and times the replies the bot posts back to the connector.

Measured per run: questions/s sustained, HTTP ack latency, reply latency (connector
`received_at` minus send time, matched on replyToId = activity id), bot CPU per 1,000
questions and peak memory (from /proc), lost and duplicated replies, and this tool's own CPU
(it shares the machine's cores with the bot). Scenarios: the bot on SQLite, on PostgreSQL,
two instances on one PostgreSQL database, and the stock botbuilder echo bot (bench/echo_bot.py).

Run from the repository root:
    .venv/bin/python bench/load.py --quick                 # ~1-2 minute smoke run
    .venv/bin/python bench/load.py                          # open-loop 50/150/300/600 q/s, 60 s each
    .venv/bin/python bench/load.py --scenarios sqlite --rates 300 --seconds 60
    .venv/bin/python bench/load.py --rates '' --concurrency 8,32   # closed loop only
See bench/README-load.md for what the numbers mean and the results measured so far.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import signal
import socket
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq.store import load_faq
from tests.support.channel import (
    ConnectorRequest,
    FakeChannel,
    TeamsUser,
    _describe_connector,
    _Journal,
)

APP_ID = "5b1c0ad0-0000-4000-8000-00000000be9c"
APP_PASSWORD = "load-bench-secret-not-real"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SCENARIOS = ("sqlite", "postgres", "postgres-x2", "echo")
REPLY_KINDS = frozenset({"reply", "send"})

# Questions the bundled FAQ should not answer: they are forwarded (one .eml each).
OFF_TOPIC = (
    "Will the staff choir be singing at the Shire Hall carol service this year?",
    "Is the canteen on the third floor going to start doing vegan options?",
    "Who won the inter-department quiz last Friday?",
    "Can we get a second microwave in the kitchen on level 2?",
    "Why was the all-staff briefing moved from Tuesday to Thursday?",
    "Are there plans to replace the old lifts in the east wing?",
    "Will the chief executive answer questions about the restructure at the next event?",
    "Could the recording of today's briefing have subtitles added?",
    "When is the summer barbecue for the highways team?",
    "Is the council going to sponsor the local half marathon again?",
    "Why are the blinds in meeting room 4 always stuck?",
    "What is happening to the old library building on Market Street?",
    "Can we have a bike repair stand in the depot car park?",
    "Will the Christmas jumper day raise money for the food bank?",
    "Who decides which charities get the payroll giving slots?",
    "Are we getting new chairs in the contact centre?",
)


# --------------------------------------------------------------------------
# /proc accounting (no psutil: the repo's venv is not ours to add to)
# --------------------------------------------------------------------------


def _stat_fields(path: str) -> list[str]:
    """Fields of a /proc stat file after the `(comm)`, so field 14 (utime) is index 11."""
    with open(path, encoding="ascii", errors="replace") as handle:
        text = handle.read()
    return text[text.rindex(")") + 2 :].split()


def proc_cpu(pid: int, *, children: bool = False) -> float:
    """utime+stime of a process (all its threads), optionally plus its reaped children."""
    fields = _stat_fields(f"/proc/{pid}/stat")
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def thread_cpu(pid: int, tid: int) -> float:
    fields = _stat_fields(f"/proc/{pid}/task/{tid}/stat")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def threads_cpu(pid: int) -> dict[int, float]:
    """CPU per live thread: py-spy sees only Python threads, this shows the native ones too."""
    out: dict[int, float] = {}
    for entry in os.scandir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, ValueError):
            out[int(entry.name)] = thread_cpu(pid, int(entry.name))
    return out


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process's resident-memory high-water mark since it started."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return math.nan


def postgres_cpu() -> float:
    """CPU of every `postgres` process (backends plus what the postmaster reaped): PostgreSQL
    competes for the same two cores, so its share belongs in the picture."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError):
            with open(f"/proc/{entry.name}/comm", encoding="ascii") as handle:
                if handle.read().strip() != "postgres":
                    continue
            total += proc_cpu(int(entry.name), children=True)
    return total


# --------------------------------------------------------------------------
# the connector tap: replies as they arrive, on our loop
# --------------------------------------------------------------------------


class ReplyTap(_Journal[ConnectorRequest]):
    """Replaces `channel.connector.requests`: records like the channel's journal, and hands
    each posted message to our event loop as it arrives.

    The stock journal copies its whole list on every append (for its waiters), which under
    tens of thousands of replies would make the sink itself the bottleneck; with no waiters
    registered this only appends.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sink: Callable[[ConnectorRequest], None]) -> None:
        super().__init__(_describe_connector)
        self._loop = loop
        self._sink = sink

    def append(self, item: ConnectorRequest) -> None:
        if self._waiters:
            super().append(item)
        else:
            with self._lock:
                self._items.append(item)
        if item.kind in REPLY_KINDS:
            self._loop.call_soon_threadsafe(self._sink, item)


# --------------------------------------------------------------------------
# bookkeeping
# --------------------------------------------------------------------------


@dataclass(slots=True)
class Question:
    """One activity sent, and what became of it (monotonic times, the channel's clock too)."""

    activity_id: str
    faq: bool
    scheduled: float = 0.0
    sent: float = 0.0
    acked: float = 0.0
    status: int = 0
    replies: list[float] = field(default_factory=list)
    faq_card: bool = False
    waiter: asyncio.Future[None] | None = None

    @property
    def acked_ok(self) -> bool:
        """Accepted: 200 from the questions bot, 201 from stock botbuilder's CloudAdapter."""
        return 200 <= self.status < 300


@dataclass
class RunResult:
    scenario: str
    mode: str
    offered_rate: float | None
    concurrency: int | None
    window_s: float
    sent: int
    acked_ok: int
    errors: dict[str, int]
    shed: int
    answered: int
    answered_per_s: float
    ack_p50_ms: float
    ack_p99_ms: float
    reply_p50_ms: float
    reply_p99_ms: float
    reply_max_ms: float
    lost: int
    duplicated: int
    stray_replies: int
    faq_share: float
    faq_answered_share: float | None
    mails_written: int
    bot_cpu_s: float
    bot_cpu_s_per_1k: float
    bot_main_thread_share: float
    bot_peak_rss_mib: float
    loadgen_cpu_s: float
    sink_cpu_s: float
    postgres_cpu_s: float | None
    gen_lag_p99_ms: float

    def meets_target(self) -> dict[str, bool]:
        """The issue's target for one instance on SQLite at 300 questions/s for 60 s."""
        return {
            "ack p99 < 100 ms": self.ack_p99_ms < 100,
            "reply p99 < 1 s": self.reply_p99_ms < 1000,
            "zero lost": self.lost == 0 and self.answered > 0,
            "zero duplicated": self.duplicated == 0,
            "bot CPU <= 3 ms/question": self.bot_cpu_s_per_1k <= 3.0,
            "nothing refused or timed out": not self.errors and self.shed == 0,
        }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# --------------------------------------------------------------------------
# bot processes
# --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class BotProcess:
    name: str
    process: asyncio.subprocess.Process
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/messages"

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"


async def start_bot(
    name: str, argv: list[str], env: dict[str, str], log_dir: Path, *, timeout: float = 120.0
) -> BotProcess:
    """Start one bot process and wait until GET /healthz answers 200."""
    port = free_port()
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, env={**env, "PORT": str(port)}, stdout=log_file, stderr=log_file,
            stdin=asyncio.subprocess.DEVNULL,
        )
    bot = BotProcess(name, process, port, log_path)
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{bot.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return bot
            if time.monotonic() > deadline:
                await stop_bot(bot)
                raise RuntimeError(f"{name} not healthy after {timeout:.0f}s:\n{bot.log_tail()}")
            await asyncio.sleep(0.2)


async def stop_bot(bot: BotProcess, grace: float = 20.0) -> None:
    """SIGTERM (aiohttp's graceful shutdown, so the outbox worker stops cleanly), then SIGKILL."""
    if bot.process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        bot.process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(bot.process.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            bot.process.kill()
        await bot.process.wait()


def bot_environment(channel: FakeChannel, extra: dict[str, str]) -> dict[str, str]:
    """A clean environment: nothing from this shell leaks into the bot's settings."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    env.update(channel.bot_env(APP_ID, APP_PASSWORD))
    env.update(
        HOST="127.0.0.1",
        REQUESTS_CA_BUNDLE=str(channel.ca_bundle),
        LOG_LEVEL="WARNING",
        MODERATORS_ADDRESS="staff-questions@council.example",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A fresh database bench_load_<random> for one scenario, dropped afterwards."""
    import asyncpg  # the bot's own driver; only needed for the PostgreSQL scenarios

    name = f"bench_load_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}".replace("postgresql+asyncpg://", "postgresql://")
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# --------------------------------------------------------------------------
# the load generator
# --------------------------------------------------------------------------


class Driver:
    """Sends activities to the bots and matches the replies the connector receives."""

    def __init__(
        self,
        channel: FakeChannel,
        session: aiohttp.ClientSession,
        users: list[TeamsUser],
        faq_questions: list[str],
        *,
        faq_share: float,
        seed: int,
        request_timeout: float,
    ) -> None:
        self.channel = channel
        self.session = session
        self.users = users
        self.faq_questions = faq_questions
        self.faq_share = faq_share
        self.random = random.Random(seed)
        self.request_timeout = aiohttp.ClientTimeout(total=request_timeout)
        self.questions: dict[str, Question] = {}
        self.stray = 0
        self.unanswered = 0  # acked questions still without a reply
        self.all_answered = asyncio.Event()
        self.errors: Counter[str] = Counter()
        self._headers: dict[str, str] = {}

    # replies (called on our loop by ReplyTap) ------------------------------------

    def on_reply(self, request: ConnectorRequest) -> None:
        question = self.questions.get(request.activity_id or "")
        if question is None or not request.ok:
            self.stray += 1
            return
        question.replies.append(request.received_at)
        if len(question.replies) == 1:
            question.faq_card = bool(request.attachments)
            if question.acked_ok:
                self._one_answered()
            if question.waiter is not None and not question.waiter.done():
                question.waiter.set_result(None)

    def _one_answered(self) -> None:
        self.unanswered -= 1
        if self.unanswered <= 0:
            self.all_answered.set()

    # sending -------------------------------------------------------------------

    def new_run(self) -> None:
        """Forget the last run; one freshly minted token serves the whole run."""
        self.questions = {}
        self.stray = 0
        self.unanswered = 0
        self.all_answered = asyncio.Event()
        self.errors = Counter()
        self.channel.connector.requests.clear()
        self._headers = {
            "Authorization": self.channel.bearer(APP_ID),
            "Content-Type": "application/json; charset=utf-8",
        }

    def make(self) -> tuple[Question, bytes]:
        """One activity from a random user: an FAQ question or an off-topic one."""
        is_faq = self.random.random() < self.faq_share
        text = self.random.choice(self.faq_questions if is_faq else OFF_TOPIC)
        user = self.random.choice(self.users)
        activity = self.channel.activities.personal_message(user, text)
        return Question(activity["id"], is_faq), json.dumps(activity).encode()

    async def post(self, url: str, question: Question, body: bytes) -> None:
        self.questions[question.activity_id] = question
        question.sent = time.monotonic()
        try:
            async with self.session.post(
                url, data=body, headers=self._headers, timeout=self.request_timeout
            ) as response:
                await response.read()
                question.status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            question.status = -1
            self.errors[type(error).__name__] += 1
        question.acked = time.monotonic()
        if question.acked_ok:
            if not question.replies:
                self.unanswered += 1
                self.all_answered.clear()
        elif question.status > 0:
            self.errors[f"HTTP {question.status}"] += 1

    async def open_loop(
        self, urls: list[str], rate: float, seconds: float, max_questions: int, max_inflight: int
    ) -> tuple[float, float, int]:
        """Send at a fixed rate regardless of how the bot copes (no coordinated omission).

        Activities are built before the clock starts so that building them costs nothing in
        the window. Returns (window start, window end, shed): shed counts sends skipped because
        `max_inflight` requests were already outstanding (the bot was far behind).
        """
        count = max(1, min(max_questions, int(rate * seconds)))
        prepared = [self.make() for _ in range(count)]
        tasks: set[asyncio.Task[None]] = set()
        shed = 0
        start = time.monotonic() + 0.05
        index = 0
        while index < count:
            now = time.monotonic()
            due = min(count, int((now - start) * rate) + 1) if now >= start else 0
            while index < due:
                question, body = prepared[index]
                question.scheduled = start + index / rate
                if len(tasks) >= max_inflight:
                    shed += 1
                else:
                    task = asyncio.create_task(self.post(urls[index % len(urls)], question, body))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                index += 1
            if index < count:
                await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
        end = time.monotonic()
        if tasks:
            await asyncio.gather(*tasks)
        return start, end, shed

    async def closed_loop(
        self, urls: list[str], concurrency: int, seconds: float, max_questions: int, reply_timeout: float
    ) -> tuple[float, float]:
        """`concurrency` users, each asking again as soon as its previous reply arrived."""
        start = time.monotonic()
        stop_at = start + seconds
        budget = [max_questions]

        async def user(slot: int) -> None:
            url = urls[slot % len(urls)]
            while time.monotonic() < stop_at and budget[0] > 0:
                budget[0] -= 1
                question, body = self.make()
                question.scheduled = time.monotonic()
                question.waiter = asyncio.get_running_loop().create_future()
                await self.post(url, question, body)
                if not question.acked_ok:
                    await asyncio.sleep(0.05)  # do not spin on a bot that refuses
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(question.waiter), reply_timeout)

        await asyncio.gather(*(user(slot) for slot in range(concurrency)))
        return start, time.monotonic()

    async def drain(self, timeout: float, settle: float) -> None:
        """Wait for every acknowledged question's reply (or the timeout), then a little longer
        so that duplicates sent just after the last first reply are counted too."""
        if self.unanswered > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_answered.wait(), timeout)
        await asyncio.sleep(settle)


# --------------------------------------------------------------------------
# one scenario
# --------------------------------------------------------------------------


@dataclass
class Options:
    rates: list[float]
    concurrencies: list[int]
    seconds: float
    max_questions: int
    drain: float
    settle: float
    warmup: int
    users: int
    faq_share: float
    max_inflight: int
    request_timeout: float
    pg_admin_url: str
    bot_env: dict[str, str]
    py_spy: str | None
    bot_script: Path
    profile_dir: Path | None
    seed: int


class Accounting:
    """CPU and memory snapshots around a run."""

    def __init__(self, bots: list[BotProcess], channel: FakeChannel, with_postgres: bool) -> None:
        self.bots = bots
        self.channel_tid = channel._thread.native_id if channel._thread else None
        self.main_tid = threading.get_native_id()
        self.with_postgres = with_postgres

    def snapshot(self) -> dict[str, Any]:
        me = os.getpid()
        return {
            "bots": sum(proc_cpu(b.pid) for b in self.bots),
            "bot_main": sum(thread_cpu(b.pid, b.pid) for b in self.bots),
            "loadgen": thread_cpu(me, self.main_tid),
            "sink": thread_cpu(me, self.channel_tid) if self.channel_tid else 0.0,
            "postgres": postgres_cpu() if self.with_postgres else 0.0,
        }


async def run_once(
    name: str,
    mode: str,
    driver: Driver,
    bots: list[BotProcess],
    accounting: Accounting,
    options: Options,
    outbox_dirs: list[Path],
    *,
    rate: float | None = None,
    concurrency: int | None = None,
) -> RunResult:
    urls = [bot.url for bot in bots]
    driver.new_run()
    mails_before = sum(len(list(d.glob("*.eml"))) for d in outbox_dirs)
    spy = await start_py_spy(options, bots[0], f"{name}-{mode}")
    before = accounting.snapshot()
    shed = 0
    if rate is not None:
        start, end, shed = await driver.open_loop(
            urls, rate, options.seconds, options.max_questions, options.max_inflight
        )
    else:
        assert concurrency is not None
        start, end = await driver.closed_loop(
            urls, concurrency, options.seconds, options.max_questions, options.drain
        )
    await driver.drain(options.drain, options.settle)
    after = accounting.snapshot()
    if spy is not None:
        await spy.wait()
    mails = sum(len(list(d.glob("*.eml"))) for d in outbox_dirs) - mails_before

    questions = list(driver.questions.values())
    ok = [q for q in questions if q.acked_ok]
    answered = [q for q in ok if q.replies]
    first_replies = [q.replies[0] for q in answered]
    answered_window = (max(first_replies) - start) if first_replies else math.nan
    bot_cpu = after["bots"] - before["bots"]
    return RunResult(
        scenario=name,
        mode=mode,
        offered_rate=rate,
        concurrency=concurrency,
        window_s=round(end - start, 2),
        sent=len(questions),
        acked_ok=len(ok),
        errors=dict(driver.errors),
        shed=shed,
        answered=len(answered),
        answered_per_s=len(answered) / answered_window if answered else 0.0,
        ack_p50_ms=percentile([(q.acked - q.sent) * 1000 for q in questions], 50),
        ack_p99_ms=percentile([(q.acked - q.sent) * 1000 for q in questions], 99),
        reply_p50_ms=percentile([(q.replies[0] - q.sent) * 1000 for q in answered], 50),
        reply_p99_ms=percentile([(q.replies[0] - q.sent) * 1000 for q in answered], 99),
        reply_max_ms=max(((q.replies[0] - q.sent) * 1000 for q in answered), default=math.nan),
        lost=len(ok) - len(answered),
        duplicated=sum(1 for q in questions if len(q.replies) > 1),
        stray_replies=driver.stray,
        faq_share=sum(q.faq for q in questions) / len(questions) if questions else 0.0,
        faq_answered_share=(
            None if name == "echo"
            else sum(q.faq_card for q in answered if q.faq) / max(1, sum(q.faq for q in answered))
        ),
        mails_written=mails,
        bot_cpu_s=round(bot_cpu, 2),
        bot_cpu_s_per_1k=bot_cpu / len(ok) * 1000 if ok else math.nan,
        bot_main_thread_share=(after["bot_main"] - before["bot_main"]) / bot_cpu if bot_cpu else math.nan,
        bot_peak_rss_mib=max(peak_rss_mib(bot.pid) for bot in bots),
        loadgen_cpu_s=round(after["loadgen"] - before["loadgen"], 2),
        sink_cpu_s=round(after["sink"] - before["sink"], 2),
        postgres_cpu_s=round(after["postgres"] - before["postgres"], 2) if accounting.with_postgres else None,
        gen_lag_p99_ms=percentile([(q.sent - q.scheduled) * 1000 for q in questions], 99),
    )


async def start_py_spy(options: Options, bot: BotProcess, label: str) -> asyncio.subprocess.Process | None:
    """Optionally sample the (first) bot for the run's send window with py-spy."""
    if not options.py_spy or options.profile_dir is None:
        return None
    options.profile_dir.mkdir(parents=True, exist_ok=True)
    output = options.profile_dir / f"{label.replace(' ', '_').replace('/', '')}.txt"
    with open(output.with_suffix(".log"), "wb") as log_file:
        return await asyncio.create_subprocess_exec(
            options.py_spy, "record", "--pid", str(bot.pid), "--duration", str(max(1, int(options.seconds))),
            "--rate", "200", "--nonblocking", "--format", "raw", "--output", str(output),
            stdout=log_file, stderr=log_file, stdin=asyncio.subprocess.DEVNULL,
        )


async def quiesce(bots: list[BotProcess], *, idle_cpu: float = 0.05, limit: float = 180.0) -> None:
    """Wait until the bots are idle (under `idle_cpu` CPU-seconds per second), so that the
    backlog an overloaded run left behind is neither charged to the next run nor slows it."""
    started = time.monotonic()
    last = sum(proc_cpu(b.pid) for b in bots)
    while time.monotonic() - started < limit:
        await asyncio.sleep(1.0)
        now = sum(proc_cpu(b.pid) for b in bots)
        if now - last < idle_cpu:
            waited = time.monotonic() - started
            if waited > 2:
                print(f"  (waited {waited:.0f} s for the bot to finish the previous run's backlog)", flush=True)
            return
        last = now
    print(f"  (bot still busy after {limit:.0f} s; measuring anyway)", flush=True)


async def warm_up(driver: Driver, bots: list[BotProcess], count: int, timeout: float = 60.0) -> None:
    """First requests fetch the JWKS, the outgoing token and warm the matcher: keep them out."""
    driver.new_run()
    tasks = []
    for index in range(max(count, len(bots))):
        question, body = driver.make()
        tasks.append(driver.post(bots[index % len(bots)].url, question, body))
    await asyncio.gather(*tasks)
    bad = [q for q in driver.questions.values() if not q.acked_ok]
    if bad:
        raise RuntimeError(f"warm-up: {len(bad)} activities refused: {dict(driver.errors)}\n"
                           + "\n".join(b.log_tail(10) for b in bots))
    await driver.drain(timeout, 0.5)
    if driver.unanswered > 0:
        raise RuntimeError(f"warm-up: {driver.unanswered} questions got no reply in {timeout:.0f}s\n"
                           + "\n".join(b.log_tail(10) for b in bots))


async def run_scenario(
    name: str, channel: FakeChannel, driver: Driver, options: Options, workdir: Path
) -> list[RunResult]:
    """Start the scenario's bot process(es), warm up, run every mode, stop everything."""
    python = sys.executable
    instances = 2 if name == "postgres-x2" else 1
    echo = name == "echo"
    scenario_dir = workdir / name
    scenario_dir.mkdir()
    results: list[RunResult] = []
    async with contextlib.AsyncExitStack() as stack:
        extra: dict[str, str] = dict(options.bot_env)
        if name == "sqlite":
            extra["DATABASE_URL"] = f"sqlite:///{scenario_dir / 'bot.db'}"
        elif not echo:
            extra["DATABASE_URL"] = await stack.enter_async_context(postgres_database(options.pg_admin_url))
        outbox_dirs = []
        bots: list[BotProcess] = []
        for index in range(instances):
            outbox_dir = scenario_dir / f"outbox-{index}"
            outbox_dirs.append(outbox_dir)
            env = bot_environment(channel, {**extra, "MAIL_OUTBOX_DIR": str(outbox_dir)})
            argv = [python, str(ROOT / "bench" / "echo_bot.py")] if echo else [python, str(options.bot_script)]
            # One after the other: the first one migrates the database, the second finds it done.
            bot = await start_bot(f"{name}-{index}", argv, env, scenario_dir)
            stack.push_async_callback(stop_bot, bot)
            bots.append(bot)
        print(f"\n## {name}: {', '.join(f'pid {b.pid} on :{b.port}' for b in bots)}", flush=True)
        await warm_up(driver, bots, options.warmup)
        accounting = Accounting(bots, channel, with_postgres=name.startswith("postgres"))
        for rate in options.rates:
            await quiesce(bots)
            result = await run_once(name, f"open {rate:g}/s", driver, bots, accounting, options,
                                    outbox_dirs, rate=rate)
            print_progress(result)
            results.append(result)
        for concurrency in options.concurrencies:
            await quiesce(bots)
            result = await run_once(name, f"closed c={concurrency}", driver, bots, accounting, options,
                                    outbox_dirs, concurrency=concurrency)
            print_progress(result)
            results.append(result)
        for bot in bots:
            if bot.process.returncode is not None:
                print(f"WARNING: {bot.name} died during the run:\n{bot.log_tail()}")
            elif bot.log_path.stat().st_size:
                # LOG_LEVEL=WARNING: anything logged is worth a look.
                print(f"  {bot.name} logged {bot.log_path.stat().st_size:,} bytes; last lines:\n"
                      + textwrap.indent(bot.log_tail(6), "    | "), flush=True)
    return results


# --------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------


def _f(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def print_progress(r: RunResult) -> None:
    print(
        f"  {r.mode:>14}: {r.answered}/{r.sent} answered, {r.answered_per_s:.1f} q/s, "
        f"ack p99 {_f(r.ack_p99_ms)} ms, reply p99 {_f(r.reply_p99_ms)} ms, "
        f"CPU {_f(r.bot_cpu_s_per_1k, 2)} s/1k, lost {r.lost}, dup {r.duplicated}, "
        f"errors {sum(r.errors.values())}, shed {r.shed}",
        flush=True,
    )


def markdown_table(results: list[RunResult]) -> str:
    header = (
        "| run | sent | ok acks | q/s sustained | ack p50 / p99 ms | reply p50 / p99 ms | "
        "bot CPU s per 1k q | bot peak RSS MiB | lost | dup | errors / shed | FAQ answered | "
        "mails | load-gen CPU s (gen + sink) | PostgreSQL CPU s |"
    )
    rows = [header, "|" + "|".join("---" for _ in range(header.count("|") - 1)) + "|"]
    for r in results:
        errors = sum(r.errors.values())
        faq = "–" if r.faq_answered_share is None else f"{r.faq_answered_share:.0%} of {r.faq_share:.0%}"
        rows.append(
            f"| {r.mode} | {r.sent:,} | {r.acked_ok:,} | {_f(r.answered_per_s)} | "
            f"{_f(r.ack_p50_ms)} / {_f(r.ack_p99_ms)} | {_f(r.reply_p50_ms)} / {_f(r.reply_p99_ms)} | "
            f"{_f(r.bot_cpu_s_per_1k, 2)} | {_f(r.bot_peak_rss_mib, 0)} | {r.lost} | {r.duplicated} | "
            f"{errors} / {r.shed} | {faq} | {r.mails_written} | "
            f"{_f(r.loadgen_cpu_s)} + {_f(r.sink_cpu_s)} | {_f(r.postgres_cpu_s)} |"
        )
    return "\n".join(rows)


def report(results: list[RunResult]) -> str:
    lines: list[str] = []
    for scenario in dict.fromkeys(r.scenario for r in results):
        mine = [r for r in results if r.scenario == scenario]
        lines += [f"\n### {scenario}\n", markdown_table(mine), ""]
        for r in mine:
            notes = []
            if r.errors:
                notes.append(f"errors {r.errors}")
            if r.stray_replies:
                notes.append(f"{r.stray_replies} replies to unknown or refused activities")
            notes.append(f"bot main thread {r.bot_main_thread_share:.0%} of bot CPU")
            notes.append(f"generator lag p99 {_f(r.gen_lag_p99_ms)} ms")
            notes.append(f"slowest reply {_f(r.reply_max_ms)} ms")
            lines.append(f"- {r.mode}: " + "; ".join(notes))
        target = [r for r in mine if scenario == "sqlite" and r.offered_rate == 300]
        for r in target:
            checks = r.meets_target()
            verdict = "MET" if all(checks.values()) else "NOT MET"
            lines.append(
                f"- target (300 q/s for {r.window_s:.0f} s on SQLite): **{verdict}** — "
                + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items())
            )
    return "\n".join(lines)


def summarise_profile(path: Path, top: int = 25) -> str:
    """Top functions of a py-spy raw (collapsed) profile: inclusive and self share of samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    out = [f"{path.name}: {total} samples", "", "inclusive:"]
    out += [f"  {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    out += ["", "self:"]
    out += [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(out)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Options, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--rates", default="50,150,300,600", help="open-loop rates in questions/s ('' for none)")
    parser.add_argument("--concurrency", default="", help="closed-loop concurrencies, e.g. 8,32 ('' for none)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each run's send window")
    parser.add_argument("--max-questions", type=int, default=100_000, help="cap on activities per run")
    parser.add_argument("--drain", type=float, default=30.0, help="how long to wait for outstanding replies")
    parser.add_argument("--settle", type=float, default=2.0, help="extra wait after the drain (duplicates)")
    parser.add_argument("--warmup", type=int, default=20, help="questions sent before measuring")
    parser.add_argument("--users", type=int, default=2000, help="distinct Teams users")
    parser.add_argument("--faq-share", type=float, default=0.5, help="share of FAQ-answerable questions")
    parser.add_argument("--max-inflight", type=int, default=2000,
                        help="open loop: skip (and count as shed) sends beyond this many outstanding")
    parser.add_argument("--connections", type=int, default=256, help="HTTP connection pool size per run")
    parser.add_argument("--request-timeout", type=float, default=30.0, help="HTTP timeout per activity")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="where to CREATE/DROP the bench databases")
    parser.add_argument("--bot-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the bot processes (repeatable)")
    parser.add_argument("--bot-script", type=Path, default=ROOT / "app.py",
                        help="what to run as the questions bot (e.g. a wrapper that patches something, for what-ifs)")
    parser.add_argument("--py-spy", help="path to py-spy: sample the first bot during every run")
    parser.add_argument("--profile-dir", type=Path, default=Path("/tmp/bench-load-profiles"))
    parser.add_argument("--workdir", type=Path,
                        help="keep bot logs, SQLite files and .eml mail under this folder "
                             "(default: a temp dir, removed)")
    parser.add_argument("--json", type=Path, help="also write every result as JSON here")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 25/s open loop and closed loop c=8, 5 s each, every scenario")
    parser.add_argument("--summarise-profile", type=Path, help="print a py-spy raw profile's top frames and exit")
    args = parser.parse_args(argv)
    if args.quick:
        args.rates, args.concurrency, args.seconds, args.drain = "25", "8", 5.0, 20.0
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}")
    bot_env = {}
    for item in args.bot_env:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--bot-env needs NAME=VALUE, not {item!r}")
        bot_env[key] = value
    options = Options(
        rates=[float(r) for r in args.rates.split(",") if r.strip()],
        concurrencies=[int(c) for c in args.concurrency.split(",") if c.strip()],
        seconds=args.seconds,
        max_questions=args.max_questions,
        drain=args.drain,
        settle=args.settle,
        warmup=args.warmup,
        users=args.users,
        faq_share=args.faq_share,
        max_inflight=args.max_inflight,
        request_timeout=args.request_timeout,
        pg_admin_url=args.pg_admin_url,
        bot_env=bot_env,
        py_spy=args.py_spy,
        bot_script=args.bot_script.resolve(),
        profile_dir=args.profile_dir if args.py_spy else None,
        seed=args.seed,
    )
    return args, options, scenarios


def git_state() -> str:
    """Which code was measured (read-only git; the tree may hold others' uncommitted edits)."""
    import subprocess

    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(ROOT), *args], check=False, capture_output=True, text=True)
        return result.stdout.strip()

    dirty = [line for line in git("status", "--porcelain").splitlines() if line[:2] != "??"]
    return f"commit {git('rev-parse', '--short', 'HEAD') or '?'}, {len(dirty)} modified tracked files"


async def main_async(args: argparse.Namespace, options: Options, scenarios: list[str]) -> list[RunResult]:
    faq_questions = [entry.question for entry in load_faq(ROOT / "config" / "faq.yaml").entries]
    results: list[RunResult] = []
    with contextlib.ExitStack() as stack:
        if args.workdir:
            args.workdir.mkdir(parents=True, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix="bench-load-", dir=args.workdir)
            print(f"# bot logs, databases and mail kept in {tmp}")
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-load-"))
        async with FakeChannel.start() as channel:
            channel.register_app(APP_ID, APP_PASSWORD)
            users = [channel.new_user(f"Colleague {n:05d}") for n in range(options.users)]
            connector = aiohttp.TCPConnector(limit=args.connections, limit_per_host=args.connections)
            async with aiohttp.ClientSession(connector=connector) as session:
                driver = Driver(channel, session, users, faq_questions, faq_share=options.faq_share,
                                seed=options.seed, request_timeout=options.request_timeout)
                channel.connector.requests = ReplyTap(asyncio.get_running_loop(), driver.on_reply)
                print(f"# app under test: {git_state()}")
                print(f"# bench/load.py: scenarios {scenarios}, open-loop rates {options.rates}, "
                      f"closed-loop {options.concurrencies}, {options.seconds:g} s per run, "
                      f"{options.users} users, {os.cpu_count()} cores", flush=True)
                for name in scenarios:
                    try:
                        results += await run_scenario(name, channel, driver, options, Path(tmp))
                    except RuntimeError as error:
                        print(f"\n## {name}: FAILED: {error}", flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args, options, scenarios = parse_args(argv)
    if args.summarise_profile:
        print(summarise_profile(args.summarise_profile))
        return 0
    results = asyncio.run(main_async(args, options, scenarios))
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2, default=str))
    return 0 if results else 1


if __name__ == "__main__":
    raise SystemExit(main())
