"""Secrets and access tokens never reach the logs, even at DEBUG."""

from __future__ import annotations

import logging

import pytest

from mail.base import OutgoingMail
from mail.graph import GraphClient, GraphMailTransport
from mail.graph_inbox import GraphInbox
from tests.support.graph import GraphWorld


async def test_no_secret_or_token_in_debug_logs(
    world: GraphWorld, client: GraphClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world.graph.fail_next("POST */send", status=429, retry_after=0.1)
    world.graph.deliver_to_inbox("jo@council.example", "Q", text="hello")

    await GraphMailTransport(client).send(
        OutgoingMail(key="k", to=("a@council.example",), subject="s", text="t")
    )
    await GraphInbox(client).sync(None)
    client.tokens.forget()  # force a second token request into the log too
    await GraphInbox(client).sync(None)

    logged = caplog.text + "\n".join(repr(r.args) for r in caplog.records)
    assert world.identity.issued_tokens and world.identity.token_requests == 2
    assert len(caplog.records) > 20  # DEBUG logging really was on
    assert world.client_secret not in logged
    assert world.client_secret not in repr(client.config)
    for token in world.identity.issued_tokens:
        assert token not in logged
        assert token.split(".")[2] not in logged  # not even the signature part
