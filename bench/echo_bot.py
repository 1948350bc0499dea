"""The stock botbuilder echo bot, as the reference point for bench/load.py.

Why it exists: the load benchmark compares the questions bot with what "textbook" botbuilder
4.17 costs per turn on the same machine, channel and JWT validation. This is the Microsoft
sample (02.echo-bot: CloudAdapter + ConfigurationBotFrameworkAuthentication + ActivityHandler
replying inside the turn) reading the same environment variables as app.py.

One deliberate change, and only one: stock MSAL calls the public instance-discovery endpoint
for an authority it does not know (the test channel's https://127.0.0.1:<port>/...), and this
machine has no internet. `NoDiscoveryCredentialFactory` therefore hands botbuilder the very
same `MicrosoftAppCredentials` it would have built, pre-seeded with an MSAL application made
with `instance_discovery=False`. Everything else stays stock: one credentials object and so
one fresh MSAL application (empty token cache, tenant discovery plus a token request) per
turn, a new connector client per turn, the reply sent in the turn.

Run: `MicrosoftAppId=… MicrosoftAppPassword=… TO_CHANNEL_FROM_BOT_LOGIN_URL=… PORT=3979
      .venv/bin/python bench/echo_bot.py`
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

from aiohttp import web
from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import ChannelAccount
from botframework.connector.auth import MicrosoftAppCredentials
from msal import ConfidentialClientApplication
from msrest.authentication import Authentication


class EchoBot(ActivityHandler):
    """The sample's bot: echo every message back within the turn."""

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        for member in members_added:
            if member.id != turn_context.activity.recipient.id:
                await turn_context.send_activity("Hello and welcome!")

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        text = turn_context.activity.text
        await turn_context.send_activity(MessageFactory.text(f"Echo: {text}"))


class NoDiscoveryCredentialFactory(ConfigurationServiceClientCredentialFactory):
    """Stock credentials, except that their MSAL app skips public instance discovery."""

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Authentication:
        credentials = await super().create_credentials(
            app_id, oauth_scope, login_endpoint, validate_authority
        )
        if isinstance(credentials, MicrosoftAppCredentials) and credentials.microsoft_app_id:
            # What MicrosoftAppCredentials.__get_msal_app would build, plus instance_discovery.
            credentials.app = ConfidentialClientApplication(
                client_id=credentials.microsoft_app_id,
                client_credential=credentials.microsoft_app_password,
                authority=credentials.oauth_endpoint,
                instance_discovery=False,
            )
        return credentials


def configuration() -> SimpleNamespace:
    """The sample's DefaultConfig, from the same variables app.py reads."""
    env = os.environ.get
    return SimpleNamespace(
        PORT=int(env("PORT", "3978")),
        APP_ID=env("MicrosoftAppId", ""),
        APP_PASSWORD=env("MicrosoftAppPassword", ""),
        APP_TYPE=env("MicrosoftAppType", "MultiTenant"),
        APP_TENANTID=env("MicrosoftAppTenantId", ""),
        TO_CHANNEL_FROM_BOT_LOGIN_URL=env("TO_CHANNEL_FROM_BOT_LOGIN_URL") or None,
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=env("TO_CHANNEL_FROM_BOT_OAUTH_SCOPE") or None,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=env("TO_BOT_FROM_CHANNEL_TOKEN_ISSUER") or None,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=env("TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL") or None,
        TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=env("TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL") or None,
        OAUTH_URL=env("OAUTH_URL") or None,
    )


def create_app(config: SimpleNamespace) -> web.Application:
    auth = ConfigurationBotFrameworkAuthentication(
        config, credentials_factory=NoDiscoveryCredentialFactory(config)
    )
    adapter = CloudAdapter(auth)
    bot = EchoBot()

    async def on_error(context: TurnContext, error: Exception) -> None:
        # The sample's handler: log it and tell the user.
        print(f"\n [on_turn_error] unhandled error: {error}", file=sys.stderr)
        await context.send_activity("The bot encountered an error or bug.")

    adapter.on_turn_error = on_error

    async def messages(request: web.Request) -> web.Response:
        return await adapter.process(request, bot)

    async def healthz(_: web.Request) -> web.Response:
        """Not in the sample: lets bench/load.py wait for the bot to listen."""
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    return app


if __name__ == "__main__":
    config = configuration()
    web.run_app(create_app(config), host=os.environ.get("HOST", "127.0.0.1"), port=config.PORT, print=None)
