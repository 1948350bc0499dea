"""Fixtures: the local identity + Graph servers and a Graph client pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from mail.graph import GraphClient
from mail.graph_config import GraphConfig
from tests.support.graph import GraphWorld, start_world, stop_world


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[GraphWorld]:
    w = await start_world(tmp_path)
    try:
        yield w
    finally:
        await stop_world(w)


def config_for(world: GraphWorld, **overrides: object) -> GraphConfig:
    """Settings as an operator would give them, with fast retries for tests."""
    base = GraphConfig(
        tenant_id=world.tenant_id,
        client_id=world.client_id,
        client_secret=world.client_secret,
        mailbox=world.mailbox,
        authority_host=world.identity.base_url,
        graph_url=world.graph.base_url,
        ca_bundle=world.ca_path,
        retry_base_delay=0.05,
        max_inline_wait=3.0,
        request_timeout=10.0,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def client(world: GraphWorld) -> AsyncIterator[GraphClient]:
    c = GraphClient(config_for(world))
    try:
        yield c
    finally:
        await c.aclose()
