"""Bot Framework authentication from settings, with every rejection reduced to one error."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity
from botframework.connector.auth import AuthenticateRequestResult, BotFrameworkAuthentication

from bot.connectors import SharedClientsAuthentication
from bot.credentials import CachingCredentialsFactory
from config.settings import Settings

log = logging.getLogger(__name__)


class Unauthorized(Exception):
    """The request's token did not prove it came from the channel for this bot."""


def build_authentication(settings: Settings) -> SharedClientsAuthentication:
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
    return SharedClientsAuthentication(
        ConfigurationBotFrameworkAuthentication(configuration, credentials_factory=credentials)
    )


async def authenticate(
    auth: BotFrameworkAuthentication, activity: Activity, auth_header: str | None
) -> AuthenticateRequestResult:
    """Validate the channel's JWT. Any failure (botbuilder raises PermissionError for some, and
    KeyError, IndexError or PyJWT errors for others) becomes `Unauthorized`, i.e. HTTP 401."""
    try:
        return await auth.authenticate_request(activity, auth_header or None)
    except Exception as error:  # noqa: BLE001 - every failure to authenticate is a 401
        log.info("rejected activity: %s: %s", type(error).__name__, error)
        raise Unauthorized(str(error)) from error
