"""Outgoing-token credentials that live as long as the process.

Stock botbuilder builds a fresh MSAL application (and so an empty token cache and a token
request) on every turn and every proactive send. Here one credentials object, and one MSAL
application, exists per (audience, login endpoint); MSAL's cache then serves the token until
it is close to expiry. The MSAL app never calls the public instance-discovery endpoint, so a
national cloud or a test authority works without internet access.

`OutgoingToken` is what the bot's own connector calls use: the token held in memory, so a send
costs a clock read, and MSAL (blocking HTTP on a miss) only called, in a thread, near expiry.
"""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import urlsplit

from botframework.connector.auth import (
    AppCredentials,
    AuthenticationConstants,
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
)
from msal import ConfidentialClientApplication
from msrest.authentication import Authentication

from clock import Clock

MULTI_TENANT_AUTHORITY_TENANT = AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT  # botframework.com
TOKEN_REQUEST_TIMEOUT = 30.0  # seconds; MSAL's HTTP calls have no timeout of their own
REFRESH_BEFORE_EXPIRY = 300.0  # seconds; as MSAL, which treats a token this close to expiry as expired


class CachedAppCredentials(AppCredentials):
    """Client-credentials token for the Bot Connector from one long-lived MSAL application."""

    def __init__(self, app_id: str, password: str, authority: str, oauth_scope: str) -> None:
        super().__init__(app_id=app_id, oauth_scope=oauth_scope)
        self.oauth_endpoint = authority
        self._password = password
        self._msal: ConfidentialClientApplication | None = None
        self._making_msal = threading.Lock()

    def get_access_token(self, force_refresh: bool = False) -> str:
        return self.acquire_token()[0]

    def acquire_token(self) -> tuple[str, float]:
        """The token and the seconds it stays valid. Blocking: MSAL may ask the authority."""
        scope = self.oauth_scope if self.oauth_scope.endswith("/.default") else f"{self.oauth_scope}/.default"
        result = self._app().acquire_token_for_client(scopes=[scope])
        if "access_token" not in result:
            # The error code and description are safe to show; the secret is never in them.
            raise PermissionError(
                f"Bot Framework token request failed: {result.get('error')}: "
                f"{result.get('error_description')}"
            )
        return result["access_token"], float(result.get("expires_in", 0))

    def forget_token(self) -> None:
        """Drop the cached token for this audience, so the next request asks the authority."""
        app = self._msal  # made already if a token was refused; no lock, it may be held for HTTP
        if app is not None:
            app.remove_tokens_for_client()

    def _app(self) -> ConfidentialClientApplication:
        """Made on first use, not with the credentials: MSAL fetches the authority's OpenID
        configuration when it is made, and that belongs with the first token request."""
        with self._making_msal:
            if self._msal is None:
                self._msal = ConfidentialClientApplication(
                    client_id=self.microsoft_app_id,
                    client_credential=self._password,
                    authority=self.oauth_endpoint,
                    instance_discovery=False,
                    timeout=TOKEN_REQUEST_TIMEOUT,
                )
            return self._msal


class CachingCredentialsFactory(ServiceClientCredentialsFactory):
    """Hands out one `CachedAppCredentials` per (audience, login endpoint)."""

    def __init__(self, app_id: str, password: str, *, single_tenant_id: str | None) -> None:
        self._app_id = app_id
        self._password = password
        self._tenant = single_tenant_id
        self._cache: dict[tuple[str, str], CachedAppCredentials] = {}

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(self._app_id) and app_id == self._app_id

    async def is_authentication_disabled(self) -> bool:
        return not self._app_id

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Authentication:
        if not self._app_id:
            return MicrosoftAppCredentials.empty()
        if app_id != self._app_id:
            raise PermissionError("credentials asked for an app id that is not this bot's")
        return self.app_credentials(oauth_scope, login_endpoint)

    def app_credentials(self, oauth_scope: str, login_endpoint: str) -> CachedAppCredentials:
        """This bot's credentials for one audience and login endpoint (an app id is set)."""
        key = (oauth_scope, login_endpoint)
        if key not in self._cache:
            self._cache[key] = CachedAppCredentials(
                self._app_id, self._password, self._authority(login_endpoint), oauth_scope
            )
        return self._cache[key]

    def _authority(self, login_endpoint: str) -> str:
        """The MSAL authority for botbuilder's login endpoint.

        botbuilder's built-in clouds pass the login host alone ("https://login.microsoftonline.com/",
        to which its own credentials add the tenant); a configured TO_CHANNEL_FROM_BOT_LOGIN_URL
        is a whole authority. Single-tenant bots get their token from their own tenant, not
        botframework.com."""
        authority = login_endpoint.rstrip("/")
        if not urlsplit(authority).path:
            return f"{authority}/{self._tenant or MULTI_TENANT_AUTHORITY_TENANT}"
        if self._tenant and authority.endswith("/" + MULTI_TENANT_AUTHORITY_TENANT):
            authority = authority[: -len(MULTI_TENANT_AUTHORITY_TENANT)] + self._tenant
        return authority


class OutgoingToken:
    """The Authorization header for the bot's own calls to the Bot Connector.

    Held in memory until REFRESH_BEFORE_EXPIRY before the token expires; then one refresh runs
    in a thread (MSAL blocks on HTTP) and every caller arriving meanwhile waits for that one,
    sharing its token or its failure. With authentication off (no app id: the Emulator) there
    is no header, as botbuilder sends none.
    """

    def __init__(self, credentials: CachedAppCredentials | None, clock: Clock) -> None:
        self.credentials = credentials
        self._clock = clock
        self._header: str | None = None
        self._refresh_at = float("-inf")
        self._refreshing: asyncio.Task[None] | None = None

    async def authorization(self) -> str | None:
        if self.credentials is None:
            return None
        if self._clock.monotonic() >= self._refresh_at:
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = asyncio.create_task(self._refresh(self.credentials))
            await asyncio.shield(self._refreshing)  # a cancelled send does not cancel the refresh
        return self._header

    def refused(self, authorization: str) -> None:
        """The connector answered 401 to `authorization`: drop that token, here and in MSAL's
        cache, so the next call asks for a new one. Once per token, however many calls it
        failed: a header already replaced, or being replaced, is left alone."""
        if self.credentials is None or authorization != self._header:
            return
        if self._refreshing is not None and not self._refreshing.done():
            return
        self._refresh_at = float("-inf")
        self.credentials.forget_token()

    async def _refresh(self, credentials: CachedAppCredentials) -> None:
        requested_at = self._clock.monotonic()
        token, lifetime = await asyncio.to_thread(credentials.acquire_token)
        self._header = f"Bearer {token}"
        # A token living under ten minutes (never, from Entra ID) is refreshed half way through.
        self._refresh_at = requested_at + max(lifetime - REFRESH_BEFORE_EXPIRY, lifetime / 2)
