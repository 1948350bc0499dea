"""grant / revoke take an ASCII email address or an Entra object id, normalised, and nothing
else, in Teams and in `cli.py roles`; the answer names exactly what was stored."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from cli import cli
from store.db import create_engine
from store.schema import roles
from tests.e2e.conftest import Bot

ADMIN_EMAIL = "admin@council.example"
LOOK_ALIKES = {
    "zero-width space": "eve@x.example\u200b",
    "Cyrillic e": "\u0435ve@x.example",
    "a second statement": "eve@x.example;drop",
    "no domain": "eve@localhost",
    "a right-to-left override": "eve@x.example\u202e",
}
SAID = {
    "zero-width space": "U+200B (ZERO WIDTH SPACE)",
    "Cyrillic e": "U+0435 (CYRILLIC SMALL LETTER IE)",
    "a second statement": "is neither an email address nor an Entra object id",
    "no domain": "is neither an email address nor an Entra object id",
    "a right-to-left override": "U+202E (RIGHT-TO-LEFT OVERRIDE)",
}


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"ADMINS": ADMIN_EMAIL}


def _shown(text: str) -> str:
    """The text as a reader sees it: without the invisible word joiners a renderer may put in
    an address to keep Teams from turning it into a link."""
    return text.replace("\u2060", "")


async def _stored(database_url: str) -> list[tuple[str, str]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(roles.c.principal, roles.c.role).order_by(roles.c.principal))
            return [tuple(row) for row in rows]
    finally:
        await engine.dispose()


async def test_teams_grant_refuses_look_alike_principals_and_names_what_it_stored(bot: Bot) -> None:
    admin = bot.channel.new_user("Ada Admin", email=ADMIN_EMAIL)
    for who in LOOK_ALIKES.values():
        await bot.say(admin, f"grant moderator {who}")
    await bot.say(admin, "revoke moderator eve@x.example\u200b")
    refusals = await bot.channel.connector.wait_for(len(LOOK_ALIKES) + 1)
    for reply, name in zip(refusals, [*LOOK_ALIKES, "zero-width space"], strict=True):
        assert SAID[name] in reply.text and "Nothing was changed" in reply.text, reply.text
    await bot.drained()
    assert await _stored(bot.settings.database_url) == []

    await bot.say(admin, "grant moderator \uff25ve@X.Example")  # a full-width E: NFKC makes it E
    await bot.say(admin, "grant host 0F8FAD5B-D9CB-469F-A165-70867728950E")
    stored = await bot.channel.connector.wait_for(len(LOOK_ALIKES) + 3)
    assert _shown(stored[-2].text).startswith("eve@x.example now has the moderator role")
    assert _shown(stored[-1].text).startswith("0f8fad5b-d9cb-469f-a165-70867728950e now has the host role")
    assert await _stored(bot.settings.database_url) == [
        ("0f8fad5b-d9cb-469f-a165-70867728950e", "host"), ("eve@x.example", "moderator")
    ]


async def _cli(*args: str) -> Result:
    """`cli.py` as an admin runs it (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def test_cli_roles_refuses_look_alike_principals_with_exit_2(database_url: str) -> None:
    for name, who in LOOK_ALIKES.items():
        for verb in ("grant", "revoke"):
            result = await _cli("roles", verb, "moderator", who, "--database-url", database_url)
            assert result.exit_code == 2, name
            assert SAID[name] in result.stderr and result.stdout == ""
    assert await _stored(database_url) == []


async def test_cli_roles_stores_the_normalised_principal_and_says_so(database_url: str) -> None:
    result = await _cli("roles", "grant", "moderator", "  \uff25ve@X.Example ", "--database-url", database_url)
    assert result.exit_code == 0
    assert result.stdout == "eve@x.example now has the moderator role.\n"
    assert await _stored(database_url) == [("eve@x.example", "moderator")]
