"""The moderators' channel and a live board are kept without who set them up, and keep working."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select

from handlers.queue import MODERATORS_CHANNEL as QUEUE
from store.migrate import alembic_config
from store.schema import events, service_state
from store.store import Store
from tests.e2e.conftest import OFF_TOPIC, Bot, eventually
from tests.e2e.test_live_events import ADMIN_EMAIL, HOSTS_CHANNEL, MODERATORS_CHANNEL, _cards_in, _command, _staff
from tests.privacy.test_subjects import _cli


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"ADMINS": ADMIN_EMAIL}


async def _stored_addresses(store: Store) -> list[str]:
    """The moderators' channel and every board, as the database holds them."""
    async with store.engine.connect() as conn:
        queue = (await conn.execute(select(service_state.c.value).where(service_state.c.name == QUEUE))).scalars()
        boards = (await conn.execute(select(events.c.board_address).where(events.c.board_address.is_not(None))))
        return [*queue.all(), *boards.scalars().all()]


async def _card_in(bot: Bot, channel: str) -> Any:
    async def posted() -> Any:
        return next(iter(_cards_in(bot, channel)), None)

    return await eventually(posted, what=f"a card in {channel}")


async def test_the_queue_and_the_board_name_nobody_and_still_get_their_cards(bot: Bot, store: Store) -> None:
    people = await _staff(bot)
    await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    await _command(bot, people["host"], "open event All-staff briefing", HOSTS_CHANNEL)
    await _command(bot, people["host"], "board here", HOSTS_CHANNEL)
    await bot.say(bot.channel.new_user("Sam Staff"), OFF_TOPIC)

    card, board = await _card_in(bot, MODERATORS_CHANNEL), await _card_in(bot, HOSTS_CHANNEL)
    assert OFF_TOPIC in str(card.attachments) and "All-staff briefing" in str(board.attachments)
    stored = await _stored_addresses(store)
    assert len(stored) == 2
    for value in stored:
        assert "user" not in json.loads(value)
        for who in (people["mod1"], people["host"]):
            for identifier in (who.id, who.name, who.aad_object_id, who.email):
                assert identifier not in value, identifier


async def test_a_queue_an_earlier_version_kept_with_who_set_it_up_names_nobody_after_the_upgrade(
    bot: Bot, store: Store, database_url: str
) -> None:
    people = await _staff(bot)
    mod = people["mod1"]
    await _command(bot, mod, "moderate here", MODERATORS_CHANNEL)
    await bot.drained()
    async with store.unit() as unit:  # as versions before 0010 kept it: with who typed the command
        saved = json.loads(await unit.state.get(QUEUE) or "{}")
        await unit.state.put(QUEUE, json.dumps({**saved, "user": mod.channel_account()}))

    config = alembic_config(database_url)  # the database as that version left it, upgraded again
    await asyncio.to_thread(command.downgrade, config, "0009")
    await asyncio.to_thread(command.upgrade, config, "head")
    (value,) = [value for value in await _stored_addresses(store) if "moderators" in value]
    assert json.loads(value) == saved
    for identifier in (mod.id, mod.name, mod.aad_object_id, mod.email):
        assert identifier not in value, identifier

    code, out, err = await _cli("subject", "erase", "--user", mod.email or "", "--yes", database_url=database_url)
    assert code == 0, err
    assert out.splitlines()[0] == f"erased {mod.email}:"
    await bot.say(bot.channel.new_user("Sam Staff"), OFF_TOPIC)
    card = await _card_in(bot, MODERATORS_CHANNEL)
    assert OFF_TOPIC in str(card.attachments)
