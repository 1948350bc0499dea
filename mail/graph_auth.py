"""Getting Graph tokens from Entra ID, and the O365 classes bent to use them.

One MSAL `ConfidentialClientApplication` lives as long as the process so its token cache is
reused: Graph calls then cost one token request an hour, not one each. MSAL is told the
authority host (public or national cloud) and `instance_discovery=False`, so it never calls the
public instance-discovery endpoint. O365 2.1 hard-codes the public Graph and login hosts and puts
the bearer token into its session's default headers (which it logs at DEBUG); the subclasses here
take the configured endpoints and add the token per request instead, so no log line carries it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import msal
import requests
from O365.connection import Connection, MSGraphProtocol
from O365.utils.token import MemoryTokenBackend
from requests.adapters import HTTPAdapter

from clock import Clock
from errors import Permanent, Transient, parse_retry_after
from mail.graph_config import GraphConfig

log = logging.getLogger(__name__)


class TokenRefused(Permanent):
    """Entra ID gave no token and trying again will not help (unknown tenant, wrong secret or
    certificate). A failure that may pass (a 5xx, no connection) is `Transient` instead."""


class PinnedSession(requests.Session):
    """A session whose CA bundle really is the configured one.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment replace a session's
    `verify`; only a per-request `verify` wins, so it is passed on every call.
    """

    def __init__(self, verify: bool | str, timeout: float | None = None) -> None:
        super().__init__()
        self.verify = verify
        self._timeout = timeout

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("verify", self.verify)
        if self._timeout is not None:
            kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


class _RecordingSession(PinnedSession):
    """MSAL's HTTP client: remembers the last token-endpoint status and Retry-After.

    MSAL's result dict for a failed token request has the OAuth error but not the HTTP status,
    and throttling (429/503) must be told apart from a wrong secret (400/401).
    """

    def __init__(self, verify: bool | str, timeout: float, clock: Clock) -> None:
        super().__init__(verify, timeout)
        self._clock = clock
        self.last_status: int | None = None
        self.last_retry_after: float | None = None

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        response = super().request(method, url, *args, **kwargs)
        if str(method).upper() == "POST":
            self.last_status = response.status_code
            self.last_retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock.now())
        return response


class TokenSource:
    """Client-credentials tokens for `<graph_url>/.default`, cached by one MSAL app.

    Only ever called from the mailbox's worker thread; the lock guards against a second
    caller anyway, because MSAL's cache is not documented as thread-safe.
    """

    def __init__(self, config: GraphConfig, clock: Clock) -> None:
        self._config = config
        self.authority = f"{config.authority_host}/{config.tenant_id}"
        self.scope = f"{config.graph_url}/.default"
        self._http = _RecordingSession(config.ca_bundle or True, config.request_timeout, clock)
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    def _credential(self) -> str | dict[str, str]:
        cfg = self._config
        if cfg.certificate_path:
            return {
                "private_key": Path(cfg.certificate_path).read_text(encoding="ascii"),
                "thumbprint": cfg.certificate_thumbprint.replace(":", "").upper(),
            }
        return cfg.client_secret

    @property
    def app(self) -> msal.ConfidentialClientApplication:
        """Built on first use: the constructor already fetches the OpenID configuration."""
        if self._app is None:
            try:
                self._app = msal.ConfidentialClientApplication(
                    self._config.client_id,
                    client_credential=self._credential(),
                    authority=self.authority,
                    instance_discovery=False,
                    http_client=self._http,
                )
            except requests.HTTPError as exc:  # 5xx from discovery
                status = exc.response.status_code if exc.response is not None else None
                raise Transient(f"OpenID discovery failed with HTTP {status}") from None
            except requests.RequestException as exc:
                raise Transient(f"cannot reach the login endpoint: {type(exc).__name__}") from None
            except ValueError as exc:  # 4xx from discovery: unknown tenant or wrong host
                raise TokenRefused(f"OpenID discovery refused: {str(exc).splitlines()[0][:200]}") from None
        return self._app

    def token(self) -> str:
        """A valid access token, from MSAL's cache when it still has one."""
        with self._lock:
            try:
                result = self.app.acquire_token_for_client(scopes=[self.scope])
            except requests.RequestException as exc:
                raise Transient(f"cannot reach the token endpoint: {type(exc).__name__}") from None
        if "access_token" in result:
            return str(result["access_token"])
        status = self._http.last_status
        error = result.get("error", "unknown_error")
        transient = status is None or status == 429 or status >= 500
        if error in ("temporarily_unavailable", "server_error"):
            transient = True
        reason = f"token request failed: {error} (HTTP {status})"
        if transient:
            raise Transient(reason, self._http.last_retry_after)
        raise TokenRefused(reason)

    def forget(self) -> None:
        """Drop cached access tokens after Graph rejected one (revoked, clock skew)."""
        with self._lock:
            if self._app is None:
                return
            cache = self._app.token_cache
            for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(item)

    def close(self) -> None:
        self._http.close()


class _MsalBearer(requests.auth.AuthBase):
    """Adds the bearer header per request, so it never sits in the session's default headers."""

    def __init__(self, tokens: TokenSource) -> None:
        self._tokens = tokens

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = "Bearer " + self._tokens.token()
        return request

    def __repr__(self) -> str:
        return "<bearer from MSAL>"


class GraphProtocol(MSGraphProtocol):
    """O365's Graph protocol with a configurable Graph host (public or national cloud)."""

    def __init__(self, graph_url: str, mailbox: str) -> None:
        self._protocol_url = graph_url.rstrip("/") + "/"
        self._oauth_scope_prefix = self._protocol_url
        super().__init__(api_version="v1.0", default_resource=f"users/{mailbox}", timezone="UTC")


class GraphConnection(Connection):
    """O365's connection using our MSAL app, our CA bundle, and no hidden retries.

    Retries are ours (mail.graph), because O365's urllib3 retry only covers idempotent methods
    and sleeps for any Retry-After, however long.
    """

    PREFER_IMMUTABLE = 'IdType="ImmutableId"'
    session: requests.Session | None  # O365's, made on first use (get_session)
    naive_session: requests.Session | None

    def __init__(self, config: GraphConfig, tokens: TokenSource) -> None:
        super().__init__(
            # the secret stays inside MSAL; O365 only needs a non-empty pair here
            (config.client_id, "held-by-msal"),
            auth_flow_type="credentials",
            tenant_id=config.tenant_id,
            token_backend=MemoryTokenBackend(),
            request_retries=0,
            requests_delay=0,
            raise_http_errors=False,
            timeout=config.request_timeout,
            verify_ssl=config.ca_bundle or True,
            default_headers={"Prefer": self.PREFER_IMMUTABLE},
        )
        self._tokens = tokens
        self._msal_authority = tokens.authority

    @property
    def msal_client(self) -> msal.ConfidentialClientApplication:
        return self._tokens.app

    def get_session(self, load_token: bool = False) -> requests.Session:
        session = PinnedSession(self.verify_ssl)
        session.proxies = self.proxy
        session.auth = _MsalBearer(self._tokens)
        adapter = HTTPAdapter(max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def oauth_request(self, url: str, method: str, **kwargs: Any) -> requests.Response:
        if self.session is None:
            self.session = self.get_session()
        headers = dict(kwargs.pop("headers", None) or {})
        response = self._internal_request(
            self.session, url, method, ignore40x=False, headers=dict(headers), **kwargs
        )
        if response.status_code == 401:
            # a token MSAL still trusts was refused: fetch a fresh one once
            self._tokens.forget()
            response = self._internal_request(
                self.session, url, method, ignore40x=False, headers=dict(headers), **kwargs
            )
        return response

    def close(self) -> None:
        for session in (self.session, self.naive_session):
            if session is not None:
                session.close()
        self.session = None
        self.naive_session = None
