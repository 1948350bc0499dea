"""TIMEZONE for the operators' commands: the report's clock and an event's end time are the
organisation's, and an unknown zone is refused before anything is read or written."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from tests.cli.test_report_mail_teams_cli import _seed, db, run

__all__ = ["db"]  # the fixture, shared with the report tests
KATHMANDU = {"TIMEZONE": "Asia/Kathmandu"}  # UTC+05:45: no other zone's clock reads the same


def test_the_report_shows_the_busiest_minutes_on_the_organisations_clock(db: Path) -> None:
    asyncio.run(_seed(db))  # the busiest minute is 10:00 UTC
    result = run(db, "events", "report", "E-1", "--format", "text", env=KATHMANDU)
    assert result.exit_code == 0, result.stderr
    assert "  15:45 \u2014 4 questions" in result.stdout.splitlines()


def test_an_end_time_without_offset_is_in_the_organisations_zone(db: Path) -> None:
    opened = run(db, "events", "open", "Town hall", "--ends-at", "2999-01-14T15:00", env=KATHMANDU)
    assert opened.exit_code == 0, opened.stderr
    with sqlite3.connect(db) as conn:
        [(ends_at,)] = conn.execute("SELECT ends_at FROM events").fetchall()
    assert ends_at.startswith("2999-01-14 09:15")


def test_an_unknown_timezone_is_refused_and_nothing_is_opened(db: Path) -> None:
    refused = run(db, "events", "open", "Town hall", env={"TIMEZONE": "Mars/Olympus_Mons"})
    assert refused.exit_code == 2 and "TIMEZONE must be an IANA time zone" in refused.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
