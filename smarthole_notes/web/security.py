"""Access control for every HTTP request and WebSocket handshake, before any route runs.

The service can rewrite the user's notes, so only the user's own browser (or their scripts)
may drive it. In order, cheapest and most fundamental first:

1. `Host` must name this machine (a loopback name or address, or a host the user explicitly
   chose to listen on) with our port: a DNS-rebinding page reaches us under its own name.
2. `Origin`, when sent, must be our own on WebSocket handshakes and state-changing requests,
   and `Sec-Fetch-Site: cross-site` is refused there too: defeats cross-site requests and
   cross-site WebSocket hijacking (browsers always send `Origin` on those).
3. The token: `Authorization: Bearer`, the page's cookie, or `?token=` (only on the
   WebSocket URL and on the page address, which exchanges it for the cookie). Compared in
   constant time.
4. State-changing requests carry JSON (`application/json`): a cross-site form cannot send
   that without a CORS preflight, which we never grant.
5. Bodies over the size limit are refused (by `Content-Length`, and while streaming).

Every response gets a strict Content-Security-Policy (no inline script, nothing from
another origin) and the usual hardening headers.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_QUERY_PATHS = frozenset({"/", "/api/events"})

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
)


def cookie_name(port: int) -> str:
    """Cookies ignore ports: one name per port keeps two vaults' services from colliding."""
    return f"smarthole_notes_{port}"


def tokens_match(given: str | None, token: str) -> bool:
    """Constant-time comparison (on bytes: `compare_digest` refuses non-ASCII str)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode("utf-8"))


def split_host(value: str) -> tuple[str, int | None] | None:
    """`Host` header -> (lower-case host without brackets, port or None); None if malformed."""
    value = value.strip()
    if not value or any(c in value for c in "/@?#\\ \t"):
        return None
    try:
        parts = urlsplit(f"http://{value}")
        port = parts.port
    except ValueError:
        return None
    if parts.hostname is None:
        return None
    return parts.hostname.lower(), port


class AccessPolicy:
    """Who may talk to us: our host names, our port, our origins, our token."""

    def __init__(self, *, token: str, host_names: Iterable[str], port: int) -> None:
        if not token:
            raise ValueError("an access token is required")
        self.token = token
        self.host_names = frozenset(h.strip("[]").lower() for h in host_names)
        self.port = port
        self.cookie = cookie_name(port)

    def host_allowed(self, header: str | None) -> bool:
        if header is None:
            return False
        parsed = split_host(header)
        if parsed is None:
            return False
        host, port = parsed
        if host not in self.host_names:
            return False
        if self.port == 0:  # bound late (tests): any port of ours
            return True
        return (port or 80) == self.port

    def origin_allowed(self, origin: str) -> bool:
        try:
            parts = urlsplit(origin)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme != "http" or parts.hostname is None or parts.path not in ("", "/"):
            return False
        if parts.hostname.lower() not in self.host_names:
            return False
        return self.port == 0 or (port or 80) == self.port

    def tokens_from(self, scope: Scope, headers: Headers) -> list[str]:
        """Every token the request offers: a stale cookie must not hide a fresh `?token=`."""
        found: list[str] = []
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer":
                found.append(value.strip())
        cookie_header = headers.get("cookie")
        if cookie_header:
            from_cookie = cookie_parser(cookie_header).get(self.cookie)
            if from_cookie:
                found.append(from_cookie)
        if scope.get("path") in TOKEN_QUERY_PATHS:
            query: str = scope.get("query_string", b"").decode("latin-1")
            found.extend(given for key, given in parse_qsl(query) if key == "token")
        return found

    def authorised(self, scope: Scope, headers: Headers) -> bool:
        return any(tokens_match(given, self.token) for given in self.tokens_from(scope, headers))


class SecurityMiddleware:
    """Applies `AccessPolicy` to every request and handshake; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: AccessPolicy,
        max_body_bytes: int,
        unauthorized_page: Response | None = None,
    ) -> None:
        self.app = app
        self.policy = policy
        self.max_body_bytes = max_body_bytes
        self.unauthorized_page = unauthorized_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._check(scope, headers)
        if refusal is not None:
            status, message = refusal
            log.info(
                "Refused %s %s: %s", scope.get("method", "WEBSOCKET"), scope.get("path"), message
            )
            if kind == "websocket":
                await _refuse_websocket(scope, receive, send)
            elif status == 401 and scope.get("path") == "/" and self.unauthorized_page:
                await self.unauthorized_page(scope, receive, _with_security_headers(send))
            else:
                await _json_error(send, status, message)
            return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        await self.app(scope, self._limited(receive, send), _with_security_headers(send))

    def _check(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        policy = self.policy
        if not policy.host_allowed(headers.get("host")):
            return 400, "this service only answers requests addressed to this machine"
        method = scope.get("method", "GET")
        changes_state = scope["type"] == "websocket" or method not in SAFE_METHODS
        if changes_state:
            origin = headers.get("origin")
            if origin is not None and not policy.origin_allowed(origin):
                return 403, "requests from other sites are refused"
            if headers.get("sec-fetch-site") == "cross-site":
                return 403, "requests from other sites are refused"
        if not policy.authorised(scope, headers):
            return 401, "a valid access token is required (open the address `serve` printed)"
        if scope["type"] == "http" and method not in SAFE_METHODS:
            content_type = headers.get("content-type", "")
            if content_type.split(";")[0].strip().lower() != "application/json":
                return 415, "send JSON (Content-Type: application/json)"
        length = headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body_bytes
            except ValueError:
                return 400, "invalid Content-Length"
            if too_big:
                return 413, f"the request body is over {self.max_body_bytes} bytes"
        return None

    def _limited(self, receive: Receive, send: Send) -> Receive:
        """A receive that stops a chunked body at the limit (Content-Length was checked)."""
        limit = self.max_body_bytes
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        return limited_receive


class BodyTooLarge(HTTPException):
    """A streamed body passed the size limit: a 413 (an HTTPException, so that body parsing
    lets it through rather than calling it unparsable)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over {limit} bytes")


def _with_security_headers(send: Send) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in SECURITY_HEADERS:
                if name not in headers:
                    headers[name] = value
            if "cache-control" not in headers:
                headers["cache-control"] = "no-store"
        await send(message)

    return send_with_headers


async def _json_error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    """Close before accepting: the server answers the handshake with HTTP 403."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1008})
