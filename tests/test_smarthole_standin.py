"""The SmartHole stand-in itself, driven by a bare websockets client: it must be a fair judge."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.standins.smarthole_server import SmartHoleStandIn


@pytest.fixture
async def hole() -> AsyncIterator[SmartHoleStandIn]:
    async with SmartHoleStandIn(deadline=5.0) as hole:
        yield hole


def registration(**payload: Any) -> str:
    base: dict[str, Any] = {"name": "Bot", "description": "Takes notes"}
    base.update(payload)
    return json.dumps({"type": "registration", "payload": base})


async def register(ws: ClientConnection, **payload: Any) -> dict[str, Any]:
    await ws.send(registration(**payload))
    frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert frame["type"] == "registration_response"
    answer: dict[str, Any] = frame["payload"]
    return answer


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"name": "9lives"}, "INVALID_NAME"),
        ({"name": ""}, "INVALID_NAME"),
        ({"name": "a" * 65}, "INVALID_NAME"),
        ({"name": "has space"}, "INVALID_NAME"),
        ({"description": ""}, "INVALID_DESCRIPTION"),
        ({"description": "x" * 1025}, "INVALID_DESCRIPTION"),
        ({"description": "\ufeff"}, "INVALID_DESCRIPTION"),  # JavaScript's trim() strips it
        ({"description": "\u00a0 \u3000\n"}, "INVALID_DESCRIPTION"),
        ({"description": "🎵" * 513}, "INVALID_DESCRIPTION"),  # 1026 UTF-16 units
        ({"description": "x" * 1023 + "🎵"}, "INVALID_DESCRIPTION"),  # 1024 chars, 1025 units
        ({"name": 7}, "VALIDATION_ERROR"),
        ({"description": None}, "VALIDATION_ERROR"),
        ({"version": 1}, "VALIDATION_ERROR"),
        ({"capabilities": "notes"}, "VALIDATION_ERROR"),
    ],
)
async def test_registration_is_validated(
    hole: SmartHoleStandIn, payload: dict[str, Any], code: str
) -> None:
    async with connect(hole.url) as ws:
        answer = await register(ws, **payload)
        assert (answer["success"], answer["code"]) == (False, code)
        assert isinstance(answer["message"], str)
    assert hole.client_names == []


async def test_registration_success_duplicates_and_second_registrations(
    hole: SmartHoleStandIn,
) -> None:
    async with connect(hole.url) as first, connect(hole.url) as second:
        ok = await register(first, name="Bot", description="x" * 1024, capabilities=["notes"])
        assert ok["success"] is True and isinstance(ok["clientId"], str)
        assert (await register(first, name="Other"))["code"] == "ALREADY_REGISTERED"
        assert (await register(second, name="Bot"))["code"] == "DUPLICATE_NAME"
        assert (await register(second, name="Bot2"))["success"] is True
        assert hole.client_names == ["Bot", "Bot2"]
    await hole.wait_until(lambda: hole.connection_count == 0)
    assert hole.client_names == []
    async with connect(hole.url) as again:  # the name is free once its client has gone
        assert (await register(again, name="Bot"))["success"] is True


@pytest.mark.parametrize("description", ["🎵" * 512, "x" * 1022 + "🎵", "\u0085", "\u200b"])
async def test_descriptions_smarthole_accepts(hole: SmartHoleStandIn, description: str) -> None:
    """At most 1024 UTF-16 units; U+0085 and U+200B are not stripped by JavaScript's trim()."""
    async with connect(hole.url) as ws:
        assert (await register(ws, description=description))["success"] is True


async def test_routes_messages_as_protocol_md_shows(hole: SmartHoleStandIn) -> None:
    async with connect(hole.url) as ws:
        await register(ws)
        voice_id = await hole.route("Bot", "buy milk", timestamp="2026-01-15T10:30:00.000Z")
        voice = json.loads(await ws.recv())
        assert voice == {
            "type": "message",
            "payload": {
                "id": voice_id,
                "text": "buy milk",
                "timestamp": "2026-01-15T10:30:00.000Z",
                "metadata": {
                    "inputMethod": "voice",
                    "directRouted": False,
                    "confidence": 0.95,
                    "routingReason": "The router stand-in matched this client",
                },
            },
        }
        await hole.route("Bot", "x", message_id="m-2", input_method="text", direct_routed=True)
        typed = json.loads(await ws.recv())["payload"]
        assert typed["id"] == "m-2"
        assert typed["metadata"] == {"inputMethod": "text", "directRouted": True}
        assert typed["timestamp"].endswith("Z")
        with pytest.raises(LookupError, match="Nobody"):
            await hole.route("Nobody", "hello")


async def test_records_responses_protocol_errors_and_the_deadline() -> None:
    async with SmartHoleStandIn(deadline=0.2) as hole, connect(hole.url) as ws:
        await register(ws)
        answered = await hole.route("Bot", "one")
        ignored = await hole.route("Bot", "two")
        ack = {"type": "response", "payload": {"messageId": answered, "type": "ack", "payload": {}}}
        await ws.send(json.dumps(ack))
        await ws.send('{"type": "response", "payload": {"messageId": "x", "type": "shrug"}}')
        await ws.send("not json")
        await ws.send(b"\x00binary")
        recorded = await hole.wait_for_response(answered)
        assert recorded.frame == ack and recorded.client == "Bot" and not recorded.late
        assert recorded.delivery is hole.delivery(answered)
        assert (await hole.wait_for_outcome(ignored, timeout=2)).rejected_by_timeout
        assert hole.delivery(answered) is not None
        assert hole.delivery(answered).outcome == "answered"  # type: ignore[union-attr]
        await hole.wait_until(lambda: len(hole.protocol_errors) == 3)
        reasons = [e.reason for e in hole.protocol_errors]
        assert reasons == ["unknown response type 'shrug'", "not JSON", "binary frame"]
        with pytest.raises(TimeoutError, match="no reject"):
            await hole.wait_for_response(answered, "reject", timeout=0.05)


async def test_drops_a_client_that_does_not_answer_pings() -> None:
    # A websockets client answers pings by itself; stop it reading to make it deaf.
    async with (
        SmartHoleStandIn(ping_interval=0.05, ping_timeout=0.1) as hole,
        connect(hole.url) as ws,
    ):
        await register(ws)
        assert ws.transport is not None
        ws.transport.pause_reading()
        await hole.wait_until(lambda: hole.ping_timeouts)
        assert [t.client for t in hole.ping_timeouts] == ["Bot"]
        await hole.wait_until(lambda: hole.connection_count == 0)
        ws.transport.resume_reading()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)


async def test_restart_keeps_the_port_and_drop_closes_without_a_close_frame(
    hole: SmartHoleStandIn,
) -> None:
    port = hole.port
    async with connect(hole.url) as ws:
        await register(ws)
        await hole.drop_connections()
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is None  # abrupt: no close frame
    await hole.restart(down_for=0.05)
    assert hole.port == port
    async with connect(hole.url) as ws:
        assert (await register(ws))["success"] is True


def test_in_a_thread_for_subprocess_tests() -> None:
    """Blocking use from plain (non-async) test code, as subprocess tests need."""

    async def client(url: str) -> list[str]:
        async with connect(url) as ws:
            await register(ws)
            frame = json.loads(await ws.recv())
            message_id = frame["payload"]["id"]
            response = {"messageId": message_id, "type": "ack", "payload": {}}
            await ws.send(json.dumps({"type": "response", "payload": response}))
            return [message_id]

    with (
        SmartHoleStandIn.in_thread(deadline=5.0) as hole,
        ThreadPoolExecutor(1) as pool,
    ):
        future = pool.submit(asyncio.run, client(hole.url))
        hole.wait_for_client("Bot")
        message_id = hole.route("Bot", "hello", message_id="m-thread")
        assert future.result(timeout=10) == [message_id]
        assert hole.wait_for_response("m-thread").type == "ack"
        assert hole.wait_for_outcome("m-thread").outcome == "answered"
        assert [r.message_id for r in hole.responses] == ["m-thread"]
        hole.restart()
        assert hole.client_names == []
