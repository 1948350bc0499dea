"""kill -9 during a burst of questions: how many replies reach Teams twice, against how many
sends were in flight at each kill.

A Teams message cannot be sent idempotently, so a reply the Bot Connector accepted but the bot
had not yet recorded as sent is sent again after a crash. This measures that window with the
bot as a real `python app.py` process (JWT validation on, a real database) and this tool
playing Teams and the Bot Connector (tests/support/channel.py), whose answers take
`--latency-ms` as a real connector's do:

- each round POSTs a burst of `--questions` questions (one per colleague, so one reply each;
  a POST the dead bot did not answer is delivered again, as Teams redelivers),
- while replies flow, the bot is killed with SIGKILL (up to `--kills` times a round, once a
  random number of further replies have been accepted), and restarted on the same database
  once every request it had sent has been answered,
- *in flight at a kill* = replies the connector answered after the process died: sent by the
  dead process, which never heard the answer; *answered before the kill and sent again* =
  replies the connector had accepted before the process died, which it had not yet recorded
  as sent (the window between the connector's answer and the bot's commit),
- at the end of a round every question must have its reply; duplicates are counted per reply.

Run from the repository root:
    .venv/bin/python bench/crash_window.py                       # 5 rounds of 200, SQLite
    .venv/bin/python bench/crash_window.py --database postgres --rounds 3
    .venv/bin/python bench/crash_window.py --bot-script /path/to/other/checkout/app.py  # compare code
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import (
    APP_ID,
    APP_PASSWORD,
    OFF_TOPIC,
    BotProcess,
    bot_environment,
    git_state,
    percentile,
    postgres_database,
    start_bot,
    stop_bot,
)
from faq.store import load_faq
from tests.support.channel import ACTIVITY_POSTS, ConnectorRequest, FakeChannel

LEASE_SECONDS = 10  # the bot's OUTBOX_LEASE_SECONDS here; see main_async


@dataclass
class Kill:
    round: int
    at_s: float  # seconds after the round's burst began
    replies_before: int  # distinct replies the connector had accepted before the kill
    open: int  # replies the connector answered after the process died (the request still open)
    resent_open: int  # of those, sent again by the next process
    resent_answered: list[float]  # replies accepted before the kill and sent again: ms before the kill

    @property
    def duplicates(self) -> int:
        return self.resent_open + len(self.resent_answered)


@contextlib.asynccontextmanager
async def database(kind: str, workdir: Path, pg_admin_url: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bot.db'}"
    else:
        async with postgres_database(pg_admin_url) as url:
            yield url


class Burst:
    """One round's questions: sent until each is acknowledged, their replies counted."""

    def __init__(self, channel: FakeChannel, session: aiohttp.ClientSession, count: int, seed: int) -> None:
        self.channel = channel
        self.session = session
        rng = random.Random(seed)
        faq = [entry.question for entry in load_faq(ROOT / "config" / "faq.yaml").entries]
        users = [channel.new_user(f"Colleague {seed}-{n:04d}") for n in range(count)]
        self.activities = [
            channel.activities.personal_message(user, rng.choice(faq if rng.random() < 0.5 else OFF_TOPIC))
            for user in users
        ]
        self.ids = {activity["id"] for activity in self.activities}

    async def send_all(self, bot: dict[str, BotProcess], rate: float) -> None:
        """POST every question at `rate`, each until the bot (whichever is running) acks it."""

        headers = self.channel.headers_for(self.activities[0])  # one token, as Teams sends for an hour

        async def deliver(activity: dict[str, Any]) -> None:
            body = json.dumps(activity).encode()
            while True:
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with self.session.post(bot["current"].url, data=body, headers=headers,
                                                 timeout=aiohttp.ClientTimeout(total=10)) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.2)  # the bot is down (killed, starting): deliver again

        tasks = []
        for activity in self.activities:
            tasks.append(asyncio.create_task(deliver(activity)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)

    def posts(self, requests: Sequence[ConnectorRequest]) -> list[ConnectorRequest]:
        """Accepted replies to this round's questions, in the order the connector answered."""
        return [r for r in requests if r.kind in ACTIVITY_POSTS and r.ok and r.activity_id in self.ids]

    def replied(self, requests: Sequence[ConnectorRequest]) -> set[str | None]:
        """The questions with at least one accepted reply among `requests`."""
        return {r.activity_id for r in self.posts(requests)}

    def answered(self) -> set[str | None]:
        return self.replied(self.channel.connector.requests.snapshot())


@dataclass
class Round:
    kills: list[Kill]
    duplicates: int
    lost: int
    windows: list[float]  # ms from the connector's answer to the bot's record of the send, per reply


async def record_windows(database_url: str, posts: Sequence[ConnectorRequest]) -> list[float]:
    """For each reply recorded as sent: ms from the connector's last accepted post of it to
    the `updated_at` the bot wrote when it recorded the job done (the crash window)."""
    from sqlalchemy import select

    from store.db import create_engine
    from store.schema import outbox

    wall = time.time() - time.monotonic()  # the connector's clock is this process's monotonic one
    answered: dict[str, list[float]] = {}
    for post in posts:
        answered.setdefault(post.activity_id or "", []).append(post.received_at + wall)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(
                select(outbox.c.payload, outbox.c.updated_at)
                .where(outbox.c.kind == "teams.send", outbox.c.status == "done")
            )).all()
    finally:
        await engine.dispose()
    windows = []
    for payload, updated_at in rows:
        recorded = updated_at.timestamp()
        times = [t for t in answered.get(json.loads(payload).get("reply_to_id") or "", []) if t <= recorded + 0.001]
        if times:
            windows.append((recorded - max(times)) * 1000)
    return windows


async def run_round(
    number: int, channel: FakeChannel, session: aiohttp.ClientSession, bot: dict[str, BotProcess],
    start: Any, database_url: str, args: argparse.Namespace,
) -> Round:
    """One burst with up to `args.kills` kills."""
    burst = Burst(channel, session, args.questions, seed=args.seed * 1000 + number)
    began = time.monotonic()
    sending = asyncio.create_task(burst.send_all(bot, args.rate))
    rng = random.Random(args.seed + number)
    moments: list[tuple[float, int, int]] = []  # (time of the kill, journal length then, at the restart)
    journal = channel.connector.requests
    settle = channel.connector.latency[1] + 0.5
    for _ in range(args.kills):
        # Kill while replies flow: once a random number more of them have been accepted, and
        # a random moment after that (so the kill is not timed to a reply's arrival).
        target = len(burst.answered()) + rng.randint(*args.kill_after)
        if target >= args.questions:
            break  # too few replies left to go: the round ends without another kill
        await journal.wait(partial(_at_least, burst, target), timeout=args.drain, what=f"{target} replies")
        await asyncio.sleep(rng.uniform(0, 0.25))
        killed_at = time.monotonic()
        at_kill = len(journal.snapshot())
        bot["current"].process.kill()
        await bot["current"].process.wait()
        await asyncio.sleep(settle)  # the dead process's open requests are answered meanwhile
        at_restart = len(journal.snapshot())
        bot["current"] = await start()
        moments.append((killed_at, at_kill, at_restart))
    await sending
    deadline = time.monotonic() + args.drain
    while len(burst.answered()) < args.questions and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(args.settle)  # a re-sent reply may come after the first of them all
    posts_all = journal.snapshot()
    kills = []
    started = 0  # where the killed process's own sends begin in the journal
    for killed_at, at_kill, at_restart in moments:
        # Only the killed process's sends: a reply an earlier process sent and a later one sent
        # again belongs to the earlier kill, even when the lease brings it back after this one.
        before = {r.activity_id: r.received_at for r in burst.posts(posts_all[started:at_kill])}  # the latest
        window = {r.activity_id for r in burst.posts(posts_all[at_kill:at_restart])} - before.keys()
        after = Counter(r.activity_id for r in burst.posts(posts_all[at_restart:]))
        kills.append(Kill(
            number, killed_at - began, replies_before=len(before), open=len(window),
            resent_open=sum(1 for a in window if after[a]),
            resent_answered=sorted((killed_at - at) * 1000 for a, at in before.items() if after[a]),
        ))
        started = at_restart
    counts = Counter(r.activity_id for r in burst.posts(posts_all))
    return Round(kills, duplicates=sum(n - 1 for n in counts.values()), lost=args.questions - len(counts),
                 windows=await record_windows(database_url, burst.posts(posts_all)))


def _at_least(burst: Burst, count: int, items: Sequence[ConnectorRequest]) -> bool | None:
    """True once the journal holds replies to `count` of the burst's questions."""
    return True if len(burst.replied(items)) >= count else None


def describe(kill: Kill) -> str:
    """"2 (1 open + 1 answered 3 ms before)": what one kill caused to be sent twice."""
    gaps = "/".join(f"{gap:.0f}" for gap in kill.resent_answered)
    return (f"{kill.duplicates} ({kill.resent_open} open + {len(kill.resent_answered)} answered"
            + (f" {gaps} ms before" if gaps else "") + ")")


async def main_async(args: argparse.Namespace) -> int:
    print(f"# app under test: {args.bot_script} ({git_state() if args.bot_script.parent == ROOT else 'elsewhere'})")
    with tempfile.TemporaryDirectory(prefix="crash-window-") as tmp:
        workdir = Path(tmp)
        async with FakeChannel.start() as channel, database(args.database, workdir, args.pg_admin_url) as url:
            channel.register_app(APP_ID, APP_PASSWORD)
            channel.connector.latency = (args.latency_ms[0] / 1000, args.latency_ms[1] / 1000)
            env = bot_environment(channel, {
                "DATABASE_URL": url,
                "MAIL_OUTBOX_DIR": str(workdir / "outbox"),
                "OUTBOX_POLL_SECONDS": "0.2",
                # A dead process's jobs come back after the lease; short, so that a round
                # takes seconds, not minutes (it does not change what is sent twice).
                "OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
            })
            starts = iter(range(10_000))

            async def start() -> BotProcess:
                return await start_bot(f"bot-{next(starts)}", [sys.executable, str(args.bot_script)], env, workdir)

            bot = {"current": await start()}
            rounds: list[Round] = []
            try:
                connector = aiohttp.TCPConnector(limit=0)
                async with aiohttp.ClientSession(connector=connector) as session:
                    for number in range(1, args.rounds + 1):
                        done = await run_round(number, channel, session, bot, start, url, args)
                        rounds.append(done)
                        print(f"round {number}: {done.duplicates} replies sent twice, {done.lost} lost, "
                              f"answer to record p50/p99/max {percentile(done.windows, 50):.1f}/"
                              f"{percentile(done.windows, 99):.1f}/{max(done.windows, default=float('nan')):.1f} ms; "
                              "per kill: " + ", ".join(describe(k) for k in done.kills), flush=True)
            finally:
                await stop_bot(bot["current"])
    kills = [kill for done in rounds for kill in done.kills]
    windows = [window for done in rounds for window in done.windows]
    lost = sum(done.lost for done in rounds)
    gaps = sorted(gap for k in kills for gap in k.resent_answered)
    print(f"\n{args.rounds} bursts of {args.questions} questions on {args.database}, {len(kills)} kills -9, "
          f"connector latency {args.latency_ms[0]:g}-{args.latency_ms[1]:g} ms:")
    print(f"  replies sent twice:                          {sum(done.duplicates for done in rounds)} "
          f"(at most {max((k.duplicates for k in kills), default=0)} at one kill)")
    print(f"  - requests still open at the connector:      {sum(k.resent_open for k in kills)} "
          f"(of {sum(k.open for k in kills)} open at the kills)")
    print(f"  - answered, not yet recorded by the bot:     {len(gaps)}"
          + (f" (answered {gaps[len(gaps) // 2]:.0f} ms before the kill at the median, {gaps[-1]:.0f} at most)"
             if gaps else ""))
    print(f"  replies lost:                                {lost}")
    print(f"  connector's answer to the bot's record, over {len(windows)} replies: "
          f"p50 {percentile(windows, 50):.1f} ms, "
          f"p99 {percentile(windows, 99):.1f} ms, max {max(windows, default=float('nan')):.1f} ms")
    return 0 if lost == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=200, help="questions in each burst")
    parser.add_argument("--rounds", type=int, default=5, help="bursts, each on the same database")
    parser.add_argument("--kills", type=int, default=3, help="kills at most per burst")
    parser.add_argument("--rate", type=float, default=200.0, help="questions/s within a burst")
    parser.add_argument("--kill-after", type=int, nargs=2, default=(5, 60), metavar=("MIN", "MAX"),
                        help="replies accepted between a burst's start (or a restart) and the next kill")
    parser.add_argument("--latency-ms", type=float, nargs=2, default=(20.0, 120.0), metavar=("MIN", "MAX"),
                        help="how long the connector takes to answer a send")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for a round's replies")
    parser.add_argument("--settle", type=float, default=LEASE_SECONDS + 3.0,
                        help="extra wait for late duplicates (a dead process's jobs come back after the lease)")
    parser.add_argument("--bot-script", type=Path, default=ROOT / "app.py")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    args.bot_script = args.bot_script.resolve()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
