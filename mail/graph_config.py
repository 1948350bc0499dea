"""Where the shared mailbox lives and how the bot signs in to Graph.

Its own module because both `mail.graph` (the client) and `mail.graph_auth` (tokens and the
O365 connection) read it; neither imports the other's settings, so there is no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GraphConfig:
    """Where the shared mailbox lives and how the bot signs in. Secrets are kept out of repr."""

    tenant_id: str
    client_id: str
    mailbox: str
    client_secret: str = field(default="", repr=False)
    certificate_path: str | None = None
    certificate_thumbprint: str = field(default="", repr=False)
    moderators_address: str = ""
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com"
    ca_bundle: str | None = None
    max_sends_per_minute: int = 30
    processed_category: str = "Bot: handled"
    #: put instead on mail Exchange does not vouch for, so a person looks at it
    untrusted_category: str = "Bot: not trusted"
    request_timeout: float = 30.0
    #: attempts per operation before giving the job back to the outbox
    max_attempts: int = 4
    #: first back-off step when Graph sent no Retry-After
    retry_base_delay: float = 1.0
    #: waits longer than this are not slept in-process: Transient goes to the outbox instead
    max_inline_wait: float = 15.0

    def __post_init__(self) -> None:
        for name in ("tenant_id", "client_id", "mailbox"):
            if not getattr(self, name).strip():
                raise ValueError(f"GraphConfig.{name} is required")
        if not self.client_secret and not self.certificate_path:
            raise ValueError("GraphConfig needs client_secret or certificate_path")
        if self.certificate_path and not self.certificate_thumbprint:
            raise ValueError("certificate_path needs certificate_thumbprint")
        for name in ("authority_host", "graph_url"):
            value = getattr(self, name).strip().rstrip("/")
            if not value.startswith("https://"):
                raise ValueError(f"GraphConfig.{name} must be an https:// URL")
            object.__setattr__(self, name, value)
        if self.max_sends_per_minute < 1:
            raise ValueError("max_sends_per_minute must be at least 1")
        if not self.moderators_address:
            object.__setattr__(self, "moderators_address", self.mailbox)
