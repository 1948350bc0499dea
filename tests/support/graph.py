"""Local stand-ins for Entra ID and Microsoft Graph, over TLS with a throwaway CA.

They speak the JSON shapes the bot's Graph code uses, so the real MSAL and O365 clients can be
driven against them: OpenID discovery and client-credentials tokens (JWTs, 3600 s), and the
Graph mail endpoints (drafts with immutable ids, send, createReply, $filter lookups, delta paging
with 410 for unknown tokens, category PATCH). Every Graph call must carry a token this identity
server signed for this Graph host. Faults (status codes with Retry-After, dropped connections)
are injected with `fail_next`. Clients trust the CA through its PEM file, never by switching
certificate verification off.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import hashlib
import itertools
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import jwt
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.hold import Hold

# ---------------------------------------------------------------------------------------------
# shared plumbing


@dataclass
class Fault:
    """One injected failure rule; `match` is a method, a path prefix/glob, or 'METHOD path'."""

    match: str
    count: int
    status: int = 429
    retry_after: float | None = None
    drop: bool = False
    after: bool = False  # apply the request, then fail (a lost response)
    skip: int = 0  # let this many matching requests through first

    def matches(self, method: str, path: str) -> bool:
        want_method, _, want_path = self.match.partition(" ")
        if not want_path and not want_method.startswith(("/", "*")):
            return want_method.upper() == method
        if want_path:
            if want_method.upper() != method:
                return False
        else:
            want_path = want_method
        if "*" in want_path:
            return fnmatch.fnmatchcase(path, want_path)
        return path.startswith(want_path)


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int
    headers: dict[str, str]
    at: float


class _FakeServer:
    """TLS aiohttp server with a request log and fault injection."""

    def __init__(self, ca: trustme.CA) -> None:
        self._ca = ca
        self.faults: list[Fault] = []
        self.requests: list[LoggedRequest] = []
        self._holds: list[tuple[Fault, Hold]] = []
        self._runner: web.AppRunner | None = None
        self._transports: list[asyncio.BaseTransport] = []
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def fail_next(
        self,
        match: str,
        count: int = 1,
        status: int = 429,
        retry_after: float | None = None,
        *,
        drop: bool = False,
        after: bool = False,
        skip: int = 0,
    ) -> None:
        """Fail the next `count` matching requests (status + Retry-After, or a dropped socket).

        `after` processes the request first and then fails, as when only the response is lost;
        `skip` lets that many matching requests succeed before the failures start.
        """
        self.faults.append(Fault(match, count, status, retry_after, drop, after, skip))

    def hold_next(self, match: str, *, after: bool = True) -> Hold:
        """Keep the next matching request waiting until `release()`: after applying it (`after`,
        e.g. a mail already sent) or before. The moment to kill the bot at that point."""
        hold = Hold()
        self._holds.append((Fault(match, 1, after=after), hold))
        return hold

    def _take_hold(self, method: str, path: str) -> tuple[Fault, Hold] | None:
        for entry in self._holds:
            if entry[0].matches(method, path):
                self._holds.remove(entry)
                return entry
        return None

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.count > 0 and fault.matches(method, path):
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.count -= 1
                return fault
        return None

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def _guard(self, request: web.Request) -> web.StreamResponse | None:
        """Checks before the handler (auth); a response here short-circuits."""
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        fault = None
        if request.transport is not None and request.transport not in self._transports:
            self._transports.append(request.transport)
        response: web.StreamResponse | None = await self._guard(request)
        held = self._take_hold(request.method, request.path) if response is None else None
        if held is not None and not held[0].after:
            await held[1].wait_here()
            if await held[1].client_gone(request):
                return web.Response(status=599)  # its client died while held: never applied
        if response is None:
            fault = self._take_fault(request.method, request.path)
            if fault is not None and not fault.after:
                response = self._fault_response(request, fault)
            else:
                try:
                    response = await handler(request)
                except _HTTPJSONError as exc:
                    response = exc.response
                if fault is not None:
                    response = self._fault_response(request, fault)
        if held is not None and held[0].after:
            await held[1].wait_here()
        self.requests.append(
            LoggedRequest(
                request.method,
                request.path,
                request.query_string,
                response.status if response is not None else 0,
                dict(request.headers),
                time.monotonic(),
            )
        )
        if response is None:  # dropped: the socket is gone, this response goes nowhere
            return web.Response(status=599)
        return response

    def _fault_response(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        if fault.drop:
            # close the connection without a response: the client sees it die mid-request
            if request.transport is not None:
                request.transport.close()
            return None
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        return web.json_response(
            self._fault_body(fault.status), status=fault.status, headers=headers
        )

    def _fault_body(self, status: int) -> dict[str, Any]:
        codes = {429: "TooManyRequests", 503: "ServiceNotAvailable"}
        return {"error": {"code": codes.get(status, "InjectedFault"), "message": "injected"}}

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        # a TLS close waits for the peer's close_notify, which a dropped client never sends:
        # abort what is left so no socket outlives the test
        for transport in self._transports:
            transport.abort()  # type: ignore[attr-defined]
        self._transports.clear()
        await asyncio.sleep(0.01)


def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


# ---------------------------------------------------------------------------------------------
# identity


@dataclass
class AppRegistration:
    client_id: str
    secret: str | None = None
    certificate: x509.Certificate | None = None


def make_client_certificate(path: Path) -> tuple[str, str, x509.Certificate]:
    """A self-signed client certificate: (PEM path with key+cert, SHA-1 thumbprint, cert)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "colleague-bot-test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now.replace(year=now.year + 1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + cert.public_bytes(serialization.Encoding.PEM)
    path.write_bytes(pem)
    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()
    return str(path), thumbprint, cert


class IdentityServer(_FakeServer):
    """Entra ID's v2.0 endpoints for one tenant: discovery and client-credentials tokens."""

    def __init__(self, ca: trustme.CA, tenant_id: str) -> None:
        super().__init__(ca)
        self.tenant_id = tenant_id
        self.apps: dict[str, AppRegistration] = {}
        self.token_requests = 0
        self.discovery_requests = 0
        self.issued_tokens: list[str] = []
        self.token_lifetime = 3600
        self.last_client_auth_error = ""
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self._key.public_key()

    def register(self, app: AppRegistration) -> None:
        self.apps[app.client_id] = app

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/oauth2/v2.0/token"

    def _fault_body(self, status: int) -> dict[str, Any]:
        error = "temporarily_unavailable" if status in (429, 503) else "invalid_request"
        return {
            "error": error,
            "error_description": "AADSTS50196: injected",
            "error_codes": [50196],
        }

    def _routes(self, app: web.Application) -> None:
        app.router.add_get(
            "/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration
        )
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)

    def _check_tenant(self, request: web.Request) -> None:
        if request.match_info["tenant"] != self.tenant_id:
            raise _http_error(400, "invalid_tenant", "AADSTS90002: Tenant not found.")

    async def _openid_configuration(self, request: web.Request) -> web.Response:
        self._check_tenant(request)
        self.discovery_requests += 1
        base = f"{self.base_url}/{self.tenant_id}"
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": self.token_endpoint,
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                ],
                "tenant_region_scope": "EU",
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        self._check_tenant(request)
        self.token_requests += 1
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type")
        registration = self.apps.get(str(form.get("client_id", "")))
        if registration is None:
            return _oauth_error(400, "unauthorized_client", "AADSTS700016: app not found")
        if not self._client_authenticated(registration, form):
            return _oauth_error(401, "invalid_client", "AADSTS7000215: bad client credentials")
        scope = str(form.get("scope", ""))
        resource = next((s for s in scope.split() if s.endswith("/.default")), None)
        if resource is None:
            return _oauth_error(400, "invalid_scope", "AADSTS1002012: scope must be /.default")
        now = int(time.time())
        token = jwt.encode(
            {
                "aud": resource[: -len("/.default")],
                "iss": f"https://sts.invalid/{self.tenant_id}/",
                "tid": self.tenant_id,
                "appid": registration.client_id,
                "roles": ["Mail.ReadWrite", "Mail.Send"],
                "iat": now,
                "nbf": now,
                "exp": now + self.token_lifetime,
                "jti": uuid.uuid4().hex,
            },
            self._key,
            algorithm="RS256",
        )
        self.issued_tokens.append(token)
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            }
        )

    def _client_authenticated(self, registration: AppRegistration, form: Any) -> bool:
        if "client_secret" in form:
            return registration.secret is not None and form["client_secret"] == registration.secret
        assertion = form.get("client_assertion")
        if assertion and registration.certificate is not None:
            header = jwt.get_unverified_header(str(assertion))
            expected = (
                base64.urlsafe_b64encode(registration.certificate.fingerprint(hashes.SHA1()))
                .rstrip(b"=")
                .decode()
            )
            if str(header.get("x5t", "")).rstrip("=") != expected:
                self.last_client_auth_error = f"x5t {header.get('x5t')} != {expected}"
                return False
            try:
                claims = jwt.decode(
                    str(assertion),
                    registration.certificate.public_key(),  # type: ignore[arg-type]
                    algorithms=["RS256", "PS256"],
                    audience=self.token_endpoint,
                )
            except jwt.PyJWTError as exc:
                self.last_client_auth_error = repr(exc)
                return False
            return claims.get("iss") == claims.get("sub") == registration.client_id
        return False


def _oauth_error(status: int, error: str, description: str = "") -> web.Response:
    return web.json_response(
        {"error": error, "error_description": description, "error_codes": [0]}, status=status
    )


class _HTTPJSONError(Exception):
    """A Graph-shaped error; the middleware turns it into the JSON response."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.response = _json_error(status, code, message)


def _http_error(status: int, code: str, message: str) -> _HTTPJSONError:
    return _HTTPJSONError(status, code, message)


# ---------------------------------------------------------------------------------------------
# graph


_DEFAULT_FIELDS = [
    "createdDateTime",
    "lastModifiedDateTime",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "isRead",
    "isDraft",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "categories",
    "flag",
]
_FOLDERS = ("inbox", "drafts", "sentitems")
_KEY_FILTER = re.compile(
    r"^singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id eq '((?:[^']|'')*)'"
    r"\s+and\s+\1/value eq '((?:[^']|'')*)'\s*\)$",
    re.IGNORECASE,
)
_IMID_FILTER = re.compile(r"^internetMessageId eq '((?:[^']|'')*)'$", re.IGNORECASE)
_CONVERSATION_FILTER = re.compile(r"^conversationId eq '((?:[^']|'')*)'$", re.IGNORECASE)
_SUBJECT_SEARCH = re.compile(r'^"subject:([^"]+)"$', re.IGNORECASE)
_EXPAND = re.compile(r"^singleValueExtendedProperties\(\$filter=(.*)\)$", re.IGNORECASE)
_EXPAND_ID = re.compile(r"id eq '((?:[^']|'')*)'", re.IGNORECASE)


_ORG_HEADER_PREFIX = "x-ms-exchange-organization-"


def _exchange_verdict(sender_domain: str, tenant_domain: str, *, from_internet: bool) -> dict[str, str]:
    """The headers Exchange Online stamps on delivery. Mail between mailboxes of one tenant has
    no DKIM signature and no DMARC evaluation, and is often reported spf=fail (the internal hop
    is in no SPF record); what says it is internal is AuthAs."""
    if not from_internet:
        return {
            "Authentication-Results": (
                f"spf=fail (sender IP is 2603:10a6:20b:4f0::12) smtp.mailfrom={sender_domain}; "
                f"dkim=none (message not signed) header.d=none;dmarc=none action=none header.from={sender_domain};"
            ),
            "X-MS-Exchange-Organization-AuthAs": "Internal",
            "X-MS-Exchange-Organization-AuthSource": "AM9PR07MB7105.eurprd07.prod.outlook.com",
            "X-MS-Exchange-Organization-AuthMechanism": "04",
            "X-MS-Exchange-Organization-MessageDirectionality": "Originating",
        }
    if sender_domain == tenant_domain:  # someone on the internet claiming to be us
        results = (
            f"spf=fail (sender IP is 203.0.113.66) smtp.mailfrom={sender_domain}; dkim=none (message not signed) "
            f"header.d=none;dmarc=fail action=oreject header.from={sender_domain};compauth=fail reason=000"
        )
    else:
        results = (
            f"spf=pass (sender IP is 198.51.100.7) smtp.mailfrom={sender_domain}; dkim=pass (signature was verified) "
            f"header.d={sender_domain};dmarc=pass action=none header.from={sender_domain};compauth=pass reason=100"
        )
    return {
        "Authentication-Results": results,
        "X-MS-Exchange-Organization-AuthAs": "Anonymous",
        "X-MS-Exchange-Organization-AuthSource": "AM4PEPF00027A6C.eurprd04.prod.outlook.com",
        "X-MS-Exchange-Organization-MessageDirectionality": "Incoming",
    }


def _unquote(value: str) -> str:
    return value.replace("''", "'")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Stored:
    imm: str
    folder: str
    data: dict[str, Any]
    serial: int = 0
    version: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    props: list[dict[str, str]] = field(default_factory=list)


@dataclass
class _DeltaRound:
    folder: str
    entries: list[tuple[str, str]]  # ("msg", imm) or ("removed", imm)
    end_version: int
    select: str | None
    expand: str | None


class GraphServer(_FakeServer):
    """Graph v1.0 mail endpoints for one mailbox."""

    def __init__(self, ca: trustme.CA, identity: IdentityServer, mailbox: str) -> None:
        super().__init__(ca)
        self.identity = identity
        self.mailbox = mailbox.lower()
        self.page_size = 2
        self.delta_omits_headers = False
        self._messages: dict[str, _Stored] = {}
        self._rest_ids: dict[str, tuple[str, int]] = {}
        self._tombstones: dict[str, tuple[str, int]] = {}  # imm -> (folder, version)
        self._versions = itertools.count(1)
        self._version = 0
        self._rounds: dict[str, _DeltaRound] = {}
        self._skiptokens: dict[str, tuple[str, int]] = {}
        self._deltatokens: dict[str, tuple[str, int, str | None, str | None]] = {}
        self.outbound: list[dict[str, Any]] = []

    # -- test API ------------------------------------------------------------------------

    def deliver_to_inbox(
        self,
        sender: str,
        subject: str,
        *,
        text: str | None = None,
        html: str | None = None,
        sender_name: str = "",
        headers: dict[str, str] | None = None,
        message_id: str | None = None,
        in_reply_to: str | None = None,
        references: tuple[str, ...] = (),
        conversation_id: str | None = None,
        from_internet: bool | None = None,
    ) -> str:
        """Put a received mail in the Inbox; returns its immutable id.

        Exchange's verdict is stamped as Exchange Online does: mail from a mailbox of this tenant
        (by default: a sender in the mailbox's domain) is `AuthAs: Internal`; mail that came in
        from the internet (`from_internet`, or a sender in another domain) is `AuthAs: Anonymous`,
        with SPF/DKIM/DMARC failing when it claims this tenant's domain (a spoof). The header
        firewall drops X-MS-Exchange-Organization-* headers an internet sender wrote.
        """
        imid = message_id or f"<{uuid.uuid4().hex}@sender.example>"
        domain = self.mailbox.rpartition("@")[2]
        sender_domain = sender.rpartition("@")[2].lower()
        if from_internet is None:
            from_internet = sender_domain != domain
        all_headers = {
            "Received": "from mx.example by exchange.example",
            "From": f"{sender_name} <{sender}>" if sender_name else sender,
            "To": self.mailbox,
            "Subject": subject,
            "Message-ID": imid,
            "Date": datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"),
            "MIME-Version": "1.0",
            "Content-Type": "text/html; charset=utf-8" if html else "text/plain; charset=utf-8",
        }
        if in_reply_to:
            all_headers["In-Reply-To"] = in_reply_to
        if references or in_reply_to:
            all_headers["References"] = " ".join(references or (in_reply_to or "",))
        verdict = _exchange_verdict(sender_domain, domain, from_internet=from_internet)
        all_headers.update(
            (name, value)
            for name, value in (headers or {}).items()
            if not (name.lower().startswith(_ORG_HEADER_PREFIX) and (from_internet or name in verdict))
        )
        body = (
            {"contentType": "html", "content": html}
            if html
            else {"contentType": "text", "content": text or ""}
        )
        address = {"emailAddress": {"name": sender_name or sender, "address": sender}}
        stored = self._store(
            "inbox",
            {
                "subject": subject,
                "body": body,
                "from": address,
                "sender": address,
                "toRecipients": [{"emailAddress": {"name": "", "address": self.mailbox}}],
                "internetMessageId": imid,
                "conversationId": conversation_id or self._conversation_for(in_reply_to),
                "isDraft": False,
                "receivedDateTime": _now(),
                "sentDateTime": _now(),
            },
        )
        # Exchange adds its own Authentication-Results beside any the mail already carried
        stored.headers = [{"name": k, "value": v} for k, v in [*verdict.items(), *all_headers.items()]]
        return stored.imm

    def sent_items(self) -> list[dict[str, Any]]:
        return [self._full(s) for s in self._in_folder("sentitems")]

    def drafts(self) -> list[dict[str, Any]]:
        return [self._full(s) for s in self._in_folder("drafts")]

    def inbox(self) -> list[dict[str, Any]]:
        return [self._full(s) for s in self._in_folder("inbox")]

    def messages(self) -> list[dict[str, Any]]:
        """Every message still in the mailbox, whatever its folder (Deleted Items included)."""
        return [self._full(s) for s in sorted(self._messages.values(), key=lambda s: s.version)]

    def message(self, imm: str) -> dict[str, Any]:
        return self._full(self._messages[imm])

    def touch(self, imm: str) -> None:
        """Change a message server-side (as a user marking it read would)."""
        stored = self._messages[imm]
        stored.data["isRead"] = not stored.data.get("isRead", False)
        self._bump(stored)

    def remove_from_inbox(self, imm: str) -> None:
        stored = self._messages.pop(imm)
        self._tombstones[imm] = (stored.folder, self._next_version())

    def expire_delta_tokens(self) -> None:
        """Forget every delta token: the next round gets 410 Gone, as after a long outage."""
        self._deltatokens.clear()

    def graph_requests(self, method: str | None = None, contains: str = "") -> list[LoggedRequest]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and contains in r.path
        ]

    # -- storage -------------------------------------------------------------------------

    def _next_version(self) -> int:
        self._version = next(self._versions)
        return self._version

    def _bump(self, stored: _Stored) -> None:
        stored.version = self._next_version()
        stored.data["lastModifiedDateTime"] = _now()

    def _store(self, folder: str, data: dict[str, Any]) -> _Stored:
        imm = "AAkALgImm" + uuid.uuid4().hex + "="
        now = _now()
        base: dict[str, Any] = {
            "createdDateTime": now,
            "lastModifiedDateTime": now,
            "receivedDateTime": now,
            "sentDateTime": None,
            "hasAttachments": False,
            "internetMessageId": None,
            "subject": "",
            "importance": "normal",
            "conversationId": "AAQk" + uuid.uuid4().hex,
            "isRead": folder != "inbox",
            "isDraft": True,
            "body": {"contentType": "text", "content": ""},
            "sender": None,
            "from": None,
            "toRecipients": [],
            "ccRecipients": [],
            "bccRecipients": [],
            "replyTo": [],
            "categories": [],
            "flag": {"flagStatus": "notFlagged"},
        }
        base.update(data)
        stored = _Stored(imm=imm, folder=folder, data=base)
        self._messages[imm] = stored
        self._move(stored, folder)
        return stored

    def _move(self, stored: _Stored, folder: str) -> None:
        if stored.folder != folder:
            self._tombstones[stored.imm] = (stored.folder, self._next_version())
        else:
            self._tombstones.pop(stored.imm, None)
        stored.folder = folder
        stored.serial += 1
        rest = f"AAMkRest{uuid.uuid4().hex}="
        self._rest_ids[rest] = (stored.imm, stored.serial)
        stored.data["_rest"] = rest
        stored.data["parentFolderId"] = f"folder-{folder}"
        self._bump(stored)

    def _in_folder(self, folder: str) -> list[_Stored]:
        return sorted(
            (s for s in self._messages.values() if s.folder == folder), key=lambda s: s.version
        )

    def _conversation_for(self, in_reply_to: str | None) -> str:
        for stored in self._messages.values():
            if in_reply_to and stored.data.get("internetMessageId") == in_reply_to:
                return str(stored.data["conversationId"])
        return "AAQk" + uuid.uuid4().hex

    def _lookup(self, message_id: str) -> _Stored:
        stored = self._messages.get(message_id)
        if stored is None and message_id in self._rest_ids:
            imm, serial = self._rest_ids[message_id]
            candidate = self._messages.get(imm)
            if candidate is not None and candidate.serial == serial:
                stored = candidate
        if stored is None:
            raise _http_error(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return stored

    def _full(self, stored: _Stored) -> dict[str, Any]:
        out = {k: v for k, v in stored.data.items() if not k.startswith("_")}
        out["id"] = stored.imm
        out["folder"] = stored.folder
        out["internetMessageHeaders"] = list(stored.headers)
        out["singleValueExtendedProperties"] = list(stored.props)
        return out

    def _render(
        self, request: web.Request, stored: _Stored, select: str | None, expand: str | None
    ) -> dict[str, Any]:
        immutable = 'idtype="immutableid"' in request.headers.get("Prefer", "").lower()
        fields = [f.strip() for f in select.split(",")] if select else list(_DEFAULT_FIELDS)
        out: dict[str, Any] = {
            "@odata.etag": f'W/"CQAAAB{stored.version}"',
            "id": stored.imm if immutable else stored.data["_rest"],
        }
        for name in fields:
            if name == "id":
                continue
            if name == "internetMessageHeaders":
                if stored.headers:
                    out[name] = list(stored.headers)
            elif name == "singleValueExtendedProperties":
                continue
            elif name in stored.data and not name.startswith("_"):
                out[name] = stored.data[name]
            elif name not in _DEFAULT_FIELDS:
                raise _http_error(
                    400, "RequestBroker--ParseUri", f"Could not find a property named '{name}'."
                )
        if expand:
            match = _EXPAND.match(expand.strip())
            if not match:
                raise _http_error(400, "BadRequest", "Unsupported $expand")
            wanted = {_unquote(i).lower() for i in _EXPAND_ID.findall(match.group(1))}
            props = [p for p in stored.props if p["id"].lower() in wanted]
            if props:
                out["singleValueExtendedProperties"] = props
        return out

    # -- HTTP ----------------------------------------------------------------------------

    async def _guard(self, request: web.Request) -> web.StreamResponse | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return _json_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims = jwt.decode(
                auth[len("Bearer ") :],
                self.identity.public_key,
                algorithms=["RS256"],
                audience=self.base_url,
            )
        except jwt.PyJWTError as exc:
            return _json_error(401, "InvalidAuthenticationToken", f"bad token: {exc}")
        if claims.get("tid") != self.identity.tenant_id:
            return _json_error(401, "InvalidAuthenticationToken", "wrong tenant")
        user = request.match_info.get("user", "")
        if user.lower() != self.mailbox:
            return _json_error(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        return None

    def _routes(self, app: web.Application) -> None:
        root = "/v1.0/users/{user}"
        r = app.router
        r.add_post(root + "/messages", self._create)
        r.add_post(root + "/mailFolders/{folder}/messages", self._create)
        r.add_get(root + "/messages", self._list)
        r.add_get(root + "/mailFolders/{folder}/messages", self._list)
        r.add_get(root + "/mailFolders/{folder}/messages/delta", self._delta)
        r.add_get(root + "/messages/{id}", self._get)
        r.add_get(root + "/messages/{id}/$value", self._mime)
        r.add_patch(root + "/messages/{id}", self._patch)
        r.add_post(root + "/messages/{id}/send", self._send)
        r.add_post(root + "/messages/{id}/createReply", self._create_reply)
        r.add_delete(root + "/messages/{id}", self._delete)
        r.add_post(root + "/messages/{id}/permanentDelete", self._permanent_delete)

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            data = await request.json()
        except ValueError:
            raise _http_error(400, "BadRequest", "Unable to read JSON request payload.") from None
        if not isinstance(data, dict):
            raise _http_error(400, "BadRequest", "Payload must be an object.")
        return data

    def _folder(self, request: web.Request) -> str:
        folder = request.match_info.get("folder", "drafts").lower()
        if folder not in _FOLDERS:
            raise _http_error(404, "ErrorInvalidIdMalformed", "Id is malformed.")
        return folder

    def _apply(self, stored: _Stored, payload: dict[str, Any], *, creating: bool) -> None:
        for name, value in payload.items():
            if name == "internetMessageHeaders":
                if not creating:
                    raise _http_error(
                        400,
                        "ErrorInvalidPropertyUpdateSentMessage",
                        "internetMessageHeaders can only be set when the message is created.",
                    )
                for header in value:
                    if not str(header.get("name", "")).lower().startswith("x-"):
                        raise _http_error(
                            400,
                            "InvalidInternetMessageHeader",
                            f"The internet message header name '{header.get('name')}' "
                            "should start with 'x-' or 'X-'.",
                        )
                stored.headers = [{"name": h["name"], "value": h["value"]} for h in value]
            elif name == "singleValueExtendedProperties":
                for prop in value:
                    stored.props = [
                        p for p in stored.props if p["id"].lower() != prop["id"].lower()
                    ]
                    stored.props.append({"id": prop["id"], "value": str(prop["value"])})
            elif name in (
                "subject",
                "toRecipients",
                "ccRecipients",
                "bccRecipients",
                "categories",
                "isRead",
                "replyTo",
                "importance",
            ):
                stored.data[name] = value
            elif name == "body":
                content_type = str(value.get("contentType", "text")).lower()
                if content_type not in ("text", "html"):
                    raise _http_error(400, "BadRequest", "contentType must be text or html")
                stored.data["body"] = {"contentType": content_type, "content": value["content"]}
            else:
                raise _http_error(400, "BadRequest", f"Property '{name}' cannot be written.")

    async def _create(self, request: web.Request) -> web.Response:
        folder = self._folder(request)
        payload = await self._body(request)
        me = {"emailAddress": {"name": "Colleague Questions", "address": self.mailbox}}
        stored = self._store(folder, {"from": me, "sender": me})
        try:
            self._apply(stored, payload, creating=True)
        except _HTTPJSONError:
            del self._messages[stored.imm]
            raise
        return web.json_response(self._render(request, stored, None, None), status=201)

    async def _create_reply(self, request: web.Request) -> web.Response:
        original = self._lookup(request.match_info["id"])
        if original.data.get("isDraft"):
            raise _http_error(400, "ErrorInvalidOperation", "Cannot reply to a draft.")
        payload = await self._body(request)
        me = {"emailAddress": {"name": "Colleague Questions", "address": self.mailbox}}
        orig = original.data
        quoted = (
            '<hr><div id="divRplyFwdMsg"><b>From:</b> '
            f"{orig['from']['emailAddress']['address']}<br><b>Subject:</b> {orig['subject']}"
            f"</div>{orig['body']['content']}"
        )
        stored = self._store(
            "drafts",
            {
                "from": me,
                "sender": me,
                "subject": "RE: " + str(orig.get("subject", "")),
                "toRecipients": [orig["from"]] if orig.get("from") else [],
                "conversationId": orig["conversationId"],
                "body": {"contentType": "html", "content": quoted},
            },
        )
        refs = " ".join(
            [h["value"] for h in original.headers if h["name"].lower() == "references"]
            + [str(orig["internetMessageId"])]
        )
        stored.props = [
            {"id": "String 0x1042", "value": str(orig["internetMessageId"])},
            {"id": "String 0x1039", "value": refs},
        ]
        message = payload.get("message") or {}
        try:
            self._apply(stored, message, creating=True)
        except _HTTPJSONError:
            del self._messages[stored.imm]
            raise
        if payload.get("comment"):
            stored.data["body"]["content"] = payload["comment"] + stored.data["body"]["content"]
        return web.json_response(self._render(request, stored, None, None), status=201)

    async def _get(self, request: web.Request) -> web.Response:
        stored = self._lookup(request.match_info["id"])
        return web.json_response(
            self._render(
                request, stored, request.query.get("$select"), request.query.get("$expand")
            )
        )

    async def _mime(self, request: web.Request) -> web.Response:
        """The message's MIME source, as Graph's `$value` gives it."""
        stored = self._lookup(request.match_info["id"])
        body = stored.data["body"]
        own = {"content-type", "content-transfer-encoding", "mime-version"}
        lines = [f"{h['name']}: {h['value']}" for h in stored.headers if h["name"].lower() not in own]
        lines += [
            "MIME-Version: 1.0",
            f"Content-Type: text/{'html' if body['contentType'] == 'html' else 'plain'}; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
        ]
        source = "\r\n".join(lines) + "\r\n\r\n" + body["content"].replace("\n", "\r\n")
        return web.Response(body=source.encode(), content_type="text/plain")

    async def _patch(self, request: web.Request) -> web.Response:
        stored = self._lookup(request.match_info["id"])
        payload = await self._body(request)
        self._apply(stored, payload, creating=False)
        self._bump(stored)
        return web.json_response(self._render(request, stored, None, None))

    async def _send(self, request: web.Request) -> web.Response:
        stored = self._lookup(request.match_info["id"])
        if stored.folder != "drafts" or not stored.data.get("isDraft"):
            raise _http_error(400, "ErrorInvalidOperation", "Only drafts can be sent.")
        if not stored.data.get("toRecipients"):
            raise _http_error(400, "ErrorInvalidRecipients", "At least one recipient is required.")
        domain = self.mailbox.split("@", 1)[1]
        imid = f"<{uuid.uuid4().hex.upper()}@{domain}>"
        stored.data.update(
            {"isDraft": False, "internetMessageId": imid, "sentDateTime": _now(), "isRead": True}
        )
        self._move(stored, "sentitems")
        copy = self._full(stored)
        self.outbound.append(copy)
        recipients = [r["emailAddress"]["address"].lower() for r in stored.data["toRecipients"]]
        if self.mailbox in recipients:
            headers = {h["name"]: h["value"] for h in stored.headers}
            for prop in stored.props:
                if prop["id"] == "String 0x1042":
                    headers["In-Reply-To"] = prop["value"]
            self.deliver_to_inbox(
                self.mailbox,
                str(stored.data["subject"]),
                html=stored.data["body"]["content"]
                if stored.data["body"]["contentType"] == "html"
                else None,
                text=stored.data["body"]["content"],
                sender_name="Colleague Questions",
                headers=headers,
                message_id=imid,
                conversation_id=str(stored.data["conversationId"]),
            )
        return web.Response(status=202)

    def _matches_filter(self, stored: _Stored, flt: str | None) -> bool:
        if not flt:
            return True
        match = _KEY_FILTER.match(flt.strip())
        if match:
            pid, value = _unquote(match.group(2)).lower(), _unquote(match.group(3))
            return any(p["id"].lower() == pid and p["value"] == value for p in stored.props)
        match = _IMID_FILTER.match(flt.strip())
        if match:
            return stored.data.get("internetMessageId") == _unquote(match.group(1))
        match = _CONVERSATION_FILTER.match(flt.strip())
        if match:
            return stored.data.get("conversationId") == _unquote(match.group(1))
        raise _http_error(400, "ErrorInvalidUrlQueryFilter", f"Unsupported $filter: {flt}")

    @staticmethod
    def _matches_search(stored: _Stored, search: str | None) -> bool:
        """`$search="subject:words"`: Exchange matches words of the subject; here, a substring."""
        if not search:
            return True
        match = _SUBJECT_SEARCH.match(search.strip())
        if not match:
            raise _http_error(400, "BadRequest", f"Unsupported $search: {search}")
        return match.group(1).lower() in str(stored.data.get("subject", "")).lower()

    async def _delete(self, request: web.Request) -> web.Response:
        """DELETE moves the message to Deleted Items, as Exchange does."""
        self._move(self._lookup(request.match_info["id"]), "deleteditems")
        return web.Response(status=204)

    async def _permanent_delete(self, request: web.Request) -> web.Response:
        """permanentDelete removes it from every folder the mailbox's users can open."""
        stored = self._lookup(request.match_info["id"])
        del self._messages[stored.imm]
        self._tombstones[stored.imm] = (stored.folder, self._next_version())
        return web.Response(status=204)

    async def _list(self, request: web.Request) -> web.Response:
        folder = request.match_info.get("folder")
        if folder is not None:
            folder = self._folder(request)
        top = int(request.query.get("$top", "10"))
        candidates = [
            s
            for s in sorted(self._messages.values(), key=lambda s: s.version)
            if (folder is None or s.folder == folder)
            and self._matches_filter(s, request.query.get("$filter"))
            and self._matches_search(s, request.query.get("$search"))
        ]
        select, expand = request.query.get("$select"), request.query.get("$expand")
        return web.json_response(
            {"value": [self._render(request, s, select, expand) for s in candidates[:top]]}
        )

    # -- delta ---------------------------------------------------------------------------

    async def _delta(self, request: web.Request) -> web.Response:
        folder = self._folder(request)
        query = request.query
        if "$skiptoken" in query:
            token = query["$skiptoken"]
            if token not in self._skiptokens:
                raise _http_error(410, "SyncStateNotFound", "The sync state is not valid.")
            round_id, offset = self._skiptokens[token]
            return self._delta_page(request, round_id, offset)
        if "$deltatoken" in query:
            token = query["$deltatoken"]
            if token not in self._deltatokens:
                raise _http_error(
                    410, "SyncStateNotFound", "The sync state is not found or has expired."
                )
            since_folder, since, select, expand = self._deltatokens[token]
            if since_folder != folder:
                raise _http_error(410, "SyncStateNotFound", "The sync state is for another folder.")
        else:
            since, select, expand = 0, query.get("$select"), query.get("$expand")
        entries: list[tuple[int, str, str]] = [
            (s.version, "msg", s.imm)
            for s in self._messages.values()
            if s.folder == folder and s.version > since
        ]
        entries += [
            (version, "removed", imm)
            for imm, (old, version) in self._tombstones.items()
            if old == folder
            and version > since
            and imm not in {s.imm for s in self._messages.values() if s.folder == folder}
        ]
        entries.sort()
        round_id = uuid.uuid4().hex
        self._rounds[round_id] = _DeltaRound(
            folder, [(kind, imm) for _, kind, imm in entries], self._version, select, expand
        )
        return self._delta_page(request, round_id, 0)

    def _delta_page(self, request: web.Request, round_id: str, offset: int) -> web.Response:
        rnd = self._rounds[round_id]
        prefer = request.headers.get("Prefer", "")
        match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        size = min(self.page_size, int(match.group(1))) if match else self.page_size
        chunk = rnd.entries[offset : offset + size]
        immutable = 'idtype="immutableid"' in prefer.lower()
        value: list[dict[str, Any]] = []
        for kind, imm in chunk:
            stored = self._messages.get(imm)
            if kind == "removed" or stored is None or stored.folder != rnd.folder:
                rest = next((r for r, (i, _) in self._rest_ids.items() if i == imm), imm)
                value.append(
                    {
                        "@odata.type": "#microsoft.graph.message",
                        "id": imm if immutable else rest,
                        "@removed": {"reason": "deleted"},
                    }
                )
                continue
            item = self._render(request, stored, rnd.select, rnd.expand)
            if self.delta_omits_headers:
                item.pop("internetMessageHeaders", None)
            item["@odata.type"] = "#microsoft.graph.message"
            value.append(item)
        base = f"{self.base_url}{request.path}"
        body: dict[str, Any] = {"@odata.context": f"{self.base_url}/v1.0/$metadata", "value": value}
        if offset + size < len(rnd.entries):
            token = hashlib.sha256(f"{round_id}:{offset + size}".encode()).hexdigest()
            self._skiptokens[token] = (round_id, offset + size)
            body["@odata.nextLink"] = f"{base}?$skiptoken={token}"
        else:
            token = hashlib.sha256(f"{round_id}:end".encode()).hexdigest()
            self._deltatokens[token] = (rnd.folder, rnd.end_version, rnd.select, rnd.expand)
            body["@odata.deltaLink"] = f"{base}?$deltatoken={token}"
        return web.json_response(body)


# ---------------------------------------------------------------------------------------------
# both together


@dataclass
class GraphWorld:
    """Running identity + Graph servers and what a client needs to reach them."""

    ca_path: str
    identity: IdentityServer
    graph: GraphServer
    tenant_id: str
    client_id: str
    client_secret: str
    mailbox: str


async def start_world(directory: Path, *, mailbox: str = "questions@council.example") -> GraphWorld:
    """Start both servers with a fresh CA whose PEM is written to `directory`."""
    ca = trustme.CA()
    ca_path = directory / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    tenant_id = str(uuid.uuid4())
    client_id = str(uuid.uuid4())
    secret = "s3cret-" + uuid.uuid4().hex
    identity = IdentityServer(ca, tenant_id)
    identity.register(AppRegistration(client_id, secret=secret))
    graph = GraphServer(ca, identity, mailbox)
    await identity.start()
    await graph.start()
    return GraphWorld(str(ca_path), identity, graph, tenant_id, client_id, secret, mailbox)


async def stop_world(world: GraphWorld) -> None:
    await world.graph.stop()
    await world.identity.stop()


T = TypeVar("T")


class GraphWorldThread:
    """The identity + Graph servers on an event loop and thread of their own.

    For timing tests: serving a 10 MB mail then costs the app under test's event loop nothing,
    so what is measured there is the app's own work. Everything touching the servers' state goes
    through `call`, on their loop.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="graph-world", daemon=True)
        self.world: GraphWorld | None = None

    async def start(self, directory: Path, *, mailbox: str) -> GraphWorld:
        self._thread.start()
        self.world = await self._run(start_world(directory, mailbox=mailbox))
        return self.world

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async def on_loop() -> T:
            return fn(*args, **kwargs)

        return await self._run(on_loop())

    async def stop(self) -> None:
        if self.world is not None:
            await self._run(stop_world(self.world))
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join)
        self._loop.close()

    async def _run(self, coroutine: Any) -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))
