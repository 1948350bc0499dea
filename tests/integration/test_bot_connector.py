"""The bot's own calls to the Bot Connector (bot.connector_http), against the fake channel.

What is new there and not covered end to end: the outgoing token held in memory and refreshed
shortly before it expires, one refresh for many sends, a refused (401) token dropped and
replaced once, the Retry-After header as an HTTP date, ids quoted in the path exactly as
botbuilder's msrest client quoted them, the token coming from the very credentials botbuilder's
connector factory uses, and replies queued in the outbox outliving a connector outage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import quote

import pytest
from botbuilder.core import TurnContext
from botbuilder.schema import Activity
from botframework.connector.auth import AuthenticationConstants, ClaimsIdentity, MicrosoftAppCredentials

from bot.auth import build_authentication
from bot.sender import TeamsConnector, TeamsDirectory, TeamsSender
from config.settings import Settings
from domain.jobs import ChatReply
from domain.replies import Notice
from errors import Transient
from handlers.replies import enqueue_reply
from outbox.retry import RetryPolicy
from outbox.worker import OutboxWorker
from store.store import Store
from tests.support.channel import FakeChannel
from tests.support.clock import ShiftedClock

APP_ID = "5d1c0a8e-0000-4000-8000-0000000c0a11"
APP_PASSWORD = "connector-test-secret"
TENANT_ID = "3b0e5c4f-0000-4000-8000-00000000d1d1"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def channel() -> AsyncIterator[FakeChannel]:
    async with FakeChannel.start() as started:
        yield started


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
async def connector(
    channel: FakeChannel, clock: ShiftedClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[TeamsConnector]:
    env = channel.bot_env(APP_ID, APP_PASSWORD)
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):  # MSAL's requests must trust the fake authority
        monkeypatch.setenv(name, env.pop(name))
    started = TeamsConnector(build_authentication(Settings(**env), clock), clock)
    yield started
    await started.close()


def address(channel: FakeChannel, conversation_id: str | None = None) -> dict[str, object]:
    """Where a reply goes, as the bot stores it: botbuilder's serialised conversation reference."""
    inbound = channel.activities.personal_message(channel.new_user("Ada Lovelace"), "hello")
    if conversation_id is not None:
        inbound["conversation"]["id"] = conversation_id
    return TurnContext.get_conversation_reference(Activity().deserialize(inbound)).serialize()


async def test_the_token_is_kept_until_shortly_before_it_expires_and_refreshed_once(
    channel: FakeChannel, connector: TeamsConnector, clock: ShiftedClock
) -> None:
    """A short-lived token is refreshed half way through its life (a real one, five minutes
    before expiry); until then no send asks for one, and sends arriving together share one."""
    channel.aad.token_lifetime = 4
    sender = TeamsSender(connector)
    where = [address(channel) for _ in range(5)]

    await asyncio.gather(*(sender.send(ChatReply(a, Notice("first"))) for a in where))
    assert channel.aad.token_request_count == 1
    for a in where:
        await sender.send(ChatReply(a, Notice("second")))
    assert channel.aad.token_request_count == 1

    clock.advance(2.5)  # past half of the 4-second life, still before it ends
    await asyncio.gather(*(sender.send(ChatReply(a, Notice("third"))) for a in where))
    assert channel.aad.token_request_count == 2
    posts = channel.connector.posts()
    assert len(posts) == 15 and all(post.auth.valid for post in posts)
    assert len({post.authorization for post in posts}) == 2


async def test_a_refused_token_is_dropped_and_one_new_token_serves_every_refused_send(
    channel: FakeChannel, connector: TeamsConnector
) -> None:
    """After a secret rotation the connector refuses the token the bot holds (401): the bot
    forgets it (in memory and in MSAL's cache), asks for one new token for all the sends it
    refused, and sends each of them again, once."""
    sender = TeamsSender(connector)
    where = [address(channel) for _ in range(5)]
    await sender.send(ChatReply(where[0], Notice("before")))
    channel.connector.revoke_tokens()

    await asyncio.gather(*(sender.send(ChatReply(a, Notice(f"after {n}"))) for n, a in enumerate(where)))
    assert channel.aad.token_request_count == 2
    refused = channel.connector.recorded(ok=False)
    assert 1 <= len(refused) <= 5 and {(r.status, r.auth.reason) for r in refused} == {(401, "token revoked")}
    posts = channel.connector.posts()
    assert sorted(post.text for post in posts) == ["after 0", "after 1", "after 2", "after 3", "after 4", "before"]
    assert all(post.auth.valid for post in posts)


async def test_a_token_refused_even_when_new_is_retried_later_not_dropped(
    channel: FakeChannel, connector: TeamsConnector
) -> None:
    """401 to a token just issued too: transient (the connector or the directory having a bad
    moment), so the reply goes back to the outbox rather than being given up."""
    channel.connector.fail_next(2, status=401)
    with pytest.raises(Transient):
        await TeamsSender(connector).send(ChatReply(address(channel), Notice("hello")))
    assert [r.status for r in channel.connector.recorded()] == [401, 401]
    assert channel.aad.token_request_count == 2


async def test_replies_outlive_an_outage_and_a_burst_of_401s_and_arrive_once_when_it_ends(
    channel: FakeChannel, connector: TeamsConnector, store: Store
) -> None:
    """Thirty minutes of 503 without Retry-After, then dropped connections and 401s, with the
    outbox's real backoff scaled down 500 times (1 s -> 2 ms, the 5-minute cap -> 0.6 s, the
    outage -> 3.6 s): no reply gives up, each arrives once when the fault ends."""
    scale = 1 / 500
    sender = TeamsSender(connector)
    worker = OutboxWorker(
        store,
        {ChatReply.kind: lambda raw: sender.send(ChatReply.from_json(raw))},
        retry=RetryPolicy(base_seconds=1 * scale, max_seconds=300 * scale),  # 12 attempts, 24 h
        poll_seconds=0.05,
        lease_seconds=30,
    )
    store.after_enqueue = worker.wake
    channel.connector.revoke_tokens()  # whatever token the bot had is refused too
    outage_ends = time.monotonic() + 30 * 60 * scale
    channel.connector.fail_for(30 * 60 * scale, status=503)
    channel.connector.drop_next(5)
    channel.connector.fail_next(10, status=401)
    running = asyncio.create_task(worker.run())
    async with store.unit() as unit:
        for n in range(10):
            await enqueue_reply(unit.outbox, source="teams", address=address(channel), reply_to_id=None,
                                message=Notice(f"reply {n}"), dedupe_key=f"reply:{n}")
    try:
        await channel.connector.wait_for(10, timeout=30)
        await asyncio.sleep(0.5)  # a second copy of any of them would come now
    finally:
        await worker.stop()
        await running
    posts = channel.connector.posts()
    assert sorted(post.text for post in posts) == [f"reply {n}" for n in range(10)]
    assert posts[0].received_at > outage_ends
    statuses = [r.status for r in channel.connector.recorded(ok=False)]
    assert statuses.count(503) >= 10 and statuses.count(None) == 5 and statuses.count(401) >= 10
    assert worker.counts["failed"] == 0


async def test_a_retry_after_date_holds_the_conversation_back_until_then(
    channel: FakeChannel, connector: TeamsConnector
) -> None:
    sender = TeamsSender(connector)
    where = address(channel)
    resume = datetime.now(UTC) + timedelta(seconds=40)
    channel.connector.fail_next(status=503, retry_after=format_datetime(resume, usegmt=True))

    with pytest.raises(Transient) as refused:
        await sender.send(ChatReply(where, Notice("hello")))
    assert refused.value.retry_after is not None and 35 < refused.value.retry_after <= 40
    with pytest.raises(Transient) as held_back:  # not even tried: the connector said when
        await sender.send(ChatReply(where, Notice("again")))
    assert held_back.value.retry_after is not None and held_back.value.retry_after > 35
    assert len(channel.connector.recorded()) == 1


@pytest.mark.parametrize(
    "conversation_id",
    ["19:abc-DEF_1@thread.tacv2;messageid=1700000000000", "a:1 odd/id?with#every%thing+&="],
)
async def test_ids_are_quoted_in_the_path_as_botbuilder_quoted_them(
    channel: FakeChannel, connector: TeamsConnector, conversation_id: str
) -> None:
    where = address(channel, conversation_id)
    reply_to = "1700000000000;x/y"
    await TeamsSender(connector).send(ChatReply(where, Notice("hi"), reply_to_id=reply_to))
    user_id = where["user"]["id"]  # type: ignore[index]
    contact = await TeamsDirectory(connector).lookup(where, user_id)  # type: ignore[arg-type]

    reply, lookup = channel.connector.recorded()
    conversation = quote(conversation_id, safe="")
    assert reply.raw_path == f"/v3/conversations/{conversation}/activities/{quote(reply_to, safe='')}"
    assert (reply.kind, reply.conversation_id, reply.activity_id) == ("reply", conversation_id, reply_to)
    assert reply.body["replyToId"] == reply_to and reply.body["conversation"]["id"] == conversation_id
    assert lookup.raw_path == f"/v3/conversations/{conversation}/members/{quote(user_id, safe='')}"
    assert contact is not None and contact.name == "Ada Lovelace" and contact.email


@pytest.mark.parametrize(
    ("settings", "authority"),
    [
        ({}, MicrosoftAppCredentials(APP_ID, APP_PASSWORD).oauth_endpoint),
        (
            {"MicrosoftAppType": "SingleTenant", "MicrosoftAppTenantId": TENANT_ID},
            MicrosoftAppCredentials(APP_ID, APP_PASSWORD, TENANT_ID).oauth_endpoint,
        ),
        (
            {
                "TO_CHANNEL_FROM_BOT_LOGIN_URL": "https://login.microsoftonline.us/MicrosoftServices.onmicrosoft.us",
                "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": "https://api.botframework.us",
                "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER": "https://api.botframework.us",
            },
            "https://login.microsoftonline.us/MicrosoftServices.onmicrosoft.us",
        ),
    ],
    ids=["public-cloud", "public-cloud-single-tenant", "national-cloud"],
)
async def test_the_token_comes_from_the_credentials_botbuilders_connector_clients_use(
    settings: dict[str, str], authority: str
) -> None:
    """No network: the credentials are compared, not used (MSAL is made on the first token)."""
    auth = build_authentication(Settings(
        MicrosoftAppId=APP_ID, MicrosoftAppPassword=APP_PASSWORD, ALLOWED_TENANT_IDS=TENANT_ID, **settings
    ))
    identity = ClaimsIdentity(
        {AuthenticationConstants.AUDIENCE_CLAIM: APP_ID, AuthenticationConstants.APP_ID_CLAIM: APP_ID}, True
    )
    factory = auth.create_connector_factory(identity)
    client = await factory.create("https://smba.trafficmanager.net/emea/", auth.get_originating_audience())
    try:
        assert auth.outgoing_token.credentials is client.config.credentials
        assert auth.outgoing_token.credentials.oauth_endpoint == authority
    finally:
        await auth.close()
