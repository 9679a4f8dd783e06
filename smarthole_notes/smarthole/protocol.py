"""The SmartHole wire format: parse what SmartHole sends, build what we send.

Everything here is pure (no sockets, no logging) so the rules can be tested on their own and
the connection code stays about connecting. Incoming frames are checked strictly: a frame that
breaks the contract raises `MalformedFrame` (the caller logs and drops it), while a `message`
with a readable id that the service cannot take (no text, fields of the wrong type, ...) comes
back as `UnacceptableMessage` (the caller answers it with a `reject`, so SmartHole can re-route
it at once instead of waiting out its deadline).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from smarthole_notes.jstext import JS_TRIMMED, js_trim, utf16_length

__all__ = [
    "CAPABILITIES",
    "FAILURE_CODES",
    "JS_TRIMMED",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_FRAME_BYTES",
    "MAX_MESSAGE_ID_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_OUTGOING_FRAME_BYTES",
    "IncomingFrame",
    "InputMethod",
    "MalformedFrame",
    "Priority",
    "RegistrationResponse",
    "RoutedMessage",
    "UnacceptableMessage",
    "build_ack",
    "build_notification",
    "build_registration",
    "build_reject",
    "description_problem",
    "js_trim",
    "name_problem",
    "parse_frame",
    "url_problem",
    "utf16_length",
]

InputMethod: TypeAlias = Literal["voice", "text"]
Priority: TypeAlias = Literal["low", "normal", "high"]

MAX_FRAME_BYTES: Final = 2**20
"""Incoming frames above this many UTF-8 bytes are malformed ("at most 1 MB"; read as 1 MiB,
the lenient reading, since SmartHole, not us, decides what it sends)."""

MAX_OUTGOING_FRAME_BYTES: Final = 1_000_000
"""What we send stays under the strict reading of "1 MB", whichever SmartHole uses."""

MAX_NAME_LENGTH: Final = 64
MAX_DESCRIPTION_LENGTH: Final = 1024
MAX_MESSAGE_ID_LENGTH: Final = 256
"""Longer ids are rejected: the inbox refuses them (it keys its files by id)."""

CAPABILITIES: Final[tuple[str, ...]] = ("notes",)
FAILURE_CODES: Final = frozenset(
    {
        "INVALID_NAME",
        "INVALID_DESCRIPTION",
        "DUPLICATE_NAME",
        "ALREADY_REGISTERED",
        "VALIDATION_ERROR",
    }
)
PRIORITIES: Final[frozenset[str]] = frozenset({"low", "normal", "high"})

_NAME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_MAX_REASON_CHARS: Final = 2000
_MAX_TITLE_CHARS: Final = 500
_TRUNCATION_MARK: Final = "…"


# --------------------------------------------------------------------------- incoming


class MalformedFrame(ValueError):
    """A frame that breaks the contract; the message says how, for the log."""


@dataclass(frozen=True)
class RoutedMessage:
    """A validated `message` frame: what the pipeline needs, with types it can rely on.

    `text` is non-blank and `id` is 1..256 characters; neither (nor anything in `metadata`)
    holds a lone surrogate, so all of it can be written to the inbox as UTF-8. `metadata` is
    the frame's metadata object as received, unknown keys included, for the inbox record.
    """

    id: str
    text: str
    timestamp: str | None
    input_method: InputMethod | None
    direct_routed: bool
    confidence: float | None
    routing_reason: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UnacceptableMessage:
    """A well-formed `message` the service cannot take; answer it with a `reject`."""

    message_id: str
    reason: str


@dataclass(frozen=True)
class RegistrationResponse:
    """SmartHole's answer to our registration."""

    success: bool
    client_id: str | None = None
    code: str | None = None
    message: str | None = None


IncomingFrame: TypeAlias = RegistrationResponse | RoutedMessage | UnacceptableMessage


def _reject_constant(name: str) -> Any:
    """JSON has no NaN or Infinity; Python's parser accepts them unless told otherwise."""
    raise MalformedFrame(f"not JSON: {name} is not a JSON value")


def parse_frame(data: str | bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> IncomingFrame:
    """Parse one WebSocket message from SmartHole.

    Raises MalformedFrame for a binary frame, an oversized frame, anything that is not a JSON
    object shaped `{"type": ..., "payload": {...}}`, an unknown type, or a known type whose
    fields are missing or of the wrong type.
    """
    if isinstance(data, bytes):
        raise MalformedFrame(f"binary frame of {len(data)} bytes (SmartHole sends text frames)")
    if len(data) * 4 > max_bytes:  # else it cannot be too big: UTF-8 is at most 4 bytes a char
        size = len(data.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise MalformedFrame(f"frame of {size} bytes is over the {max_bytes}-byte limit")
    try:
        frame = json.loads(data, parse_constant=_reject_constant)
    except MalformedFrame:
        raise
    except RecursionError:
        raise MalformedFrame("not JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        raise MalformedFrame(f"not JSON: {exc}") from None
    if not isinstance(frame, dict):
        raise MalformedFrame(f"a JSON {_json_kind(frame)}, not an object")
    kind = frame.get("type")
    if not isinstance(kind, str):
        raise MalformedFrame("no string 'type'")
    payload = frame.get("payload")
    if not isinstance(payload, dict):
        raise MalformedFrame(f"{kind!r} frame without a 'payload' object")
    if kind == "message":
        return _parse_message(payload)
    if kind == "registration_response":
        return _parse_registration_response(payload)
    raise MalformedFrame(f"unknown frame type {_short(kind)}")


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"


def _a_json_kind(value: object) -> str:
    kind = _json_kind(value)
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _optional(
    payload: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str
) -> Any:
    """payload[key] if present and not null; MalformedFrame if of the wrong type."""
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise MalformedFrame(f"{where}.{key} must be {_type_name(kind)}, not a boolean")
    if not isinstance(value, kind):
        raise MalformedFrame(f"{where}.{key} must be {_type_name(kind)}, not {_a_json_kind(value)}")
    return value


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        dict: "an object",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _valid_unicode(value: object) -> bool:
    """False if a string anywhere in `value` holds a lone surrogate (possible via JSON escapes)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_message(payload: dict[str, Any]) -> RoutedMessage | UnacceptableMessage:
    """A message with a readable id is never dropped: whatever else is wrong with it is a
    reason to reject it at once, so SmartHole can re-route it or tell the user now instead of
    after its 30-second deadline."""
    message_id = payload.get("id")
    if not isinstance(message_id, str) or not message_id:
        raise MalformedFrame("message without a non-empty string 'id'")
    try:
        return _parse_message_content(message_id, payload)
    except MalformedFrame as exc:
        return UnacceptableMessage(message_id, f"unusable message: {exc}")


def _parse_message_content(
    message_id: str, payload: dict[str, Any]
) -> RoutedMessage | UnacceptableMessage:
    text = payload.get("text")
    if text is None:
        raise MalformedFrame("message.payload has no 'text'")
    if not isinstance(text, str):
        raise MalformedFrame(f"message.payload.text must be a string, not {_a_json_kind(text)}")
    where = "message.payload"
    timestamp = _optional(payload, "timestamp", str, where)
    raw_metadata = _optional(payload, "metadata", dict, where)
    metadata: dict[str, Any] = raw_metadata if raw_metadata is not None else {}
    where = "message.payload.metadata"
    method = _optional(metadata, "inputMethod", str, where)
    direct = _optional(metadata, "directRouted", bool, where)
    confidence = _optional(metadata, "confidence", (int, float), where)
    reason = _optional(metadata, "routingReason", str, where)
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        return UnacceptableMessage(
            message_id, f"message id is longer than {MAX_MESSAGE_ID_LENGTH} characters"
        )
    if not _valid_unicode(payload):
        return UnacceptableMessage(
            message_id, "message contains invalid Unicode (a lone surrogate)"
        )
    if not text.strip():
        return UnacceptableMessage(message_id, "message text is empty")
    input_method: InputMethod | None = method if method in ("voice", "text") else None
    return RoutedMessage(
        id=message_id,
        text=text,
        timestamp=timestamp,
        input_method=input_method,
        direct_routed=bool(direct),
        confidence=float(confidence) if confidence is not None else None,
        routing_reason=reason,
        metadata=metadata,
    )


def _parse_registration_response(payload: dict[str, Any]) -> RegistrationResponse:
    success = payload.get("success")
    if not isinstance(success, bool):
        raise MalformedFrame("registration_response without a boolean 'success'")
    where = "registration_response.payload"
    client_id = _optional(payload, "clientId", str, where)
    code = _optional(payload, "code", str, where)
    message = _optional(payload, "message", str, where)
    return RegistrationResponse(success, client_id=client_id, code=code, message=message)


# --------------------------------------------------------------------------- validation


def name_problem(name: str) -> str | None:
    """Why SmartHole would refuse `name` (SmartHole's rules), or None if it is fine."""
    if not isinstance(name, str) or not name:
        return "the client name is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"the client name {_short(name)} is longer than {MAX_NAME_LENGTH} characters"
    if not _NAME_RE.fullmatch(name):
        return (
            f"the client name {_short(name)} must start with a letter and contain only "
            "letters, digits, - and _"
        )
    return None


def description_problem(description: str) -> str | None:
    """Why SmartHole would refuse `description`, or None.

    The same two rules as SmartHole: non-blank after JavaScript's `trim()`, and at most 1024
    UTF-16 code units (its `length`, counted before trimming). A lone surrogate is refused too:
    it cannot be sent as UTF-8 text.
    """
    if not isinstance(description, str) or not js_trim(description):
        return "the routing description is empty (only spaces or invisible characters)"
    if not _valid_unicode(description):
        return "the routing description is not valid Unicode text"
    units = utf16_length(description)
    if units > MAX_DESCRIPTION_LENGTH:
        return (
            f"the routing description is too long ({units} UTF-16 units, as SmartHole counts; "
            f"at most {MAX_DESCRIPTION_LENGTH})"
        )
    return None


def _is_loopback_host(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return False  # a host name: resolving it could say anything, now or later
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def url_problem(url: str, *, allow_remote: bool = False) -> str | None:
    """Why we must not connect to `url`, or None.

    Only loopback addresses are allowed unless `allow_remote`: SmartHole itself only listens
    on loopback, so anything else is a typo or someone else's server. Host names other than
    `localhost` count as remote, since DNS could point them anywhere.
    """
    try:
        parsed = parse_uri(url)
    except InvalidURI as exc:
        return f"the SmartHole address {_short(url)} is not a valid ws:// or wss:// URL ({exc})"
    if not allow_remote and not _is_loopback_host(parsed.host):
        return (
            f"{parsed.host} is not a loopback address (SmartHole runs on this machine, "
            "e.g. ws://127.0.0.1:9473); a remote address must be allowed explicitly"
        )
    return None


# --------------------------------------------------------------------------- outgoing


def _dump(frame: Mapping[str, Any]) -> str:
    """Compact JSON; non-ASCII is escaped so even a lone surrogate makes a valid text frame."""
    return json.dumps(frame, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + _TRUNCATION_MARK


def build_registration(
    name: str,
    description: str,
    version: str | None = None,
    capabilities: Sequence[str] = CAPABILITIES,
) -> str:
    """The `registration` frame (the caller validates name and description first)."""
    payload: dict[str, Any] = {"name": name, "description": description}
    if version:
        payload["version"] = version
    payload["capabilities"] = list(capabilities)
    return _dump({"type": "registration", "payload": payload})


def _response(message_id: str, kind: str, payload: Mapping[str, Any]) -> str:
    if not isinstance(message_id, str) or not message_id:
        raise ValueError("a response needs the id of the message it answers")
    return _dump(
        {"type": "response", "payload": {"messageId": message_id, "type": kind, "payload": payload}}
    )


def build_ack(message_id: str) -> str:
    """`ack`: the message is safely in the inbox."""
    return _response(message_id, "ack", {})


def build_reject(message_id: str, reason: str) -> str:
    """`reject`: SmartHole may re-route the message; `reason` is clipped to a sane length."""
    return _response(message_id, "reject", {"reason": _clip(reason, _MAX_REASON_CHARS)})


def build_notification(
    message_id: str, title: str, body: str, priority: Priority = "normal"
) -> str:
    """`notification`; the body is shortened if needed so the frame stays under 1 MB."""
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be low, normal or high, not {priority!r}")
    title = _clip(title, _MAX_TITLE_CHARS)
    frame = _response(
        message_id, "notification", {"title": title, "body": body, "priority": priority}
    )
    if len(frame) <= MAX_OUTGOING_FRAME_BYTES:  # ASCII-only JSON: characters are bytes
        return frame
    low, high = 0, len(body)  # the longest prefix of the body that fits
    while low < high:
        middle = (low + high + 1) // 2
        candidate = _response(
            message_id,
            "notification",
            {"title": title, "body": body[:middle] + _TRUNCATION_MARK, "priority": priority},
        )
        if len(candidate) <= MAX_OUTGOING_FRAME_BYTES:
            low = middle
        else:
            high = middle - 1
    return _response(
        message_id,
        "notification",
        {"title": title, "body": body[:low] + _TRUNCATION_MARK, "priority": priority},
    )
