"""GraphMailTransport against the local identity and Graph servers, through real MSAL and O365."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from errors import Permanent, Transient
from mail.base import OutgoingMail
from mail.graph import (
    IN_REPLY_TO_PROPERTY,
    KEY_PROPERTY,
    REFERENCES_PROPERTY,
    GraphClient,
    GraphMailTransport,
    SendPacer,
)
from mail.graph_config import GraphConfig
from tests.mail.conftest import config_for
from tests.support.graph import AppRegistration, GraphWorld, make_client_certificate


def forward(key: str = "q-42-forward", **changes: object) -> OutgoingMail:
    mail = OutgoingMail(
        key=key,
        to=("HR Advisory <hr@council.example>",),
        subject="[Q-42] Can I claim mileage for a training day?",
        text="A colleague asked: can I claim mileage for a training day?",
        html="<p>A colleague asked: can I claim mileage for a training day?</p>",
    )
    return OutgoingMail(**{**mail.__dict__, **changes})  # type: ignore[arg-type]


def prop(message: dict, prop_id: str) -> str | None:
    for p in message["singleValueExtendedProperties"]:
        if p["id"].lower() == prop_id.lower():
            return p["value"]
    return None


async def test_forward_ends_in_exactly_one_sent_item_with_known_message_id(
    world: GraphWorld, client: GraphClient
) -> None:
    sent = await GraphMailTransport(client).send(forward())

    items = world.graph.sent_items()
    assert len(items) == 1 and world.graph.drafts() == []
    item = items[0]
    assert item["internetMessageId"] == sent.internet_message_id
    assert item["from"]["emailAddress"]["address"] == world.mailbox
    assert item["toRecipients"] == [
        {"emailAddress": {"address": "hr@council.example", "name": "HR Advisory"}}
    ]
    assert item["body"]["contentType"] == "html"
    assert {"name": "X-Bot-Key", "value": "q-42-forward"} in item["internetMessageHeaders"]
    assert prop(item, KEY_PROPERTY) == "q-42-forward"
    # every Graph call asked for immutable ids, so the draft id survived the move to Sent Items
    assert all('IdType="ImmutableId"' in r.headers.get("Prefer", "") for r in world.graph.requests)


async def test_text_only_mail_is_sent_as_text(world: GraphWorld, client: GraphClient) -> None:
    await GraphMailTransport(client).send(forward(html=None))
    assert world.graph.sent_items()[0]["body"] == {
        "contentType": "text",
        "content": "A colleague asked: can I claim mileage for a training day?",
    }


async def test_sending_the_same_key_twice_sends_one_mail(
    world: GraphWorld, client: GraphClient
) -> None:
    transport = GraphMailTransport(client)
    first = await transport.send(forward())
    # the outbox crashed before recording `first` and runs the job again
    second = await transport.send(forward())

    assert second == first
    assert len(world.graph.sent_items()) == 1
    assert len(world.graph.graph_requests("POST", "/send")) == 1


async def test_response_lost_after_send_is_not_sent_again(
    world: GraphWorld, client: GraphClient
) -> None:
    world.graph.fail_next("POST */send", drop=True, after=True)

    sent = await GraphMailTransport(client).send(forward())

    items = world.graph.sent_items()
    assert len(items) == 1 and items[0]["internetMessageId"] == sent.internet_message_id
    assert len(world.graph.graph_requests("POST", "/send")) == 1


async def test_draft_left_behind_is_sent_instead_of_a_second_one(
    world: GraphWorld, client: GraphClient
) -> None:
    transport = GraphMailTransport(client)
    world.graph.fail_next("POST */send", count=10, status=500)
    with pytest.raises(Transient):
        await transport.send(forward())
    assert len(world.graph.drafts()) == 1 and world.graph.sent_items() == []

    world.graph.faults.clear()
    sent = await transport.send(forward())

    assert world.graph.drafts() == []
    assert [m["internetMessageId"] for m in world.graph.sent_items()] == [sent.internet_message_id]
    creates = [r for r in world.graph.graph_requests("POST") if r.path.endswith("/messages")]
    assert len(creates) == 1  # one draft ever made


async def test_429_on_post_waits_for_retry_after(world: GraphWorld, client: GraphClient) -> None:
    world.graph.fail_next("POST */messages", status=429, retry_after=1)

    await GraphMailTransport(client).send(forward())

    creates = world.graph.graph_requests("POST", "/messages")
    creates = [r for r in creates if r.path.endswith("/messages")]
    assert [r.status for r in creates] == [429, 201]
    assert creates[1].at - creates[0].at >= 1.0
    assert len(world.graph.sent_items()) == 1


async def test_long_retry_after_goes_back_to_the_outbox(
    world: GraphWorld, client: GraphClient
) -> None:
    world.graph.fail_next("POST */messages", status=429, retry_after=120)

    with pytest.raises(Transient) as caught:
        await GraphMailTransport(client).send(forward())

    assert caught.value.retry_after == 120
    assert world.graph.sent_items() == [] and world.graph.drafts() == []


async def test_503_then_success(world: GraphWorld, client: GraphClient) -> None:
    world.graph.fail_next("POST */send", count=2, status=503)

    await GraphMailTransport(client).send(forward())

    assert len(world.graph.sent_items()) == 1


async def test_503_that_persists_becomes_retry_later(
    world: GraphWorld, client: GraphClient
) -> None:
    world.graph.fail_next("GET", count=50, status=503, retry_after=0.1)
    with pytest.raises(Transient):
        await GraphMailTransport(client).send(forward())


async def test_client_error_is_permanent(world: GraphWorld, client: GraphClient) -> None:
    world.graph.fail_next("POST */messages", status=400)
    with pytest.raises(Permanent):
        await GraphMailTransport(client).send(forward())


async def test_throttled_token_endpoint_is_retried(world: GraphWorld, client: GraphClient) -> None:
    world.identity.fail_next("POST", status=429, retry_after=1)

    await GraphMailTransport(client).send(forward())

    assert world.identity.token_requests == 1  # the 429 was injected before the handler ran
    assert len(world.graph.sent_items()) == 1


async def test_wrong_secret_is_permanent(world: GraphWorld) -> None:
    client = GraphClient(config_for(world, client_secret="not-the-secret"))
    try:
        with pytest.raises(Permanent):
            await GraphMailTransport(client).send(forward())
    finally:
        await client.aclose()
    assert world.graph.requests == []


async def test_one_token_request_for_many_calls(world: GraphWorld, client: GraphClient) -> None:
    transport = GraphMailTransport(client)
    for n in range(5):
        await transport.send(forward(key=f"k{n}"))

    assert len(world.graph.sent_items()) == 5
    assert world.identity.token_requests == 1
    assert world.identity.discovery_requests == 1
    assert len(world.graph.requests) >= 20


async def test_reply_threads_on_the_original_with_create_reply(
    world: GraphWorld, client: GraphClient
) -> None:
    original = world.graph.deliver_to_inbox(
        "sam@council.example",
        "Parking at County Hall",
        text="Where can I park?",
        message_id="<orig-1@council.example>",
    )
    reply = OutgoingMail(
        key="answer-7",
        to=("sam@council.example",),
        subject="RE: Parking at County Hall [Q-7]",
        text="Use the staff car park on Mill Lane.",
        in_reply_to="<orig-1@council.example>",
        references=("<orig-1@council.example>",),
    )

    await GraphMailTransport(client).send(reply)

    (item,) = world.graph.sent_items()
    assert len(world.graph.graph_requests("POST", "/createReply")) == 1
    assert prop(item, IN_REPLY_TO_PROPERTY) == "<orig-1@council.example>"
    assert item["conversationId"] == world.graph.message(original)["conversationId"]
    assert item["subject"] == "RE: Parking at County Hall [Q-7]"
    assert item["body"] == {
        "contentType": "text",
        "content": "Use the staff car park on Mill Lane.",
    }
    assert [r["emailAddress"]["address"] for r in item["toRecipients"]] == ["sam@council.example"]


async def test_reply_to_mail_not_in_the_mailbox_sets_threading_properties(
    world: GraphWorld, client: GraphClient
) -> None:
    reply = forward(
        key="answer-8",
        in_reply_to="<elsewhere@council.example>",
        references=("<root@council.example>", "<elsewhere@council.example>"),
    )
    await GraphMailTransport(client).send(reply)

    (item,) = world.graph.sent_items()
    assert prop(item, IN_REPLY_TO_PROPERTY) == "<elsewhere@council.example>"
    assert prop(item, REFERENCES_PROPERTY) == "<root@council.example> <elsewhere@council.example>"


async def test_pacer_keeps_a_burst_under_the_limit(world: GraphWorld, client: GraphClient) -> None:
    transport = GraphMailTransport(client, pacer=SendPacer(limit=3, period=1.0))
    started = time.monotonic()
    for n in range(7):
        await transport.send(forward(key=f"burst-{n}"))

    assert time.monotonic() - started >= 2.0
    sends = [r.at for r in world.graph.graph_requests("POST", "/send")]
    assert len(sends) == 7
    for i, at in enumerate(sends):
        assert sum(1 for other in sends[i:] if other - at < 1.0) <= 3
    subjects = [m["internetMessageHeaders"][0]["value"] for m in world.graph.sent_items()]
    assert subjects == [f"burst-{n}" for n in range(7)]  # in order


async def test_certificate_credentials(world: GraphWorld, tmp_path: Path) -> None:
    pem, thumbprint, cert = make_client_certificate(tmp_path / "bot.pem")
    world.identity.register(AppRegistration("cert-app", certificate=cert))
    config = config_for(
        world,
        client_id="cert-app",
        client_secret="",
        certificate_path=pem,
        certificate_thumbprint=thumbprint,
    )
    client = GraphClient(config)
    try:
        await GraphMailTransport(client).send(forward())
    finally:
        await client.aclose()
    assert len(world.graph.sent_items()) == 1


def test_config_repr_hides_secrets() -> None:
    config = GraphConfig(
        tenant_id="t",
        client_id="c",
        client_secret="very-secret-value",
        mailbox="q@x.example",
        certificate_thumbprint="",
    )
    assert "very-secret-value" not in repr(config)
    assert config.moderators_address == "q@x.example"
    assert config.graph_url == "https://graph.microsoft.com"


def test_config_rejects_plain_http_and_missing_credentials() -> None:
    with pytest.raises(ValueError):
        GraphConfig(tenant_id="t", client_id="c", mailbox="q@x.example")
    with pytest.raises(ValueError):
        GraphConfig(
            tenant_id="t",
            client_id="c",
            client_secret="s",
            mailbox="q@x.example",
            graph_url="http://graph.example",
        )


async def test_token_refused_by_graph_is_replaced_once(
    world: GraphWorld, client: GraphClient
) -> None:
    world.graph.fail_next("GET", status=401)

    await GraphMailTransport(client).send(forward())

    assert world.identity.token_requests == 2
    assert len(world.graph.sent_items()) == 1
