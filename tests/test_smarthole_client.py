"""The SmartHole client over real sockets: registration, messages, responses, bad frames."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import pytest

from smarthole_notes.smarthole import ConnectionStatus, RoutedMessage
from smarthole_notes.smarthole.notifications import NotificationLimits, NotificationOutcome
from tests.smarthole_fixtures import DESCRIPTION, NAME, Harness, connected_client, running_client
from tests.standins.smarthole_server import ScriptedRegistration, SmartHoleStandIn

CONNECTED = ConnectionStatus.CONNECTED
DISCONNECTED = ConnectionStatus.DISCONNECTED
FAST_LIMITS = NotificationLimits().scaled(0.05)


@pytest.fixture
async def hole() -> AsyncIterator[SmartHoleStandIn]:
    async with SmartHoleStandIn(deadline=5.0) as hole:
        yield hole


def failure(code: str, message: str = "no") -> dict[str, object]:
    return {"success": False, "code": code, "message": message}


# --------------------------------------------------------------------------- registration


async def test_registers_as_soon_as_the_socket_opens(hole: SmartHoleStandIn) -> None:
    async with connected_client(hole.url) as harness:
        assert hole.client_names == [NAME]
        [registration] = hole.registrations
        assert registration.payload == {
            "name": NAME,
            "description": DESCRIPTION,
            "version": "0.1.0",
            "capabilities": ["notes"],
        }
        assert registration.answer is not None
        assert harness.client.client_id == registration.answer["clientId"]
        assert harness.client.status_detail is None
        assert harness.status_names == ["connecting", "connected"]


@pytest.mark.parametrize(
    ("code", "detail"),
    [
        ("INVALID_NAME", "client_name"),
        ("INVALID_DESCRIPTION", "routing_description"),
        ("VALIDATION_ERROR", "VALIDATION_ERROR"),
    ],
)
async def test_validation_refusals_are_shown_and_not_retried_until_the_settings_change(
    hole: SmartHoleStandIn, code: str, detail: str
) -> None:
    hole.script_registration(failure(code, "SmartHole says no"))
    async with running_client(hole.url) as harness:
        shown = await harness.wait_for_status(DISCONNECTED, detail=detail)
        assert shown is not None
        assert "SmartHole says no" in shown
        await asyncio.sleep(0.4)  # several backoff periods
        assert len(hole.registrations) == 1
        assert hole.connection_count == 0  # and the refused connection was closed
        await harness.client.update_registration("Other-Name", DESCRIPTION)
        await harness.wait_for_status(CONNECTED)
        assert hole.client_names == ["Other-Name"]


async def test_a_refusal_is_retried_with_the_same_settings_when_they_are_saved_again(
    hole: SmartHoleStandIn,
) -> None:
    hole.script_registration(failure("INVALID_NAME"))
    async with running_client(hole.url) as harness:
        await harness.wait_for_status(DISCONNECTED, detail="client_name")
        await harness.client.update_registration(NAME, DESCRIPTION)
        await harness.wait_for_status(CONNECTED)
        assert len(hole.registrations) == 2


async def test_duplicate_name_is_retried_until_the_other_client_goes(
    hole: SmartHoleStandIn,
) -> None:
    async with connected_client(hole.url) as first, running_client(hole.url) as second:
        await second.wait_for_status(DISCONNECTED, detail="already connected")
        await hole.wait_until(lambda: len(hole.registrations) >= 4)  # retrying
        assert [r.answer["code"] for r in hole.registrations[1:] if r.answer] == [
            "DUPLICATE_NAME"
        ] * (len(hole.registrations) - 1)
        await first.client.stop()
        await second.wait_for_status(CONNECTED)
        assert hole.client_names == [NAME]
        message_id = await hole.route(NAME, "hello")
        assert (await second.next_message()).id == message_id


async def test_already_registered_is_answered_with_a_fresh_connection(
    hole: SmartHoleStandIn,
) -> None:
    hole.script_registration(failure("ALREADY_REGISTERED"))
    async with running_client(hole.url) as harness:
        await harness.wait_for_status(CONNECTED)
        assert [r.answer and r.answer["success"] for r in hole.registrations] == [False, True]
        assert hole.connections_opened == 2
        assert ("disconnected", True) in [
            (s.value, "already registered" in (d or "")) for s, d in harness.statuses
        ]


async def test_an_unknown_refusal_code_is_retried(hole: SmartHoleStandIn) -> None:
    hole.script_registration(failure("SERVER_BUSY"))
    async with connected_client(hole.url):
        assert len(hole.registrations) == 2


async def test_no_answer_to_the_registration_times_out_and_retries(
    hole: SmartHoleStandIn,
) -> None:
    hole.script_registration(None)
    async with running_client(hole.url, registration_timeout=0.2) as harness:
        await harness.wait_for_status(CONNECTED)
        assert len(hole.registrations) == 2
        assert any("did not answer" in (d or "") for _, d in harness.statuses)


@pytest.mark.parametrize(
    ("name", "description", "detail"),
    [
        ("9lives", DESCRIPTION, "client_name"),
        ("a" * 65, DESCRIPTION, "client_name"),
        ("with space", DESCRIPTION, "client_name"),
        (NAME, "", "routing_description"),
        (NAME, "   ", "routing_description"),
        (NAME, "x" * 1025, "routing_description"),
        (NAME, "🎵" * 600, "routing_description"),
    ],
)
async def test_an_invalid_name_or_description_is_never_sent(
    hole: SmartHoleStandIn, name: str, description: str, detail: str
) -> None:
    async with running_client(hole.url, name=name, description=description) as harness:
        shown = await harness.wait_for_status(DISCONNECTED, detail=detail)
        assert shown is not None
        assert shown.startswith("Not registering with SmartHole")
        await asyncio.sleep(0.3)
        assert hole.connections_opened == 0
        assert harness.status_names == ["disconnected"]
        await harness.client.update_registration(NAME, DESCRIPTION)
        await harness.wait_for_status(CONNECTED)


async def test_a_non_loopback_address_is_refused_without_trying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    with caplog.at_level(logging.ERROR, logger="smarthole_notes.smarthole"):
        async with running_client("ws://192.0.2.1:9473", sleep=sleep) as harness:
            shown = await harness.wait_for_status(DISCONNECTED, detail="Refusing to connect")
            assert shown is not None
            assert "192.0.2.1" in shown
            await asyncio.sleep(0.1)
            assert slept == []  # no attempt, no retry loop
            assert harness.status_names == ["disconnected"]
    assert "192.0.2.1 is not a loopback address" in caplog.text


# --------------------------------------------------------------------------- messages


async def test_routed_messages_arrive_with_their_fields(hole: SmartHoleStandIn) -> None:
    async with connected_client(hole.url) as harness:
        voice = await hole.route(NAME, "remember to buy milk", timestamp="2026-01-15T10:30:00.000Z")
        typed = await hole.route(NAME, "list my notes", input_method="text", direct_routed=True)
        first, second = await harness.next_message(), await harness.next_message()
        assert first == RoutedMessage(
            id=voice,
            text="remember to buy milk",
            timestamp="2026-01-15T10:30:00.000Z",
            input_method="voice",
            direct_routed=False,
            confidence=0.95,
            routing_reason="The router stand-in matched this client",
            metadata={
                "inputMethod": "voice",
                "directRouted": False,
                "confidence": 0.95,
                "routingReason": "The router stand-in matched this client",
            },
        )
        assert (second.id, second.input_method, second.direct_routed) == (typed, "text", True)
        assert (second.confidence, second.routing_reason) == (None, None)


async def test_a_redelivered_id_reaches_the_handler_again(hole: SmartHoleStandIn) -> None:
    """De-duplication is the inbox's job; the client passes every delivery on."""
    async with connected_client(hole.url) as harness:
        await hole.route(NAME, "milk", message_id="msg-same")
        await hole.route(NAME, "milk", message_id="msg-same")
        assert [(await harness.next_message()).id for _ in range(2)] == ["msg-same"] * 2
        await hole.wait_for_response("msg-same", "ack", count=2)


async def test_responses_are_exactly_as_protocol_md(hole: SmartHoleStandIn) -> None:
    async with connected_client(hole.url, ack=False, notification_limits=FAST_LIMITS) as harness:
        client = harness.client
        message_id = await hole.route(NAME, "remember to buy milk")
        await harness.next_message()
        assert await client.send_ack(message_id)
        first = await client.send_notification(
            message_id, "Note saved", "Added milk to Lists/Shopping.md", "normal"
        )
        assert (first.outcome, first.title) == (NotificationOutcome.SENT, "Note saved")
        second = await client.send_notification(message_id, "Heads up", "Done", "low")
        assert second.outcome is NotificationOutcome.QUEUED  # paced: not within 1 s of the first
        async with asyncio.timeout(5):
            await client.wait_notifications_sent()
        assert await client.send_reject(message_id, "cannot take it")
        await hole.wait_for_response(message_id, "reject")
        frames = [r.frame for r in hole.responses]
        assert frames == [
            {
                "type": "response",
                "payload": {"messageId": message_id, "type": "ack", "payload": {}},
            },
            {
                "type": "response",
                "payload": {
                    "messageId": message_id,
                    "type": "notification",
                    "payload": {
                        "title": "Note saved",
                        "body": "Added milk to Lists/Shopping.md",
                        "priority": "normal",
                    },
                },
            },
            {
                "type": "response",
                "payload": {
                    "messageId": message_id,
                    "type": "notification",
                    "payload": {"title": "Heads up", "body": "Done", "priority": "low"},
                },
            },
            {
                "type": "response",
                "payload": {
                    "messageId": message_id,
                    "type": "reject",
                    "payload": {"reason": "cannot take it"},
                },
            },
        ]
        assert all(r.delivery is not None and r.client == NAME for r in hole.responses)
        assert hole.protocol_errors == []


async def test_sending_while_not_connected_returns_false(
    hole: SmartHoleStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(hole.url)
    assert await harness.client.send_ack("msg-1") is False
    await harness.client.start()
    await harness.wait_for_status(CONNECTED)
    await hole.stop()
    await harness.wait_for_status(DISCONNECTED)
    with caplog.at_level(logging.WARNING, logger="smarthole_notes.smarthole"):
        progress = await harness.client.send_notification("msg-1", "t", "b", kind="progress")
        assert progress.outcome is NotificationOutcome.NOT_CONNECTED
        assert await harness.client.send_reject("msg-1", "r") is False
    assert "not connected to SmartHole" in caplog.text
    await harness.client.stop()
    assert await harness.client.send_ack("msg-1") is False


async def test_frames_before_the_registration_answer_are_held_until_it_comes(
    hole: SmartHoleStandIn,
) -> None:
    early = json.dumps({"type": "message", "payload": {"id": "msg-early", "text": "hi"}})
    hole.script_registration(ScriptedRegistration({"success": True}, before=[early, "junk"]))
    async with connected_client(hole.url) as harness:
        assert (await harness.next_message()).id == "msg-early"
        assert (await hole.wait_for_response("msg-early")).client == NAME


async def test_frames_before_a_refused_registration_are_rejected(hole: SmartHoleStandIn) -> None:
    early = json.dumps({"type": "message", "payload": {"id": "msg-early", "text": "hi"}})
    hole.script_registration(ScriptedRegistration(failure("INVALID_NAME"), before=[early]))
    async with running_client(hole.url) as harness:
        reject = await hole.wait_for_response("msg-early", "reject")
        assert "not registered" in reject.payload["reason"]
        await harness.wait_for_status(DISCONNECTED, detail="client_name")
        assert harness.received == []


MALFORMED_FRAMES: list[str | bytes] = [
    "not json at all",
    '{"type": "message", "payload": {"id": "m1"',
    '[{"type": "message", "payload": {"id": "m2", "text": "t"}}]',
    '"just a string"',
    "42",
    '{"type": "smoke-signal", "payload": {"id": "m3", "text": "t"}}',
    '{"type": "message", "payload": {"text": "no id"}}',
    '{"type": "message", "payload": {"id": 5, "text": "t"}}',
    '{"type": "message", "payload": {"id": "", "text": "t"}}',
    '{"type": "message", "payload": {"id": "m10", "text": "t", "metadata": {"confidence": NaN}}}',
    '{"type": "message"}',
    '{"type": "registration_response", "payload": {"success": true}}',
    "[" * 200_000,
    b'{"type": "message", "payload": {"id": "m11", "text": "binary"}}',
    json.dumps({"type": "message", "payload": {"id": "m12", "text": "x" * 1_500_000}}),
]


async def test_malformed_frames_are_dropped_without_disconnecting(
    hole: SmartHoleStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    async with connected_client(hole.url) as harness:
        connection = hole.connection_of(NAME)
        with caplog.at_level(logging.WARNING, logger="smarthole_notes.smarthole"):
            for frame in MALFORMED_FRAMES:
                await hole.send_raw(NAME, frame)
            message_id = await hole.route(NAME, "still here?")
            assert (await harness.next_message()).id == message_id
        await hole.wait_for_response(message_id)
        assert harness.received[0].id == message_id and len(harness.received) == 1
        assert hole.connection_of(NAME) == connection
        assert len(hole.registrations) == 1
        assert [r.message_id for r in hole.responses] == [message_id]  # no reject for those
        assert harness.status_names == ["connecting", "connected"]
        assert caplog.text.count("Dropped a malformed frame") == len(MALFORMED_FRAMES) - 1
        assert "Ignored a registration_response" in caplog.text
        assert "1500" in caplog.text  # the oversized frame's size is logged


async def test_a_frame_beyond_the_library_limit_costs_a_reconnect_only(
    hole: SmartHoleStandIn,
) -> None:
    async with connected_client(hole.url) as harness:
        connection = hole.connection_of(NAME)
        await hole.send_raw(NAME, "x" * (9 * 2**20))
        await hole.wait_until(lambda: (hole.connection_of(NAME) or connection) != connection)
        reconnected = hole.connection_of(NAME)
        assert any("over 8 MiB" in (d or "") for _, d in harness.statuses)
        await harness.wait_for_status(CONNECTED)
        message_id = await hole.route(NAME, "after the flood")
        assert (await harness.next_message()).id == message_id
        assert hole.connection_of(NAME) == reconnected


@pytest.mark.parametrize(
    ("text", "message_id", "reason"),
    [
        ("", None, "empty"),
        ("   ", None, "empty"),
        ("x", "m" * 300, "longer than 256"),
        ("milk \ud83d", None, "Unicode"),
    ],
)
async def test_well_formed_messages_it_cannot_take_are_rejected(
    hole: SmartHoleStandIn, text: str, message_id: str | None, reason: str
) -> None:
    async with connected_client(hole.url) as harness:
        routed = await hole.route(NAME, text, message_id=message_id)
        reject = await hole.wait_for_response(routed, "reject")
        assert reason in reject.payload["reason"]
        later = await hole.route(NAME, "fine")
        assert (await harness.next_message()).id == later
        assert [m.id for m in harness.received] == [later]


UNUSABLE_CONTENT: dict[str, tuple[dict[str, object], str]] = {
    "no text": ({}, "no 'text'"),
    "text null": ({"text": None}, "no 'text'"),
    "text a list": ({"text": ["milk"]}, "text must be a string, not an array"),
    "text a number": ({"text": 42}, "text must be a string"),
    "text an object": ({"text": {"value": "milk"}}, "text must be a string"),
    "timestamp a number": ({"text": "t", "timestamp": 17}, "timestamp must be a string"),
    "metadata a string": ({"text": "t", "metadata": "voice"}, "metadata must be an object"),
    "metadata a list": ({"text": "t", "metadata": []}, "metadata must be an object"),
    "confidence a string": ({"text": "t", "metadata": {"confidence": "high"}}, "confidence"),
    "directRouted a number": ({"text": "t", "metadata": {"directRouted": 1}}, "directRouted"),
    "inputMethod a number": ({"text": "t", "metadata": {"inputMethod": 1}}, "inputMethod"),
    "routingReason an object": ({"text": "t", "metadata": {"routingReason": {}}}, "routingReason"),
}


@pytest.mark.parametrize(("fields", "reason"), UNUSABLE_CONTENT.values(), ids=UNUSABLE_CONTENT)
async def test_a_readable_id_with_unusable_content_is_rejected_at_once(
    hole: SmartHoleStandIn, fields: dict[str, object], reason: str
) -> None:
    """SmartHole would otherwise wait its full deadline and tell the user "Unable to route"."""
    async with connected_client(hole.url) as harness:
        message_id = await hole.route_payload(NAME, {"id": "msg-odd", **fields})
        delivery = await hole.wait_for_outcome(message_id, timeout=2)
        assert delivery.outcome == "answered"
        assert delivery.answered_at is not None
        assert delivery.answered_at - delivery.sent_at < 1.0
        [reject] = delivery.responses
        assert reject.type == "reject"
        assert reason in reject.payload["reason"]
        assert "unusable message" in reject.payload["reason"]
        later = await hole.route(NAME, "fine")
        assert (await harness.next_message()).id == later
        assert [m.id for m in harness.received] == [later]
        assert hole.connection_of(NAME) is not None and len(hole.registrations) == 1


async def test_a_failing_handler_is_logged_and_the_message_rejected(
    hole: SmartHoleStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(message: RoutedMessage) -> None:
        if message.text == "boom":
            raise OSError("disk full")

    async with connected_client(hole.url, handler=explode) as harness:
        with caplog.at_level(logging.ERROR, logger="smarthole_notes.smarthole"):
            boom = await hole.route(NAME, "boom")
            reject = await hole.wait_for_response(boom, "reject")
        assert "could not take" in reject.payload["reason"]
        assert "disk full" in caplog.text
        fine = await hole.route(NAME, "fine")
        await hole.wait_for_response(fine, "ack")
        assert harness.client.status is CONNECTED
        assert len(hole.registrations) == 1


async def test_a_handler_failing_after_its_ack_gets_no_reject(hole: SmartHoleStandIn) -> None:
    harness: Harness

    async def ack_then_fail(message: RoutedMessage) -> None:
        await harness.client.send_ack(message.id)
        raise RuntimeError("after the ack")

    async with connected_client(hole.url, ack=False, handler=ack_then_fail) as harness:
        message_id = await hole.route(NAME, "hello")
        await hole.wait_for_response(message_id, "ack")
        later = await hole.route(NAME, "next")
        await hole.wait_for_response(later, "ack")
        assert [r.type for r in hole.responses] == ["ack", "ack"]


async def test_stop_lets_a_running_handler_finish_and_ack(hole: SmartHoleStandIn) -> None:
    started = asyncio.Event()

    async def slow(message: RoutedMessage) -> None:
        started.set()
        await asyncio.sleep(0.2)

    async with running_client(hole.url, handler=slow) as harness:
        await harness.wait_for_status(CONNECTED)
        message_id = await hole.route(NAME, "store me")
        await started.wait()
        await harness.client.stop()
        assert hole.responses_for(message_id, "ack")
        assert harness.client.status is DISCONNECTED
        assert harness.client.status_detail == "stopped"


# --------------------------------------------------------------------------- deadline


async def test_the_deadline_is_recorded_by_the_stand_in() -> None:
    async with (
        SmartHoleStandIn(deadline=0.3) as hole,
        connected_client(hole.url, ack=False) as harness,
    ):
        quick = await hole.route(NAME, "acked in time")
        await harness.next_message()
        await harness.client.send_ack(quick)
        slow = await hole.route(NAME, "never answered in time")
        await harness.next_message()
        answered = await hole.wait_for_outcome(quick)
        assert answered.outcome == "answered" and not answered.rejected_by_timeout
        assert answered.answered_at is not None
        assert answered.answered_at - answered.sent_at < 0.3
        timed_out = await hole.wait_for_outcome(slow, timeout=2)
        assert timed_out.rejected_by_timeout
        await harness.client.send_ack(slow)
        late = await hole.wait_for_response(slow)
        assert late.late and late.delivery is timed_out
        assert timed_out.outcome == "timed_out"
