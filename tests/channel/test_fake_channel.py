"""Self-tests for tests/support/channel.py, driven by the real clients.

Why: the fake is only worth something if botbuilder's own JWT validation, MSAL
and botbuilder's ConnectorClient accept it exactly as they would accept the
real Bot Framework and Azure AD — and reject what they would reject.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import msal
import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity
from botframework.connector.auth import (
    MicrosoftAppCredentials,
    PasswordServiceClientCredentialFactory,
)
from msrest.exceptions import ClientRequestError, HttpOperationError

from tests.support.channel import FakeChannel, TeamsUser

APP_ID = "00000000-0000-4000-8000-0000000000b0"
APP_PASSWORD = "correct horse battery staple"
SCOPE = "https://api.botframework.com/.default"
TEAMS_CHANNEL_CONVERSATION = "19:abc-DEF_1@thread.tacv2;messageid=1700000000000"

pytestmark = pytest.mark.timeout(30)


class NoDiscoveryCredentialFactory(PasswordServiceClientCredentialFactory):
    """What the bot does too: MSAL with instance_discovery=False, one app per scope.

    Stock botbuilder builds a fresh MSAL app per connector client (so no token
    cache) without instance_discovery=False (so it would call the public
    instance-discovery endpoint for a private authority)."""

    def __init__(self, app_id: str, password: str, tenant_id: str | None = None) -> None:
        super().__init__(app_id, password, tenant_id)
        self._cache: dict[tuple[str, str], MicrosoftAppCredentials] = {}

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Any:
        key = (oauth_scope, login_endpoint)
        if key not in self._cache:
            creds = await super().create_credentials(
                app_id, oauth_scope, login_endpoint, validate_authority
            )
            # MicrosoftAppCredentials builds its MSAL app lazily only when .app is unset.
            creds.app = msal.ConfidentialClientApplication(
                app_id,
                client_credential=self.password,
                authority=login_endpoint,
                instance_discovery=False,
            )
            self._cache[key] = creds
        return self._cache[key]


@pytest.fixture
async def channel(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeChannel]:
    async with FakeChannel.start() as fake:
        for name, value in fake.bot_env(APP_ID, APP_PASSWORD).items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def user(channel: FakeChannel) -> TeamsUser:
    return channel.new_user("Ada Lovelace")


def make_auth(channel: FakeChannel) -> ConfigurationBotFrameworkAuthentication:
    return ConfigurationBotFrameworkAuthentication(
        channel.bot_settings(APP_ID, APP_PASSWORD),
        credentials_factory=NoDiscoveryCredentialFactory(APP_ID, APP_PASSWORD),
    )


def as_activity(payload: dict[str, Any]) -> Activity:
    return Activity().deserialize(payload)


# ---------------------------------------------------------------- inbound JWTs


async def test_botbuilder_accepts_channel_token(channel: FakeChannel, user: TeamsUser) -> None:
    activity = channel.activities.personal_message(user, "hello")
    result = await make_auth(channel).authenticate_request(
        as_activity(activity), channel.bearer(APP_ID)
    )
    assert result.claims_identity.is_authenticated
    assert result.claims_identity.claims["aud"] == APP_ID
    assert result.audience == channel.oauth_scope
    kinds = [r.kind for r in channel.aad.requests.snapshot()]
    assert kinds == ["channel_metadata", "channel_keys"]


# case: (bearer kwargs, channelId override, what botbuilder 4.17.1 raises, message regex).
# Only some are PermissionError (CloudAdapter's 401); the bot must map all of them to 401.
FORGERIES: dict[str, tuple[dict[str, Any], str | None, type[BaseException], str]] = {
    "signed-by-other-key-same-kid": (
        {"sign_with": "rogue"},
        None,
        jwt.InvalidSignatureError,
        "Signature verification",
    ),
    "signed-by-aad-key": (
        {"sign_with": "aad"},
        None,
        jwt.InvalidSignatureError,
        "Signature verification",
    ),
    "expired": ({"expired": True}, None, jwt.ExpiredSignatureError, "expired"),
    "not-yet-valid": (
        {"nbf": 2**40, "exp": 2**41},
        None,
        jwt.ImmatureSignatureError,
        "not yet valid",
    ),
    "wrong-audience": ({"aud": "some-other-bot"}, None, PermissionError, "Invalid AppId"),
    "no-audience": ({"aud": None}, None, PermissionError, "'aud' claim missing"),
    "wrong-issuer": ({"iss": "https://evil.example"}, None, PermissionError, "Identity missing"),
    "no-issuer": ({"iss": None}, None, KeyError, "iss"),
    "serviceurl-mismatch": (
        {"serviceurl": "https://evil.example/"},
        None,
        PermissionError,
        "Invalid 'serviceurl'",
    ),
    "no-serviceurl": ({"serviceurl": None}, None, PermissionError, "'serviceurl' claim missing"),
    "no-kid": ({"kid": None}, None, IndexError, "out of range"),
    "unknown-kid": ({"kid": "not-a-published-kid"}, None, IndexError, "out of range"),
    "alg-none": ({"alg": "none"}, None, Exception, "algorithm not in allowed list"),
    "hs256-key-confusion": ({"alg": "HS256"}, None, Exception, "algorithm not in allowed list"),
    "channel-not-endorsed": ({}, "slack", Exception, "Could not validate endorsement"),
}


@pytest.mark.parametrize("case", sorted(FORGERIES))
async def test_botbuilder_rejects_forged_token(
    channel: FakeChannel, user: TeamsUser, case: str
) -> None:
    overrides, channel_id, expected, message = FORGERIES[case]
    payload = channel.activities.personal_message(user, "hello")
    if channel_id:
        payload["channelId"] = channel_id
    with pytest.raises(expected, match=message) as caught:
        await make_auth(channel).authenticate_request(
            as_activity(payload), channel.bearer(APP_ID, **overrides)
        )
    assert type(caught.value) is expected  # exact type: documents what the bot must map


async def test_missing_authorization(channel: FakeChannel, user: TeamsUser) -> None:
    payload = as_activity(channel.activities.personal_message(user, "hello"))
    auth = make_auth(channel)
    with pytest.raises(PermissionError):
        await auth.authenticate_request(payload, None)  # type: ignore[arg-type]
    # CloudAdapter passes "" when the header is absent: that path crashes on None.claims.
    with pytest.raises(AttributeError):
        await auth.authenticate_request(payload, "")
    with pytest.raises(PermissionError):  # a non-Bearer scheme is a proper rejection
        await auth.authenticate_request(payload, "Basic " + channel.bearer(APP_ID)[7:])


# ---------------------------------------------------------------- AAD over TLS


def _acquire(
    authority: str, secret: str = APP_PASSWORD
) -> tuple[msal.ConfidentialClientApplication, dict[str, Any]]:
    app = msal.ConfidentialClientApplication(
        APP_ID, client_credential=secret, authority=authority, instance_discovery=False
    )
    return app, app.acquire_token_for_client(scopes=[SCOPE])


async def test_msal_gets_token_over_tls_and_caches_it(channel: FakeChannel) -> None:
    authority = channel.login_url()
    app, result = await asyncio.to_thread(_acquire, authority)
    assert result.get("token_type") == "Bearer", result
    assert result["expires_in"] > 300
    check = channel.aad.check_token(
        "Bearer " + result["access_token"], audience=channel.oauth_scope
    )
    assert check.valid, check.reason
    assert check.app_id == APP_ID

    again = await asyncio.to_thread(app.acquire_token_for_client, scopes=[SCOPE])
    assert again["token_source"] == "cache"
    assert channel.aad.token_request_count == 1
    [token_request] = channel.aad.token_requests()
    assert token_request.tenant == "botframework.com" and token_request.client_id == APP_ID


async def test_msal_bad_secret_gets_invalid_client(channel: FakeChannel) -> None:
    _, result = await asyncio.to_thread(_acquire, channel.login_url(), "wrong")
    assert result["error"] == "invalid_client"
    assert "AADSTS7000215" in result["error_description"]
    assert channel.aad.token_requests()[-1].status == 401


async def test_single_tenant_app_only_gets_tokens_in_its_tenant(
    channel: FakeChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = "11111111-2222-4333-8444-555555555555"
    env = channel.bot_env("single-app", "pw", single_tenant_id=tenant)
    assert env["MicrosoftAppType"] == "SingleTenant" and env["MicrosoftAppTenantId"] == tenant

    def acquire(authority: str) -> dict[str, Any]:
        app = msal.ConfidentialClientApplication(
            "single-app", client_credential="pw", authority=authority, instance_discovery=False
        )
        return app.acquire_token_for_client(scopes=[SCOPE])

    assert "access_token" in await asyncio.to_thread(acquire, env["TO_CHANNEL_FROM_BOT_LOGIN_URL"])
    wrong = await asyncio.to_thread(acquire, channel.login_url())
    assert wrong["error"] == "unauthorized_client"


async def test_token_endpoint_faults_as_msal_sees_them(channel: FakeChannel) -> None:
    # 5xx: MSAL raises (MicrosoftAppCredentials lets it propagate).
    channel.aad.fail_next(1, status=503, retry_after=0)
    with pytest.raises(msal.exceptions.MsalServiceError, match="503"):
        await asyncio.to_thread(_acquire, channel.login_url())
    # 429: MSAL returns an error dict (botbuilder turns that into PermissionError).
    channel.aad.fail_next(1, status=429, retry_after=0)
    _, result = await asyncio.to_thread(_acquire, channel.login_url())
    assert "access_token" not in result and result["error"] == "temporarily_unavailable"
    _, result = await asyncio.to_thread(_acquire, channel.login_url())
    assert "access_token" in result
    assert [r.status for r in channel.aad.token_requests()] == [503, 429, 200]


async def test_tls_is_really_verified(
    channel: FakeChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    with pytest.raises(requests.exceptions.SSLError):
        await asyncio.to_thread(requests.get, channel.channel_metadata_url, timeout=5)


async def test_aiohttp_trusts_the_ca_via_ssl_cert_file(channel: FakeChannel) -> None:
    # aiohttp builds its default SSLContext at import time, so SSL_CERT_FILE only works
    # when it is in the environment before aiohttp is imported: check in a fresh process.
    script = (
        "import asyncio, sys, aiohttp\n"
        "async def main():\n"
        "    async with aiohttp.ClientSession() as s:\n"
        "        async with s.get(sys.argv[1]) as r:\n"
        "            print((await r.json())['jwks_uri'])\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "SSL_CERT_FILE": str(channel.ca_bundle)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        channel.channel_metadata_url,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip().startswith(channel.login_base)
    # In-process, use the explicit context instead.
    ssl_context = channel.ca.client_ssl_context()
    async with (
        aiohttp.ClientSession() as session,
        session.get(channel.channel_metadata_url, ssl=ssl_context) as r,
    ):
        assert r.status == 200


# ---------------------------------------------------------------- Bot Connector


async def connector_for(channel: FakeChannel, activity: dict[str, Any]) -> Any:
    auth = make_auth(channel)
    result = await auth.authenticate_request(as_activity(activity), channel.bearer(APP_ID))
    return await result.connector_factory.create(activity["serviceUrl"], result.audience)


async def test_connector_client_reply_is_recorded_with_valid_token(
    channel: FakeChannel, user: TeamsUser
) -> None:
    inbound = channel.activities.channel_mention(
        user,
        "how do I rotate keys?",
        thread_root_id="1700000000000",
        channel_id="19:abc-DEF_1@thread.tacv2",
    )
    assert inbound["conversation"]["id"] == TEAMS_CHANNEL_CONVERSATION
    client = await connector_for(channel, inbound)
    reply = MessageFactory.text("Here is how.")
    reply.reply_to_id = inbound["id"]
    response = await client.conversations.reply_to_activity(
        TEAMS_CHANNEL_CONVERSATION, inbound["id"], reply
    )
    [record] = await channel.connector.wait_for(1)
    assert record.kind == "reply"
    assert record.conversation_id == TEAMS_CHANNEL_CONVERSATION
    assert record.activity_id == inbound["id"]
    assert record.text == "Here is how."
    assert record.auth.valid, record.auth.reason
    assert record.auth.app_id == APP_ID
    assert response.id == record.created_id
    assert "%3A" in record.raw_path or ":" in record.raw_path

    # proactive send, card update, member lookup, create conversation
    sent = await client.conversations.send_to_conversation(
        TEAMS_CHANNEL_CONVERSATION, MessageFactory.text("proactive")
    )
    updated = MessageFactory.text("edited")
    updated.id = sent.id
    await client.conversations.update_activity(TEAMS_CHANNEL_CONVERSATION, sent.id, updated)
    member = await client.conversations.get_conversation_member(TEAMS_CHANNEL_CONVERSATION, user.id)
    extra = member.additional_properties
    assert (member.name, extra["email"], extra["userPrincipalName"]) == (
        "Ada Lovelace",
        user.email,
        user.user_principal_name,
    )
    assert member.aad_object_id == user.aad_object_id
    with pytest.raises(HttpOperationError) as missing:
        await client.conversations.get_conversation_member(TEAMS_CHANNEL_CONVERSATION, "29:nobody")
    assert missing.value.response.status_code == 404
    created = await client.conversations.create_conversation(
        {
            "bot": {"id": f"28:{APP_ID}"},
            "members": [{"id": user.id}],
            "tenantId": channel.tenant_id,
            "channelData": {"tenant": {"id": channel.tenant_id}},
        }
    )
    assert created.id.startswith("a:")

    kinds = [r.kind for r in channel.connector.recorded()]
    assert kinds == ["reply", "send", "update", "get_member", "get_member", "create_conversation"]
    assert all(r.auth.valid for r in channel.connector.recorded())
    assert channel.aad.token_request_count == 1  # one cached token for all calls


async def test_fail_next_429_surfaces_retry_after(channel: FakeChannel, user: TeamsUser) -> None:
    inbound = channel.activities.personal_message(user, "hi")
    client = await connector_for(channel, inbound)
    conversation = inbound["conversation"]["id"]
    channel.connector.fail_next(1, status=429, retry_after=1.5)
    with pytest.raises(HttpOperationError) as caught:
        await client.conversations.reply_to_activity(
            conversation, inbound["id"], MessageFactory.text("first try")
        )
    response = caught.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1.5"
    assert type(caught.value).__name__ == "ErrorResponseException"
    assert caught.value.error.error.code == "TooManyRequests"

    channel.connector.fail_next(1, status=503)
    with pytest.raises(HttpOperationError) as unavailable:
        await client.conversations.send_to_conversation(conversation, MessageFactory.text("x"))
    assert unavailable.value.response.status_code == 503

    await client.conversations.reply_to_activity(
        conversation, inbound["id"], MessageFactory.text("second try")
    )
    [ok] = await channel.connector.wait_for(1)
    assert ok.text == "second try"
    statuses = [r.status for r in channel.connector.recorded("reply", "send")]
    assert statuses == [429, 503, 201]


async def test_drop_next_closes_connection(channel: FakeChannel, user: TeamsUser) -> None:
    inbound = channel.activities.personal_message(user, "hi")
    client = await connector_for(channel, inbound)
    conversation = inbound["conversation"]["id"]
    channel.connector.drop_next()
    with pytest.raises(ClientRequestError):
        await client.conversations.send_to_conversation(conversation, MessageFactory.text("lost"))
    await client.conversations.send_to_conversation(conversation, MessageFactory.text("kept"))
    [ok] = await channel.connector.wait_for(1)
    assert ok.text == "kept"
    assert [r.status for r in channel.connector.recorded("send")] == [None, 201]


async def test_unauthenticated_connector_call_is_401(channel: FakeChannel) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{channel.service_url}v3/conversations/a%3Ax/activities"
        async with session.post(url, json={"type": "message", "text": "x"}) as r:
            assert r.status == 401
        bogus = channel.bearer(APP_ID)  # a channel->bot token is not a bot->connector token
        async with session.post(
            url, json={"type": "message"}, headers={"Authorization": bogus}
        ) as r:
            assert r.status == 401
    records = channel.connector.recorded()
    assert [r.auth.valid for r in records] == [False, False]
    assert records[0].conversation_id == "a:x"


async def test_wait_for_wakes_up_without_polling_and_times_out(
    channel: FakeChannel, user: TeamsUser
) -> None:
    inbound = channel.activities.personal_message(user, "hi")
    client = await connector_for(channel, inbound)
    conversation = inbound["conversation"]["id"]
    waiter = asyncio.create_task(channel.connector.wait_for(2, timeout=10))
    await asyncio.sleep(0)
    assert not waiter.done()
    for text in ("one", "two"):
        await client.conversations.send_to_conversation(conversation, MessageFactory.text(text))
    assert [r.text for r in await waiter] == ["one", "two"]
    with pytest.raises(TimeoutError, match="3 successful"):
        await channel.connector.wait_for(3, timeout=0.05)


# ---------------------------------------------------------------- activity shapes


async def test_activity_builders_match_teams_shapes(channel: FakeChannel, user: TeamsUser) -> None:
    acts = channel.activities
    personal = acts.personal_message(user, "hi")
    again = acts.personal_message(user, "hi")
    assert personal["id"] != again["id"]
    assert acts.personal_message(user, "hi", id=personal["id"])["id"] == personal["id"]
    assert personal["conversation"] == again["conversation"]
    assert personal["conversation"]["conversationType"] == "personal"
    assert personal["recipient"] == {"id": f"28:{APP_ID}", "name": "Questions Bot"}
    assert personal["serviceUrl"] == channel.service_url
    assert personal["channelData"]["tenant"]["id"] == channel.tenant_id

    mention = acts.channel_mention(user, "how do I deploy?")
    parsed = as_activity(mention)
    assert parsed.conversation.conversation_type == "channel"
    assert parsed.conversation.id.endswith(f";messageid={mention['id']}")
    assert mention["channelData"]["team"]["id"] and mention["channelData"]["channel"]["id"]
    assert TurnContext.remove_mention_text(parsed, f"28:{APP_ID}").strip() == "how do I deploy?"

    submit = acts.card_submit(user, {"answer": "42"}, reply_to_id="1700", context=mention)
    assert submit.get("text") is None and submit["value"] == {"answer": "42"}
    assert submit["conversation"] == mention["conversation"]
    assert submit["channelData"]["team"] == mention["channelData"]["team"]

    invoke = as_activity(acts.invoke_action(user, "resolve", {"q": 1}))
    assert (invoke.type, invoke.name) == ("invoke", "adaptiveCard/action")
    added = as_activity(acts.bot_added(user, conversation_type="channel"))
    assert added.type == "conversationUpdate" and added.members_added[0].id == f"28:{APP_ID}"
    install = as_activity(acts.installation_update(user))
    assert (install.type, install.action) == ("installationUpdate", "add")
    group = as_activity(acts.group_chat_message(user, "ping"))
    assert group.conversation.conversation_type == "groupChat"
    json.dumps([personal, mention, submit])  # plain JSON, no objects


# ---------------------------------------------------------------- end to end


class EchoBot(ActivityHandler):
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await turn_context.send_activity(f"echo: {turn_context.activity.text}")


async def test_end_to_end_cloud_adapter_in_process(channel: FakeChannel, user: TeamsUser) -> None:
    adapter = CloudAdapter(make_auth(channel))
    bot = EchoBot()

    async def messages(request: web.Request) -> web.StreamResponse:
        return await adapter.process(request, bot)

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    async with TestClient(TestServer(app)) as client:
        activity = channel.activities.personal_message(user, "ping")
        response = await channel.deliver(client, activity)
        assert response.status in (200, 201)
        [reply] = await channel.connector.wait_for(1)
        assert reply.kind == "reply" and reply.activity_id == activity["id"]
        assert reply.text == "echo: ping" and reply.auth.valid

        forged = await channel.deliver(
            client, activity, authorization=channel.bearer(APP_ID, sign_with="rogue")
        )
        # Only PermissionError becomes 401 in CloudAdapter; a bad signature is a 500.
        assert forged.status == 500
        # CloudAdapter turns a missing header into "" and botbuilder then fails with
        # AttributeError (None.claims): also a 500, not a 401.
        unauthenticated = await channel.deliver(client, activity, authorization=None)
        assert unauthenticated.status == 500


async def test_msrest_retries_idempotent_5xx_but_not_posts(
    channel: FakeChannel, user: TeamsUser
) -> None:
    # msrest's default pipeline is `requests` in an executor with a urllib3 Retry
    # (total=3, 5xx except 501/505, Retry-After honoured); urllib3 2 ignores msrest's
    # `method_whitelist`, so only idempotent methods (PUT/GET/DELETE) are retried.
    inbound = channel.activities.personal_message(user, "hi")
    client = await connector_for(channel, inbound)
    conversation = inbound["conversation"]["id"]
    channel.connector.fail_next(1, status=503, kinds={"update"})  # 2 would back off 1.6 s
    update = MessageFactory.text("edited")
    update.id = "1700000000001"
    await client.conversations.update_activity(conversation, update.id, update)
    assert [r.status for r in channel.connector.recorded("update")] == [503, 200]
    channel.connector.fail_next(1, status=503, kinds={"send"})
    with pytest.raises(HttpOperationError):
        await client.conversations.send_to_conversation(conversation, MessageFactory.text("x"))
    assert [r.status for r in channel.connector.recorded("send")] == [503]
