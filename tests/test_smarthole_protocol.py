"""The SmartHole wire format without sockets: parsing, validation, building, backoff."""

from __future__ import annotations

import json

import pytest

from smarthole_notes.settings import (
    DEFAULT_ROUTING_DESCRIPTION,
    Settings,
    SettingValueError,
    validate_setting,
)
from smarthole_notes.smarthole import Backoff
from smarthole_notes.smarthole.protocol import (
    JS_TRIMMED,
    MAX_FRAME_BYTES,
    MAX_OUTGOING_FRAME_BYTES,
    MalformedFrame,
    RegistrationResponse,
    RoutedMessage,
    UnacceptableMessage,
    build_ack,
    build_notification,
    build_registration,
    build_reject,
    description_problem,
    js_trim,
    name_problem,
    parse_frame,
    url_problem,
    utf16_length,
)


def message_frame(**payload: object) -> str:
    base: dict[str, object] = {"id": "msg-1", "text": "remember to buy milk"}
    base.update(payload)
    return json.dumps({"type": "message", "payload": base})


# --------------------------------------------------------------------------- parsing


def test_parses_the_example_message_of_protocol_md() -> None:
    frame = (
        '{"type": "message", "payload": {"id": "msg-1", "text": "remember to buy milk", '
        '"timestamp": "2026-01-15T10:30:00.000Z", "metadata": {"inputMethod": "voice", '
        '"directRouted": false, "confidence": 0.95, "routingReason": "notes"}}}'
    )
    assert parse_frame(frame) == RoutedMessage(
        id="msg-1",
        text="remember to buy milk",
        timestamp="2026-01-15T10:30:00.000Z",
        input_method="voice",
        direct_routed=False,
        confidence=0.95,
        routing_reason="notes",
        metadata={
            "inputMethod": "voice",
            "directRouted": False,
            "confidence": 0.95,
            "routingReason": "notes",
        },
    )


def test_optional_fields_may_be_absent_or_null() -> None:
    parsed = parse_frame(message_frame(timestamp=None))
    assert isinstance(parsed, RoutedMessage)
    assert parsed.timestamp is None
    assert parsed.input_method is None
    assert parsed.direct_routed is False
    assert parsed.confidence is None
    assert parsed.routing_reason is None
    assert parsed.metadata == {}
    direct = parse_frame(message_frame(metadata={"inputMethod": "text", "directRouted": True}))
    assert isinstance(direct, RoutedMessage)
    assert (direct.input_method, direct.direct_routed) == ("text", True)


def test_unknown_metadata_is_kept_and_an_unknown_input_method_is_not_guessed() -> None:
    parsed = parse_frame(message_frame(metadata={"inputMethod": "gesture", "extra": [1]}))
    assert isinstance(parsed, RoutedMessage)
    assert parsed.input_method is None
    assert parsed.metadata == {"inputMethod": "gesture", "extra": [1]}
    whole = parse_frame(message_frame(metadata={"confidence": 1}))
    assert isinstance(whole, RoutedMessage)
    assert whole.confidence == 1.0


MALFORMED = {
    "not JSON": "remember milk",
    "truncated JSON": '{"type": "message", "payload": {"id": "m"',
    "JSON array": '[{"type": "message"}]',
    "JSON string": '"message"',
    "JSON null": "null",
    "NaN": '{"type": "message", "payload": {"id": "m", "text": "t", "metadata": {"confidence": NaN}}}',
    "nested too deeply": "[" * 100_000 + "]" * 100_000,
    "huge integer": '{"type": "message", "payload": {"id": 1' + "0" * 5000 + "}}",
    "no type": '{"payload": {"id": "m", "text": "t"}}',
    "type not a string": '{"type": 3, "payload": {}}',
    "unknown type": '{"type": "broadcast", "payload": {"id": "m", "text": "t"}}',
    "no payload": '{"type": "message"}',
    "payload not an object": '{"type": "message", "payload": ["m", "t"]}',
    "missing id": message_frame(id=None),
    "empty id": message_frame(id=""),
    "id not a string": message_frame(id=42),
    "id an object": message_frame(id={"v": "m"}),
    "registration_response without success": '{"type": "registration_response", "payload": {}}',
    "success not a boolean": '{"type": "registration_response", "payload": {"success": "yes"}}',
    "code not a string": '{"type": "registration_response", "payload": {"success": false, "code": 1}}',
}


@pytest.mark.parametrize("frame", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frames_raise(frame: str) -> None:
    with pytest.raises(MalformedFrame):
        parse_frame(frame)


def test_binary_and_oversized_frames_are_malformed() -> None:
    with pytest.raises(MalformedFrame, match="binary"):
        parse_frame(message_frame().encode())
    padded = message_frame(text="x" * (MAX_FRAME_BYTES + 1))
    with pytest.raises(MalformedFrame, match="over"):
        parse_frame(padded)
    # the limit is in UTF-8 bytes, not characters
    multibyte = json.dumps(
        {"type": "message", "payload": {"id": "m", "text": "é" * (MAX_FRAME_BYTES // 2)}},
        ensure_ascii=False,
    )
    assert len(multibyte) < MAX_FRAME_BYTES < len(multibyte.encode())
    with pytest.raises(MalformedFrame, match="over"):
        parse_frame(multibyte)
    just_fits = message_frame(text="x" * (MAX_FRAME_BYTES - 100))
    assert isinstance(parse_frame(just_fits), RoutedMessage)


UNUSABLE_CONTENT = {
    "missing text": ({"text": None}, "has no 'text'"),
    "text not a string": ({"text": ["milk"]}, "text must be a string, not an array"),
    "text an object": ({"text": {"t": 1}}, "text must be a string, not an object"),
    "text a boolean": ({"text": True}, "text must be a string, not a boolean"),
    "timestamp not a string": ({"timestamp": 1736937000}, "timestamp must be a string"),
    "metadata not an object": ({"metadata": "voice"}, "metadata must be an object"),
    "inputMethod not a string": ({"metadata": {"inputMethod": 1}}, "inputMethod"),
    "directRouted not a boolean": ({"metadata": {"directRouted": "false"}}, "directRouted"),
    "confidence not a number": ({"metadata": {"confidence": "high"}}, "confidence"),
    "confidence a boolean": ({"metadata": {"confidence": True}}, "not a boolean"),
    "routingReason not a string": ({"metadata": {"routingReason": {}}}, "not an object"),
}


@pytest.mark.parametrize(("payload", "reason"), UNUSABLE_CONTENT.values(), ids=UNUSABLE_CONTENT)
def test_a_readable_id_with_unusable_content_is_to_be_rejected(
    payload: dict[str, object], reason: str
) -> None:
    """Not dropped: SmartHole would wait 30 s, then tell the user "Unable to route message"."""
    frame = message_frame(**payload)
    if payload.get("text", "") is None:
        frame = json.dumps({"type": "message", "payload": {"id": "msg-1"}})
    parsed = parse_frame(frame)
    assert isinstance(parsed, UnacceptableMessage)
    assert parsed.message_id == "msg-1"
    assert parsed.reason.startswith("unusable message: ")
    assert reason in parsed.reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"text": ""}, "empty"),
        ({"text": " \n\t "}, "empty"),
        ({"id": "m" * 257}, "longer than 256"),
        ({"text": "milk \ud800"}, "Unicode"),
        ({"metadata": {"routingReason": "\udfff"}}, "Unicode"),
    ],
)
def test_well_formed_messages_we_cannot_take_are_to_be_rejected(
    payload: dict[str, object], reason: str
) -> None:
    parsed = parse_frame(message_frame(**payload))
    assert isinstance(parsed, UnacceptableMessage)
    assert parsed.message_id == payload.get("id", "msg-1")
    assert reason in parsed.reason


def test_registration_responses() -> None:
    ok = '{"type": "registration_response", "payload": {"success": true, "clientId": "c-1", "message": "hi"}}'
    assert parse_frame(ok) == RegistrationResponse(True, client_id="c-1", message="hi")
    refused = json.dumps(
        {
            "type": "registration_response",
            "payload": {"success": False, "code": "DUPLICATE_NAME", "message": "taken"},
        }
    )
    assert parse_frame(refused) == RegistrationResponse(
        False, code="DUPLICATE_NAME", message="taken"
    )


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "name", ["Miss-Simone", "a", "notes_2", "A" * 64, "x-_-9", Settings().client_name]
)
def test_valid_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "",
        "9lives",
        "-dash",
        "_under",
        "with space",
        "Émile",
        "a" * 65,
        "semi;colon",
        "new\nline",
        "a\n",
    ],
)
def test_invalid_names(name: str) -> None:
    problem = name_problem(name)
    assert problem is not None
    assert "client name" in problem


@pytest.mark.parametrize(
    "name", ["Miss-Simone", "9lives", "a" * 64, "a" * 65, "Émile", "a\n", "x_y-z", ""]
)
def test_name_rules_agree_with_the_settings(name: str) -> None:
    try:
        validate_setting("client_name", name)
        settings_ok = True
    except SettingValueError:
        settings_ok = False
    assert (name_problem(name) is None) == settings_ok


@pytest.mark.parametrize(
    "blank",
    [
        "\ufeff",
        "\u00a0",
        " \u00a0\ufeff\t\n",
        "\u2028\u2029",
        "\u3000\u205f\u202f\u1680",
        "\u2000\u200a",
        "\v\f\r",
    ],
)
def test_a_description_blank_to_javascript_trim_is_refused(blank: str) -> None:
    assert "empty" in (description_problem(blank) or "")
    assert js_trim(f"{blank}notes{blank}") == "notes"


@pytest.mark.parametrize("kept", ["\u0085", "\u001c", "\u001f", "\u180e", "\u200b"])
def test_characters_javascript_trim_keeps_make_a_description_non_blank(kept: str) -> None:
    """Python's strip() removes U+0085 and U+001C..U+001F; SmartHole's trim() does not."""
    assert description_problem(kept) is None
    assert js_trim(kept) == kept


def test_the_trimmed_set_is_exactly_javascripts() -> None:
    """The list Node 20 gives for every code point c with String.fromCodePoint(c).trim() == ""."""
    node = "9 a b c d 20 a0 1680 2000 2001 2002 2003 2004 2005 2006 2007 2008 2009 200a 2028 2029 202f 205f 3000 feff"
    assert sorted(ord(c) for c in JS_TRIMMED) == [int(h, 16) for h in node.split()]
    assert [c for c in map(chr, range(0x110000)) if c in JS_TRIMMED and js_trim(c)] == []


def test_description_length_is_counted_in_utf16_units() -> None:
    assert description_problem("x" * 1024) is None
    assert "1025 UTF-16 units" in (description_problem("x" * 1025) or "")
    assert description_problem("🎵" * 512) is None  # 1024 units
    assert "1026" in (description_problem("🎵" * 513) or "")
    assert description_problem("x" * 1022 + "🎵") is None  # 1024 units, 1023 characters
    assert "1025" in (description_problem("x" * 1023 + "🎵") or "")  # 1024 characters
    assert utf16_length("a🎵é") == 4
    # the length counts the untrimmed text, as SmartHole's does
    assert "1025" in (description_problem("x" * 1024 + "\ufeff") or "")


def test_descriptions() -> None:
    assert description_problem(DEFAULT_ROUTING_DESCRIPTION) is None
    assert description_problem("x") is None
    assert description_problem("x" * 1024) is None
    assert "too long" in (description_problem("x" * 1025) or "")
    assert "empty" in (description_problem("") or "")
    assert "empty" in (description_problem("   \n") or "")
    # counted in UTF-16 code units, as a JavaScript SmartHole counts: 600 emoji are 1200
    assert "too long (1200" in (description_problem("🎵" * 600) or "")
    assert description_problem("é" * 1024) is None
    assert "Unicode" in (description_problem("notes \ud800") or "")


@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:9473",
        "ws://127.8.9.10:1",
        "ws://localhost:9473",
        "ws://LOCALHOST.:9473/path",
        "ws://[::1]:9473",
        "ws://[::ffff:127.0.0.1]:9473",
        "wss://127.0.0.1",
    ],
)
def test_loopback_urls_are_allowed(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "ws://192.168.1.10:9473",
        "ws://0.0.0.0:9473",
        "ws://10.0.0.1",
        "ws://[::]:9473",
        "ws://[2001:db8::1]:9473",
        "ws://example.com:9473",
        "ws://localhost.evil.example:9473",
        "ws://127.0.0.1.nip.io:9473",
    ],
)
def test_remote_urls_are_refused_unless_allowed(url: str) -> None:
    assert "not a loopback address" in (url_problem(url) or "")
    assert url_problem(url, allow_remote=True) is None


@pytest.mark.parametrize("url", ["http://127.0.0.1:9473", "127.0.0.1:9473", "ws://", ""])
def test_invalid_urls(url: str) -> None:
    assert "not a valid" in (url_problem(url, allow_remote=True) or "")


# --------------------------------------------------------------------------- building


def test_registration_frame() -> None:
    assert json.loads(build_registration("Miss-Simone", "Notes", "0.1.0")) == {
        "type": "registration",
        "payload": {
            "name": "Miss-Simone",
            "description": "Notes",
            "version": "0.1.0",
            "capabilities": ["notes"],
        },
    }


def test_response_frames_are_exactly_as_protocol_md() -> None:
    assert json.loads(build_ack("msg-1")) == {
        "type": "response",
        "payload": {"messageId": "msg-1", "type": "ack", "payload": {}},
    }
    assert json.loads(build_reject("msg-1", "empty")) == {
        "type": "response",
        "payload": {"messageId": "msg-1", "type": "reject", "payload": {"reason": "empty"}},
    }
    assert json.loads(build_notification("msg-1", "Note saved", "Added milk", "high")) == {
        "type": "response",
        "payload": {
            "messageId": "msg-1",
            "type": "notification",
            "payload": {"title": "Note saved", "body": "Added milk", "priority": "high"},
        },
    }


def test_outgoing_frames_survive_odd_text_and_stay_under_1_mb() -> None:
    odd = build_notification("msg-\ud800", "tïtle", "body \ud800 ✓")
    assert odd.isascii()
    assert json.loads(odd)["payload"]["messageId"] == "msg-\ud800"
    huge = build_notification("msg-1", "Big", "é" * 2_000_000)
    assert len(huge.encode()) <= MAX_OUTGOING_FRAME_BYTES
    body = json.loads(huge)["payload"]["payload"]["body"]
    assert body.endswith("…")
    assert len(body) > 100_000
    assert len(json.loads(build_reject("m", "r" * 10_000))["payload"]["payload"]["reason"]) <= 2000


def test_builders_refuse_programming_errors() -> None:
    with pytest.raises(ValueError, match="priority"):
        build_notification("msg-1", "t", "b", "urgent")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="id"):
        build_ack("")


# --------------------------------------------------------------------------- backoff


def test_backoff_schedule_then_30_forever_and_reset() -> None:
    backoff = Backoff()
    assert [backoff.next() for _ in range(9)] == [1, 2, 4, 8, 16, 30, 30, 30, 30]
    backoff.reset()
    assert [backoff.next() for _ in range(3)] == [1, 2, 4]


def test_backoff_rejects_a_bad_schedule() -> None:
    for bad in ((), (1, -1), (float("nan"),)):
        with pytest.raises(ValueError):
            Backoff(bad)
