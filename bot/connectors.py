"""Connector clients that live as long as the process, shared by every turn.

Stock botbuilder builds a new ConnectorClient and a new UserTokenClient on every turn (CloudAdapter
makes them whether the turn uses them or not). Each is an msrest client whose configuration
builds its retry table with a quadratic list comprehension: measured with py-spy under
bench/load.py, that alone was about a sixth of the bot's CPU. The clients hold nothing per turn
(credentials are per app, and the token is cached by MSAL), so one per (app id, service URL,
audience) serves every turn. The bot's own sends do not use them (bot.connector_http).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from botbuilder.schema import Activity
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    JwtTokenValidation,
    UserTokenClient,
)

from bot.credentials import OutgoingToken
from clock import Clock

VALIDATED_TOKENS_KEPT = 1024  # distinct (token, service URL, channel) pairs; Teams uses a few


class _SharedConnectorFactory(ConnectorFactory):
    def __init__(self, make: ConnectorFactory, get: Callable[..., Awaitable[ConnectorClient]], app_id: str) -> None:
        self._make = make
        self._get = get
        self._app_id = app_id

    async def create(self, service_url: str, audience: str) -> ConnectorClient:
        return await self._get((self._app_id, service_url, audience), lambda: self._make.create(service_url, audience))


class SharedClientsAuthentication(BotFrameworkAuthentication):
    """botbuilder's authentication, unchanged, except that the clients it makes are reused;
    with the outgoing token for the bot's own connector calls, from the same credentials."""

    def __init__(self, inner: BotFrameworkAuthentication, outgoing_token: OutgoingToken, clock: Clock) -> None:
        self._inner = inner
        self._clock = clock
        self.outgoing_token = outgoing_token
        self._clients: dict[tuple[str, ...], Any] = {}
        self._making = asyncio.Lock()
        self._validated: OrderedDict[tuple[str, str, str], tuple[float, AuthenticateRequestResult]] = OrderedDict()

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        """botbuilder's validation, done once per token and service URL while the token lasts.

        The Bot Connector signs one token and sends it with every activity for up to an hour;
        checking its RSA signature, issuer, audience and endorsements again on each of them
        was, after the connector clients, the largest cost of a turn. A request is served from
        here only with the very same Authorization header, service URL and channel that passed
        botbuilder's checks, and only until the token's own expiry; anything else (a new, forged
        or expired token) goes through botbuilder's validation as before.
        """
        key = (auth_header or "", activity.service_url or "", activity.channel_id or "")
        known = self._validated.get(key) if auth_header else None
        if known is not None and self._clock.now().timestamp() < known[0]:
            self._validated.move_to_end(key)
            return known[1]
        result = await self._inner.authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _SharedConnectorFactory(
                result.connector_factory, self._shared, _app_id(result.claims_identity)
            )
        expires = _expiry(result.claims_identity)
        if auth_header and expires is not None:
            self._validated[key] = (expires, result)
            self._validated.move_to_end(key)
            while len(self._validated) > VALIDATED_TOKENS_KEPT:
                self._validated.popitem(last=False)
        return result

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        return await self._inner.authenticate_streaming_request(auth_header, channel_id_header)

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _SharedConnectorFactory(
            self._inner.create_connector_factory(claims_identity), self._shared, _app_id(claims_identity)
        )

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        return await self._shared(
            ("user-token", _app_id(claims_identity)),
            lambda: self._inner.create_user_token_client(claims_identity),
        )

    def create_bot_framework_client(self) -> Any:
        return self._inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self._inner.get_originating_audience()

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        return await self._inner.authenticate_channel_request(auth_header)

    async def close(self) -> None:
        """Close the connector clients' HTTP sessions (at shutdown)."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            if isinstance(client, ConnectorClient):
                await client.__aexit__(None, None, None)

    async def _shared(self, key: tuple[str, ...], make: Callable[[], Awaitable[Any]]) -> Any:
        if key not in self._clients:
            async with self._making:  # first turns arriving together build one client, not many
                if key not in self._clients:
                    self._clients[key] = await make()
        return self._clients[key]


def _expiry(identity: ClaimsIdentity | None) -> float | None:
    """The validated token's `exp` (seconds since the epoch), if it has a usable one."""
    claims = identity.claims if identity is not None and identity.is_authenticated else None
    expires = claims.get("exp") if isinstance(claims, dict) else None
    return float(expires) if isinstance(expires, int | float) and not isinstance(expires, bool) else None


def _app_id(identity: ClaimsIdentity | None) -> str:
    if identity is None:
        return ""
    return JwtTokenValidation.get_app_id_from_claims(identity.claims) or ""
