"""Bot Framework authentication from settings, with every rejection reduced to one error."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
)

from bot.connectors import SharedClientsAuthentication
from bot.credentials import CachingCredentialsFactory, OutgoingToken
from clock import SYSTEM_CLOCK, Clock
from config.settings import Settings

log = logging.getLogger(__name__)


# The settings whose presence switches botbuilder from the public cloud to explicit endpoints.
ENDPOINT_OVERRIDES = (
    "TO_CHANNEL_FROM_BOT_LOGIN_URL",
    "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE",
    "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER",
    "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL",
    "TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL",
    "OAUTH_URL",
)


class Unauthorized(Exception):
    """The request's token did not prove it came from the channel for this bot."""


def build_authentication(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> SharedClientsAuthentication:
    """botbuilder's configuration-driven authentication, with our caching credentials factory.

    Endpoint overrides left empty mean the public cloud; any one of them set switches botbuilder
    to its parameterised mode, which is how national clouds (and the tests) are configured.
    """
    configuration = SimpleNamespace(
        APP_ID=settings.app_id,
        APP_PASSWORD=settings.app_password.get_secret_value(),
        APP_TYPE=settings.app_type,
        APP_TENANTID=settings.app_tenant_id,
        TO_CHANNEL_FROM_BOT_LOGIN_URL=settings.to_channel_from_bot_login_url or None,
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=settings.to_channel_from_bot_oauth_scope or None,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=settings.to_bot_from_channel_token_issuer or None,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=settings.to_bot_from_channel_openid_metadata_url or None,
        TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=settings.to_bot_from_emulator_openid_metadata_url or None,
        OAUTH_URL=settings.oauth_url or None,
    )
    credentials = CachingCredentialsFactory(
        settings.app_id,
        settings.app_password.get_secret_value(),
        single_tenant_id=settings.app_tenant_id if settings.app_type == "SingleTenant" else None,
    )
    botbuilder = ConfigurationBotFrameworkAuthentication(configuration, credentials_factory=credentials)
    outgoing = (
        credentials.app_credentials(botbuilder.get_originating_audience(), _login_endpoint(configuration))
        if settings.auth_enabled
        else None
    )
    return SharedClientsAuthentication(botbuilder, OutgoingToken(outgoing, clock), clock)


def _login_endpoint(configuration: SimpleNamespace) -> str:
    """The login endpoint botbuilder's connector factory asks the credentials for.

    BotFrameworkAuthenticationFactory takes the configured endpoints as they are once any of
    them is set (its parameterised mode), and otherwise the public cloud's login host; the
    audience comes from botbuilder itself (`get_originating_audience`). botbuilder has no
    public way to ask for the login endpoint, so tests/integration/test_bot_connector.py checks
    that both give the very credentials botbuilder's connector clients are made with."""
    if any(getattr(configuration, name) for name in ENDPOINT_OVERRIDES):
        return configuration.TO_CHANNEL_FROM_BOT_LOGIN_URL
    return AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX


async def authenticate(
    auth: BotFrameworkAuthentication, activity: Activity, auth_header: str | None
) -> AuthenticateRequestResult:
    """Validate the channel's JWT. Any failure (botbuilder raises PermissionError for some, and
    KeyError, IndexError or PyJWT errors for others) becomes `Unauthorized`, i.e. HTTP 401."""
    try:
        return await auth.authenticate_request(activity, auth_header or None)
    except Exception as error:
        log.info("rejected activity: %s: %s", type(error).__name__, error)
        raise Unauthorized(str(error)) from error
