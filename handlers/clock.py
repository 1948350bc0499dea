"""Times shown to people, in the organisation's time zone (TIMEZONE), never in UTC.

The database keeps UTC; only what a person reads (the board's "updated", forward mails) is
converted, here, so every place shows the same zone the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Europe/London"
DEFAULT_ZONE = ZoneInfo(DEFAULT_TIMEZONE)


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone `name` (TIMEZONE), or a ValueError that says what is expected: the bot's
    settings and the operators' commands refuse an unknown zone alike, before doing anything."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"TIMEZONE must be an IANA time zone such as Europe/London, not {name!r}") from None


def as_utc(moment: datetime) -> datetime:
    """Treat naive datetimes as UTC so that mixed inputs still compare and convert."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def clock_time(moment: datetime, zone: ZoneInfo) -> str:
    """'14:05': the wall-clock time in the organisation's zone."""
    return as_utc(moment).astimezone(zone).strftime("%H:%M")


def date_and_time(moment: datetime, zone: ZoneInfo) -> str:
    """'06 Dec 2026 14:05 GMT': the zone's abbreviation tells a reader which clock it is."""
    return as_utc(moment).astimezone(zone).strftime("%d %b %Y %H:%M %Z")
