"""Access control of the web app: token, Host, Origin, JSON only, size limit, CSP, no key leaks."""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx2
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from smarthole_notes.web.app import STATIC_DIR
from smarthole_notes.web.security import AccessPolicy, cookie_name, tokens_match
from tests.standins.anthropic_api import AnthropicStandIn
from tests.web_harness import TOKEN, WebService, isolated_credentials, next_event

ENV_KEY = "fake-key-environment-key-0123456789"
FILE_KEY = "fake-key-file-key-9876543210"


@pytest.fixture
async def service(
    anthropic_api: AnthropicStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[WebService]:
    isolated_credentials(monkeypatch, tmp_path / "config", key=ENV_KEY)
    vault = tmp_path / "vault"
    vault.mkdir()
    async with WebService(vault, anthropic_api) as svc:
        yield svc


API_GETS = [
    "/api/status",
    "/api/conversations",
    "/api/settings",
    "/api/models",
    "/api/inbox",
    "/openapi.json",
    "/static/app.js",
]


@pytest.mark.parametrize("path", [*API_GETS, "/"])
async def test_requests_without_the_token_are_refused(service: WebService, path: str) -> None:
    async with service.http(auth=False) as http:
        missing = await http.get(path)
        wrong = await http.get(path, headers={"authorization": f"Bearer {TOKEN[:-1]}x"})
        short = await http.get(path, headers={"authorization": "Bearer x"})
        basic = await http.get(path, headers={"authorization": f"Basic {TOKEN}"})
        in_cookie = await http.get(path, headers={"cookie": f"{cookie_name(service.port)}=wrong"})
    for response in (missing, wrong, short, basic, in_cookie):
        assert response.status_code == 401, (path, response.status_code)


async def test_the_page_without_a_token_says_how_to_get_in(service: WebService) -> None:
    async with service.http(auth=False) as http:
        response = await http.get("/")
    assert response.status_code == 401
    assert "text/html" in response.headers["content-type"]
    assert "smarthole-notes serve" in response.text


async def test_state_changing_requests_without_the_token_change_nothing(
    service: WebService,
) -> None:
    async with service.http(auth=False) as http:
        response = await http.post("/api/messages", json={"text": "hi"})
        query = await http.post(f"/api/messages?token={TOKEN}", json={"text": "hi"})
    assert response.status_code == 401
    assert query.status_code == 401, "?token= is for the page address and the WebSocket only"
    assert service.inbox.pending() == []


async def test_token_in_the_page_address_becomes_a_strict_http_only_cookie(
    service: WebService,
) -> None:
    async with httpx2.AsyncClient(base_url=service.url) as http:
        exchanged = await http.get(f"/?token={TOKEN}")
        cookie = exchanged.headers["set-cookie"]
        page = await http.get("/")
        api = await http.get("/api/status")
    async with httpx2.AsyncClient(base_url=service.url) as other:
        wrong = await other.get("/?token=wrong")
    assert exchanged.status_code == 303 and exchanged.headers["location"] == "/"
    assert cookie.startswith(f"{cookie_name(service.port)}={TOKEN};")
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert "path=/" in cookie.lower()
    assert page.status_code == 200 and 'id="message"' in page.text
    assert api.status_code == 200
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers


async def test_a_fresh_token_in_the_address_wins_over_a_stale_cookie(service: WebService) -> None:
    stale = {"cookie": f"{cookie_name(service.port)}=stale-token"}
    async with httpx2.AsyncClient(base_url=service.url) as http:
        response = await http.get(f"/?token={TOKEN}", headers=stale)
    assert response.status_code == 303 and TOKEN in response.headers["set-cookie"]


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1.evil.example:{port}",
        "localhost.evil.example:{port}",
        "192.168.1.10:{port}",
        "127.0.0.1:1",
        "",
        "127.0.0.1:{port}@evil.example",
    ],
)
async def test_foreign_host_headers_are_refused_even_with_the_token(
    service: WebService, host: str
) -> None:
    async with service.http() as http:
        got = await http.get("/api/status", headers={"host": host.format(port=service.port)})
        posted = await http.post(
            "/api/messages", json={"text": "hi"}, headers={"host": host.format(port=service.port)}
        )
    assert got.status_code == 400
    assert posted.status_code == 400
    assert service.inbox.pending() == []


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"])
async def test_loopback_host_names_are_accepted(service: WebService, host: str) -> None:
    async with service.http() as http:
        response = await http.get("/api/status", headers={"host": host.format(port=service.port)})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "http://127.0.0.1:1",
        "https://127.0.0.1:{port}",
        "http://localhost.evil.example:{port}",
    ],
)
async def test_foreign_origins_cannot_change_state(service: WebService, origin: str) -> None:
    async with service.http() as http:
        response = await http.post(
            "/api/messages",
            json={"text": "hi"},
            headers={"origin": origin.format(port=service.port)},
        )
        cancel = await http.post(
            "/api/cancel", json={}, headers={"origin": origin.format(port=service.port)}
        )
    assert response.status_code == 403
    assert cancel.status_code == 403
    assert service.inbox.pending() == []


async def test_own_origin_and_same_site_fetches_are_accepted(service: WebService) -> None:
    async with service.http() as http:
        ok = await http.post(
            "/api/cancel", json={}, headers={"origin": service.url, "sec-fetch-site": "same-origin"}
        )
        cross = await http.post("/api/cancel", json={}, headers={"sec-fetch-site": "cross-site"})
    assert ok.status_code == 200
    assert cross.status_code == 403


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"text": "hi"}'),
        ("application/x-www-form-urlencoded", b"text=hi"),
        ("multipart/form-data; boundary=x", b"--x--"),
        (None, b'{"text": "hi"}'),
    ],
)
async def test_state_changing_requests_must_be_json(
    service: WebService, content_type: str | None, body: bytes
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    async with service.http() as http:
        response = await http.post("/api/messages", content=body, headers=headers)
    assert response.status_code == 415
    assert service.inbox.pending() == []


async def test_oversized_bodies_are_refused(service: WebService) -> None:
    big = json.dumps({"text": "x" * (service.ctx.max_body_bytes + 10)}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    async with service.http() as http:
        declared = await http.post(
            "/api/messages", content=big, headers={"content-type": "application/json"}
        )
        streamed = await http.post(
            "/api/messages", content=chunks(), headers={"content-type": "application/json"}
        )
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert service.inbox.pending() == []


async def test_websocket_needs_the_token(service: WebService) -> None:
    url = f"ws://127.0.0.1:{service.port}/api/events"
    for attempt in (url, f"{url}?token=wrong"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(attempt, open_timeout=5):
                pass
        assert refused.value.response.status_code == 403
    async with connect(url, additional_headers=service.headers) as ws:
        assert (await next_event(ws, "hello"))["type"] == "hello"
    cookie = {"cookie": f"{cookie_name(service.port)}={TOKEN}"}
    async with connect(url, additional_headers=cookie) as ws:
        assert (await next_event(ws, "hello"))["type"] == "hello"


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:1"])
async def test_websocket_from_a_foreign_origin_is_refused(service: WebService, origin: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with service.websocket(headers={"origin": origin}):
            pass
    assert refused.value.response.status_code == 403


async def test_websocket_with_a_foreign_host_is_refused(service: WebService) -> None:
    with pytest.raises(InvalidStatus):
        async with service.websocket(headers={"host": "evil.example"}):
            pass
    async with service.websocket(headers={"origin": service.url}) as ws:
        assert (await next_event(ws, "hello"))["type"] == "hello"


class _InlineFinder(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.external: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}>")
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        for name in ("src", "href"):
            value = names.get(name) or ""
            if re.match(r"^(https?:)?//", value):
                self.external.append(value)


async def test_page_and_api_carry_a_strict_csp_and_no_inline_script(service: WebService) -> None:
    async with service.http() as http:
        page = await http.get("/")
        api = await http.get("/api/status")
        script = await http.get("/static/app.js")
        vendor = await http.get("/static/vendor/markdown-it.min.js")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert api.headers["content-security-policy"] == csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert script.headers["content-type"].startswith("text/javascript")
    assert vendor.status_code == 200
    finder = _InlineFinder()
    finder.feed(page.text)
    assert finder.problems == [] and finder.external == []


def test_no_static_asset_refers_to_the_internet() -> None:
    pattern = re.compile(
        r"""(?:src|href)\s*=\s*["'](?:https?:)?//|@import\s+url\(\s*["']?https?:|url\(\s*["']?https?:"""
    )
    for path in STATIC_DIR.rglob("*"):
        if path.suffix in (".html", ".css", ".js") and "vendor" not in path.parts:
            text = path.read_text()
            assert not pattern.search(text), path
            assert 'fetch("http' not in text and 'new WebSocket("ws' not in text


async def test_the_api_key_appears_in_no_response_and_no_page(
    service: WebService, anthropic_api: AnthropicStandIn
) -> None:
    seen: list[str] = []
    async with service.http() as http:
        put = await http.put("/api/settings", json={"api_key": FILE_KEY})
        seen.append(put.text)
        await http.post("/api/messages", json={"text": "hello"})
        await service.idle()
        for path in [*API_GETS, "/", "/static/index.html"]:
            seen.append((await http.get(path)).text)
        conversations = (await http.get("/api/conversations")).json()["conversations"]
        for conversation in conversations:
            seen.append((await http.get(f"/api/conversations/{conversation['id']}")).text)
        for asset in STATIC_DIR.rglob("*"):
            if asset.is_file():
                seen.append((await http.get(f"/static/{asset.relative_to(STATIC_DIR)}")).text)
    async with service.websocket() as ws:
        seen.append(json.dumps(await next_event(ws, "hello")))
    seen.extend(json.dumps(event) for event in service.events)
    for text in seen:
        assert ENV_KEY not in text and FILE_KEY not in text


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert tokens_match("abc", "abc")
    assert not tokens_match("abd", "abc")
    assert not tokens_match("é", "abc"), "non-ASCII input must not raise"
    assert not tokens_match(None, "abc") and not tokens_match("", "abc")
    assert len(calls) == 3 and all(isinstance(a, bytes) for a, _ in calls)


def test_listening_elsewhere_adds_only_that_host() -> None:
    policy = AccessPolicy(
        token="t", host_names=["localhost", "127.0.0.1", "::1", "10.0.0.5"], port=8765
    )
    assert policy.host_allowed("10.0.0.5:8765")
    assert policy.host_allowed("[::1]:8765")
    assert not policy.host_allowed("10.0.0.6:8765")
    assert not policy.host_allowed("10.0.0.5:8766")
    assert policy.origin_allowed("http://10.0.0.5:8765")
    assert not policy.origin_allowed("http://10.0.0.5:8765/path")
