"""All settings, read once from the environment into one frozen, validated object (the bot's);
`one_setting` reads just one of them, for an admin command that uses only a few.

The Bot Framework names (`MicrosoftAppId`, `TO_CHANNEL_FROM_BOT_LOGIN_URL`, ...) are the ones
botbuilder samples and Azure App Service configuration already use, so an operator can move an
existing bot's configuration across unchanged. Unset endpoint overrides mean the public cloud.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, SecretStr, create_model, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from handlers.clock import DEFAULT_TIMEZONE, zone_named

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MIN_METRICS_TOKEN_CHARS = 32  # e.g. `openssl rand -hex 16`
ROOT = Path(__file__).resolve().parent.parent
BUNDLED_FAQ = ROOT / "config" / "faq.yaml"


def _env(name: str) -> AliasChoices:
    """Accept the documented name exactly, plus its upper-case spelling (Linux shells)."""
    return AliasChoices(name, name.upper())


# A setting's own rules are part of its type, so it can be read and checked alone (`one_setting`);
# the rules that relate settings to each other are `Settings`' model validators.


def _known_database(value: str) -> str:
    scheme = value.split(":", 1)[0].split("+", 1)[0]
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ValueError("DATABASE_URL must be a sqlite:/// or postgresql:// URL")
    return value


def _comma_separated(value: object) -> object:
    """A list in one variable (ADMINS=a@x.org, b@x.org): split, trimmed, lower-cased."""
    if isinstance(value, str):
        return tuple(part.strip().lower() for part in value.split(",") if part.strip())
    return value


def _tenant_ids(value: tuple[str, ...]) -> tuple[str, ...]:
    wrong = [tenant for tenant in value if not _GUID.fullmatch(tenant)]
    if wrong:
        raise ValueError(f"ALLOWED_TENANT_IDS takes Entra tenant ids (GUIDs), not {', '.join(wrong)}")
    return value


def _known_zone(value: str) -> str:
    zone_named(value)
    return value


def _empty_is_off(value: object) -> object:
    return None if value == "" else value


def _long_token(value: SecretStr) -> SecretStr:
    if value.get_secret_value() and len(value.get_secret_value()) < MIN_METRICS_TOKEN_CHARS:
        raise ValueError(f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_CHARS} characters")
    return value


CommaSeparated = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_separated)]


class _FromEnvironment(BaseSettings):
    """How every settings model reads the environment: exact names, other variables ignored."""

    # hide_input_in_errors: a refused value can be a secret (a token too short, a password in a URL)
    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, extra="ignore", hide_input_in_errors=True)


class Settings(_FromEnvironment):
    """The bot's configuration. Secrets are `SecretStr`, so `repr()` and logs never show them."""

    # Bot Framework identity
    app_id: str = Field("", validation_alias=_env("MicrosoftAppId"))
    app_password: SecretStr = Field(SecretStr(""), validation_alias=_env("MicrosoftAppPassword"))
    app_type: Literal["MultiTenant", "SingleTenant"] = Field(
        "MultiTenant", validation_alias=_env("MicrosoftAppType")
    )
    app_tenant_id: str = Field("", validation_alias=_env("MicrosoftAppTenantId"))
    # The organisation(s) whose Teams users the bot serves; see `tenants`
    allowed_tenant_ids: Annotated[CommaSeparated, AfterValidator(_tenant_ids)] = Field(
        (), validation_alias="ALLOWED_TENANT_IDS"
    )

    # Bot Framework endpoints (national clouds and tests set these; unset = public cloud)
    to_channel_from_bot_login_url: str = Field("", validation_alias="TO_CHANNEL_FROM_BOT_LOGIN_URL")
    to_channel_from_bot_oauth_scope: str = Field(
        "", validation_alias="TO_CHANNEL_FROM_BOT_OAUTH_SCOPE"
    )
    to_bot_from_channel_token_issuer: str = Field(
        "", validation_alias="TO_BOT_FROM_CHANNEL_TOKEN_ISSUER"
    )
    to_bot_from_channel_openid_metadata_url: str = Field(
        "", validation_alias="TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL"
    )
    to_bot_from_emulator_openid_metadata_url: str = Field(
        "", validation_alias="TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL"
    )
    oauth_url: str = Field("", validation_alias="OAUTH_URL")

    # Serving
    host: str = Field("0.0.0.0", validation_alias="HOST")
    port: int = Field(3978, ge=0, le=65535, validation_alias="PORT")
    max_body_bytes: int = Field(256 * 1024, gt=0, validation_alias="MAX_BODY_BYTES")
    max_question_chars: int = Field(2000, gt=0, validation_alias="MAX_QUESTION_CHARS")
    # Every time shown to people (board, forward mails, reports) is in this IANA zone
    timezone: Annotated[str, AfterValidator(_known_zone)] = Field(DEFAULT_TIMEZONE, validation_alias="TIMEZONE")
    # A connection sends its request's headers within this of opening (or of its last answer),
    # and the body within this of its headers, or it is closed. Longer than a reverse proxy's
    # idle keep-alive (nginx 60 s), so the proxy never reuses a connection the bot is closing.
    request_timeout_seconds: float = Field(75.0, gt=0, validation_alias="REQUEST_TIMEOUT_SECONDS")

    # Metrics: never on the public listener without a token (ops/metrics.py)
    metrics_host: str = Field("127.0.0.1", validation_alias="METRICS_HOST")
    metrics_port: Annotated[int | None, BeforeValidator(_empty_is_off)] = Field(
        None, ge=0, le=65535, validation_alias="METRICS_PORT"
    )
    metrics_token: Annotated[SecretStr, AfterValidator(_long_token)] = Field(
        SecretStr(""), validation_alias="METRICS_TOKEN"
    )

    # Storage
    database_url: Annotated[str, AfterValidator(_known_database)] = Field(
        "sqlite:///var/bot.db", validation_alias="DATABASE_URL"
    )

    # FAQ
    faq_path: Path = Field(BUNDLED_FAQ, validation_alias="FAQ_PATH")
    faq_min_precision: float = Field(0.97, gt=0, le=1, validation_alias="FAQ_MIN_PRECISION")
    faq_threshold: float | None = Field(None, validation_alias="FAQ_THRESHOLD")
    # How often each instance looks for FAQ entries moderators added on another instance
    faq_reload_seconds: float = Field(60.0, gt=0, validation_alias="FAQ_RELOAD_SECONDS")

    # Mail (the local .eml outbox is the embedded default; Graph when SHARED_MAILBOX is set)
    mail_outbox_dir: Path = Field(Path("var/outbox"), validation_alias="MAIL_OUTBOX_DIR")
    moderators_address: str = Field("", validation_alias="MODERATORS_ADDRESS")
    mail_from_address: str = Field("questions-bot@example.org", validation_alias="MAIL_FROM")
    moderator_senders: CommaSeparated = Field((), validation_alias="MODERATOR_SENDERS")
    staff_mail_domains: CommaSeparated = Field((), validation_alias="STAFF_MAIL_DOMAINS")
    shared_mailbox: str = Field("", validation_alias="SHARED_MAILBOX")
    graph_tenant_id: str = Field("", validation_alias="GRAPH_TENANT_ID")
    graph_client_id: str = Field("", validation_alias="GRAPH_CLIENT_ID")
    graph_client_secret: SecretStr = Field(SecretStr(""), validation_alias="GRAPH_CLIENT_SECRET")
    graph_certificate_path: str = Field("", validation_alias="GRAPH_CERTIFICATE_PATH")
    graph_certificate_thumbprint: str = Field("", validation_alias="GRAPH_CERTIFICATE_THUMBPRINT")
    graph_authority_host: str = Field(
        "https://login.microsoftonline.com", validation_alias="GRAPH_AUTHORITY_HOST"
    )
    graph_url: str = Field("https://graph.microsoft.com", validation_alias="GRAPH_URL")
    graph_ca_bundle: str = Field("", validation_alias="GRAPH_CA_BUNDLE")
    graph_max_sends_per_minute: int = Field(30, gt=0, validation_alias="GRAPH_MAX_SENDS_PER_MINUTE")
    graph_processed_category: str = Field("Bot: handled", validation_alias="GRAPH_PROCESSED_CATEGORY")
    mail_poll_seconds: float = Field(30.0, gt=0, validation_alias="MAIL_POLL_SECONDS")

    # Outbox worker
    outbox_poll_seconds: float = Field(1.0, gt=0, validation_alias="OUTBOX_POLL_SECONDS")
    # Tries of a job whose error looks permanent (not one known to be transient, see outbox.retry)
    outbox_max_attempts: int = Field(12, gt=0, validation_alias="OUTBOX_MAX_ATTEMPTS")
    # How long transient failures (throttling, 5xx, timeouts, dropped connections) are retried
    outbox_give_up_after_hours: float = Field(24.0, gt=0, validation_alias="OUTBOX_GIVE_UP_AFTER_HOURS")
    outbox_lease_seconds: float = Field(60.0, gt=0, validation_alias="OUTBOX_LEASE_SECONDS")

    # Retention (UK GDPR storage limitation): what is older than this is purged by a background job
    retention_days: int = Field(365, ge=1, validation_alias="RETENTION_DAYS")
    audit_retention_days: int = Field(730, ge=1, validation_alias="AUDIT_RETENTION_DAYS")
    retention_interval_seconds: float = Field(
        3600.0, gt=0, validation_alias="RETENTION_INTERVAL_SECONDS"
    )

    # Published digests name the askers of public questions only when this is true
    digest_names: bool = Field(False, validation_alias="DIGEST_NAMES")

    # Reminders: questions waiting longer than this are listed in the moderators' channel,
    # at most once per period of this length; the check runs every REMINDER_CHECK_SECONDS
    reminder_after_hours: float = Field(24.0, gt=0, validation_alias="REMINDER_AFTER_HOURS")
    reminder_check_seconds: float = Field(300.0, gt=0, validation_alias="REMINDER_CHECK_SECONDS")

    # Roles: admins grant and revoke hosts and moderators (emails or Entra object ids)
    admins: CommaSeparated = Field((), validation_alias="ADMINS")

    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")

    @model_validator(mode="after")
    def _graph_all_or_nothing(self) -> Settings:
        graph = (self.shared_mailbox, self.graph_tenant_id, self.graph_client_id)
        if any(graph) and not all(graph):
            raise ValueError("Graph mail needs SHARED_MAILBOX, GRAPH_TENANT_ID and GRAPH_CLIENT_ID together")
        if all(graph) and not (self.graph_client_secret.get_secret_value() or self.graph_certificate_path):
            raise ValueError("Graph mail needs GRAPH_CLIENT_SECRET or GRAPH_CERTIFICATE_PATH")
        return self

    @model_validator(mode="after")
    def _multi_tenant_needs_allowed_tenants(self) -> Settings:
        """A MultiTenant app can be installed by any organisation; say which ones it serves."""
        if self.auth_enabled and not self.tenants:
            raise ValueError(
                "MicrosoftAppType=MultiTenant needs ALLOWED_TENANT_IDS: the Entra tenant id(s) of the "
                "organisation whose colleagues use the bot (comma-separated); activities from any "
                "other tenant are refused"
            )
        return self

    @model_validator(mode="after")
    def _single_tenant_needs_tenant(self) -> Settings:
        if self.app_type == "SingleTenant" and self.app_id and not self.app_tenant_id:
            raise ValueError("MicrosoftAppType=SingleTenant needs MicrosoftAppTenantId")
        if self.app_id and not self.app_password.get_secret_value():
            raise ValueError("MicrosoftAppId is set but MicrosoftAppPassword is empty")
        return self

    @property
    def auth_enabled(self) -> bool:
        """Bot Framework JWT validation is on whenever an app id is configured."""
        return bool(self.app_id)

    @property
    def tenants(self) -> frozenset[str]:
        """Tenants whose Teams activities are acted on: ALLOWED_TENANT_IDS, else the app's own
        tenant (MicrosoftAppTenantId). Empty only while auth is off (the Emulator)."""
        if self.allowed_tenant_ids:
            return frozenset(self.allowed_tenant_ids)
        return frozenset({self.app_tenant_id.lower()}) if self.app_tenant_id else frozenset()

    @property
    def graph_enabled(self) -> bool:
        return bool(self.shared_mailbox)

    @property
    def forward_to(self) -> str:
        """Where forwarded questions go: MODERATORS_ADDRESS, else the shared mailbox itself."""
        return self.moderators_address or self.shared_mailbox or "questions@example.org"

    @property
    def mailbox_address(self) -> str:
        """The address mail to colleagues comes from."""
        return self.shared_mailbox or self.mail_from_address

    @property
    def bind_host(self) -> str:
        """Without credentials the bot is open to anyone who can reach it: loopback only."""
        return self.host if self.auth_enabled else "127.0.0.1"


class TeamsAppSettings(_FromEnvironment):
    """Only for `cli.py teams package`: who publishes the app, as Teams shows it. Apart from the
    bot's Settings, so packaging the app needs none of the bot's secrets."""

    teams_developer_name: str = Field("Example County Council", min_length=1, max_length=32,
                                      validation_alias="TEAMS_DEVELOPER_NAME")
    teams_website_url: str = Field(
        "https://www.example.org/", pattern=r"^https://", validation_alias="TEAMS_WEBSITE_URL"
    )
    teams_privacy_url: str = Field(
        "https://www.example.org/privacy", pattern=r"^https://", validation_alias="TEAMS_PRIVACY_URL"
    )
    teams_terms_url: str = Field(
        "https://www.example.org/terms", pattern=r"^https://", validation_alias="TEAMS_TERMS_URL"
    )

    def developer(self) -> dict[str, str]:
        """The manifest's `developer` object."""
        return {
            "name": self.teams_developer_name,
            "websiteUrl": self.teams_website_url,
            "privacyUrl": self.teams_privacy_url,
            "termsOfUseUrl": self.teams_terms_url,
        }


def load_settings() -> Settings:
    """Read the environment; a `pydantic.ValidationError` lists every bad setting at once."""
    return Settings()


@cache
def one_setting(name: str) -> type[BaseSettings]:
    """A model of the one setting `name` (a `Settings` field): its variable, default and own rules,
    not the rules relating it to other settings. Reading it reads and checks that variable only,
    for a command that uses a few settings and should not fail on another one."""
    field = Settings.model_fields[name]
    definition: dict[str, Any] = {name: (field.annotation, field)}
    return create_model("Settings", __base__=_FromEnvironment, **definition)
