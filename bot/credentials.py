"""Outgoing-token credentials that live as long as the process.

Stock botbuilder builds a fresh MSAL application (and so an empty token cache and a token
request) on every turn and every proactive send. Here one credentials object, and one MSAL
application, exists per (audience, login endpoint); MSAL's cache then serves the token until
it is close to expiry. The MSAL app never calls the public instance-discovery endpoint, so a
national cloud or a test authority works without internet access.
"""

from __future__ import annotations

from msal import ConfidentialClientApplication
from msrest.authentication import Authentication

from botframework.connector.auth import (
    AppCredentials,
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
)

MULTI_TENANT_AUTHORITY_TENANT = "botframework.com"


class CachedAppCredentials(AppCredentials):
    """Client-credentials token for the Bot Connector from one long-lived MSAL application."""

    def __init__(self, app_id: str, password: str, authority: str, oauth_scope: str) -> None:
        super().__init__(app_id=app_id, oauth_scope=oauth_scope)
        self.oauth_endpoint = authority
        self._msal = ConfidentialClientApplication(
            client_id=app_id,
            client_credential=password,
            authority=authority,
            instance_discovery=False,
        )

    def get_access_token(self, force_refresh: bool = False) -> str:
        scope = self.oauth_scope if self.oauth_scope.endswith("/.default") else f"{self.oauth_scope}/.default"
        result = self._msal.acquire_token_for_client(scopes=[scope])
        if "access_token" not in result:
            # The error code and description are safe to show; the secret is never in them.
            raise PermissionError(
                f"Bot Framework token request failed: {result.get('error')}: "
                f"{result.get('error_description')}"
            )
        return result["access_token"]


class CachingCredentialsFactory(ServiceClientCredentialsFactory):
    """Hands out one `CachedAppCredentials` per (audience, login endpoint)."""

    def __init__(self, app_id: str, password: str, *, single_tenant_id: str | None) -> None:
        self._app_id = app_id
        self._password = password
        self._tenant = single_tenant_id
        self._cache: dict[tuple[str, str], Authentication] = {}

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
        key = (oauth_scope, login_endpoint)
        if key not in self._cache:
            self._cache[key] = CachedAppCredentials(
                self._app_id, self._password, self._authority(login_endpoint), oauth_scope
            )
        return self._cache[key]

    def _authority(self, login_endpoint: str) -> str:
        """Single-tenant bots get their token from their own tenant, not botframework.com."""
        authority = login_endpoint.rstrip("/")
        if self._tenant and authority.endswith("/" + MULTI_TENANT_AUTHORITY_TENANT):
            authority = authority[: -len(MULTI_TENANT_AUTHORITY_TENANT)] + self._tenant
        return authority
