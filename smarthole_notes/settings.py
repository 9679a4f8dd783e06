"""Settings: `<vault>/.smarthole/settings.toml`, read forgivingly and written carefully.

The file is the user's: they edit it by hand and the chat page edits it too. Reading never
fails (a bad value falls back to its default and is reported, so the service always starts);
writing validates first and then round-trips the file with tomlkit so the user's comments,
ordering and unknown keys survive. Nothing here logs: problems are returned for the caller to
log and show.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import threading
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeAlias
from urllib.parse import urlsplit

import tomlkit
import tomlkit.exceptions
from pydantic import (
    ConfigDict,
    Field,
    JsonValue,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from tomlkit.items import AoT, Table

from smarthole_notes.durable import write_file_atomically
from smarthole_notes.jstext import js_trim, utf16_length

DEFAULT_ROUTING_DESCRIPTION: Final = (
    "Personal notes assistant for an Obsidian vault. Send me anything to remember, write down, "
    "look up or reorganise: ideas, to-do and shopping lists, journal entries, meeting notes, "
    "project notes, and questions about what is already in the notes."
)

DEFAULT_INFORMATION_ARCHITECTURE: Final = (
    "A personal knowledge notebook, organised loosely by kind of content:\n"
    "- Journal/ holds daily notes and journal entries, one note per day named YYYY-MM-DD.\n"
    "- Lists/ holds running lists (shopping, to-do, reading, ideas), one note per list.\n"
    "- Projects/ holds one note or one folder per project.\n"
    "- Notes/ (or the vault root) holds general reference and wiki-style notes.\n"
    "\n"
    "When something fits none of these, put it where a person would look for it first and give "
    "the note a plain, descriptive name. Link related notes with [[wiki links]]. Prefer adding to "
    "an existing note over creating a near-duplicate."
)

DEFAULT_RETROSPECTION_PROMPT: Final = (
    "Look back over this conversation and note what would make the next similar one go better:\n"
    "1. Instructions: what guidance was missing from or unclear in the system prompt?\n"
    "2. The vault: what did you not know about its structure, naming or contents that would have "
    "helped?\n"
    "3. Tools: what did you want to do but could not, or could only do awkwardly?\n"
    "4. Workflow: how could this kind of request be handled in fewer steps?\n"
    "Be specific and practical; skip anything that went well."
)

SETTINGS_FILE_NAME: Final = "settings.toml"

DEFAULT_RETRY_MINUTES: Final[tuple[float, ...]] = (1, 5, 15, 60, 240)
RETRY_MINUTES_LOW: Final = 0.05
"""Three seconds: small enough for a quick test of the schedule, never a busy loop."""
RETRY_MINUTES_HIGH: Final = 10080
"""One week."""
MAX_RETRIES: Final = 10


_CLIENT_NAME_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
_NO_SPACES_PATTERN: Final = r"^\S+$"
_WS_URL_PATTERN: Final = r"^wss?://"
_NOT_BLANK_PATTERN: Final = r"\S"

RetryMinutes: TypeAlias = Annotated[
    int | float,
    WithJsonSchema({"type": "number", "minimum": RETRY_MINUTES_LOW, "maximum": RETRY_MINUTES_HIGH}),
]
"""One wait of the retry schedule; whole numbers stay whole (as the user wrote them)."""


def _setting(
    default: Any, title: str, help: str, group: str, *, widget: str | None = None, **bounds: Any
) -> Any:
    """A setting's one declaration: default, form label, help text, form group and bounds.

    `group` and `widget` ride along in the JSON schema (`x-group`, `x-widget`) for the chat
    page's form; the bounds are both pydantic constraints and what `validate_setting` checks.
    """
    extra: dict[str, JsonValue] = {"x-group": group}
    if widget is not None:
        extra["x-widget"] = widget
    return Field(default, title=title, description=help, json_schema_extra=extra, **bounds)


@pydantic_dataclass(frozen=True, slots=True, config=ConfigDict(title="Settings"))
class Settings:
    """Every setting: default, bounds, title and help, declared once.

    Validation, the TOML reading, the API's schema (OpenAPI), the chat page's form and the
    README's table all come from these declarations. Constructing one validates it.
    """

    model: str = _setting(
        "claude-haiku-4-5", "Model ID", "The model for the agent; the header's selector sets it too.",
        "Agent", widget="model", min_length=1, max_length=200, pattern=_NO_SPACES_PATTERN,
    )  # fmt: skip
    enable_smarthole_connection: bool = _setting(
        True, "Connect to SmartHole", "Connect to SmartHole, the voice and text message router.",
        "SmartHole",
    )  # fmt: skip
    smarthole_url: str = _setting(
        "ws://127.0.0.1:9473", "SmartHole address", "For example ws://127.0.0.1:9473",
        "SmartHole", max_length=2048, pattern=_WS_URL_PATTERN,
    )  # fmt: skip
    client_name: str = _setting(
        "Miss-Simone", "Client name", "The name this service registers with SmartHole.",
        "SmartHole", max_length=64, pattern=_CLIENT_NAME_PATTERN,
    )  # fmt: skip
    routing_description: str = _setting(
        DEFAULT_ROUTING_DESCRIPTION, "Routing description",
        "What SmartHole's router is told this client handles.",
        "SmartHole", widget="routing", min_length=1, max_length=1024, pattern=_NOT_BLANK_PATTERN,
    )  # fmt: skip
    information_architecture: str = _setting(
        DEFAULT_INFORMATION_ARCHITECTURE, "Information architecture",
        "How you want the vault organised: guidance for the agent, not rigid rules.",
        "Agent", widget="textarea", max_length=20_000,
    )  # fmt: skip
    conversation_idle_timeout_minutes: int = _setting(
        30, "Idle timeout (minutes)", "Silence that ends a conversation.",
        "Conversations", ge=1, le=10080,
    )  # fmt: skip
    max_conversations_retained: int = _setting(
        1000, "Conversations kept", "The oldest ended conversations beyond this are dropped.",
        "Conversations", ge=1, le=1_000_000,
    )  # fmt: skip
    conversation_state_timeout_minutes: int = _setting(
        60, "Pending question timeout (minutes)",
        "Age at which a question the agent asked and that was not answered is dropped.",
        "Conversations", ge=1, le=10080,
    )  # fmt: skip
    enable_conversation_retrospection: bool = _setting(
        False, "Reflect on each ended conversation (retrospection)",
        "Claude notes what would have made an ended conversation go better.",
        "Conversations",
    )  # fmt: skip
    retrospection_prompt: str = _setting(
        DEFAULT_RETROSPECTION_PROMPT, "Retrospection prompt", "Instructions for that reflection.",
        "Conversations", widget="textarea", max_length=20_000,
    )  # fmt: skip
    enable_git_version_control: bool = _setting(
        False, "Version the vault with git", "Each processed message's changes become a commit "
        "that can be undone.", "Git",
    )  # fmt: skip
    auto_commit_after_processing: bool = _setting(
        True, "Commit after each processed message",
        "Commit each processed message's changes (when git is on).", "Git",
    )  # fmt: skip
    verbose_logging: bool = _setting(
        False, "Verbose logging", "Debug-level logs of LLM calls, retries and the tool loop.",
        "Agent",
    )  # fmt: skip
    stream_idle_timeout_seconds: float = _setting(
        90.0, "Stream idle timeout (seconds)",
        "A stream silent this long is abandoned and retried.", "Agent", ge=5, le=3600,
    )  # fmt: skip
    retry_failed_messages_minutes: tuple[RetryMinutes, ...] = _setting(
        DEFAULT_RETRY_MINUTES, "Automatic retries (minutes)",
        "When a message that failed for a transient reason (Anthropic overloaded, rate "
        "limited, a server or network error) is tried again, in minutes after its previous "
        "failure, e.g. 1, 5, 15, 60, 240; ascending. After the last it waits for you.",
        "Agent", widget="list", min_length=1, max_length=MAX_RETRIES,
    )  # fmt: skip

    @field_validator("*", mode="before")
    @classmethod
    def _user_check(cls, value: object, info: ValidationInfo) -> object:
        """The user-worded check of one value (the pydantic constraints then hold)."""
        assert info.field_name is not None
        try:
            return _check(info.field_name, value)
        except _Invalid as exc:
            raise invalid_setting_error(info.field_name, value, str(exc)) from None

    def as_dict(self) -> dict[str, Any]:
        """All settings as a plain, JSON-ready dict, in declaration order (the README table's)."""
        return {
            f.name: list(value) if isinstance(value := getattr(self, f.name), tuple) else value
            for f in fields(self)
        }


SETTING_KEYS: Final[tuple[str, ...]] = tuple(f.name for f in fields(Settings))
SETTINGS_ADAPTER: Final = TypeAdapter(Settings)
_DEFAULTS: Final[Settings] = Settings()


def setting_fields() -> dict[str, FieldInfo]:
    """Each setting's declaration (type, default, bounds, title, help), in declaration order."""
    declared: dict[str, FieldInfo] = getattr(Settings, "__pydantic_fields__")  # noqa: B009
    return {key: declared[key] for key in SETTING_KEYS}


def settings_schema() -> dict[str, Any]:
    """The JSON schema of the settings (what the API documents and the page's form reads)."""
    return SETTINGS_ADAPTER.json_schema()


ProblemKind: TypeAlias = Literal["unreadable", "invalid_toml", "invalid_value", "unknown_key"]


@dataclass(frozen=True, slots=True)
class SettingProblem:
    """Something wrong in settings.toml, worded for the user; the caller logs and shows it.

    `key` is None when the problem is the whole file (unreadable, not valid TOML).
    """

    key: str | None
    message: str
    kind: ProblemKind


@dataclass(slots=True)
class LoadedSettings:
    """The settings in effect, what was wrong with the file, and the keys we do not know."""

    settings: Settings
    problems: list[SettingProblem] = field(default_factory=list)
    unknown: dict[str, object] = field(default_factory=dict)


class SettingValueError(ValueError):
    """A value a user just supplied (a flag, the chat page) is invalid, or the key is unknown."""

    def __init__(self, key: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.reason = reason


class SettingsFileError(Exception):
    """settings.toml cannot be updated without losing the user's content (e.g. it is broken)."""


INVALID_SETTING: Final = "invalid_setting"
"""The pydantic error type of a setting's user-worded check (the API answers it with 422)."""


def invalid_setting_error(key: str, value: object, reason: str) -> PydanticCustomError:
    """A pydantic error carrying the user-worded reason and the whole message."""
    return PydanticCustomError(
        INVALID_SETTING,
        "{message}",
        {"reason": reason, "message": _invalid_message(key, value, reason)},
    )


# --------------------------------------------------------------------------- validation


class _Invalid(Exception):
    """Internal: a value failed its check; the argument is the reason, worded for the user."""


def setting_limits(key: str) -> dict[str, Any]:
    """The bounds declared on a setting, by constraint name (ge, le, min_length, ...)."""
    found: dict[str, Any] = {}
    for item in setting_fields()[key].metadata:
        for name in ("ge", "le", "min_length", "max_length", "pattern"):
            if (value := getattr(item, name, None)) is not None:
                found[name] = value
    return found


def _unquote_hint(value: object) -> str:
    """Suffix for the common mistake of quoting a boolean or a number in TOML."""
    return ", without quotes" if isinstance(value, str) else ""


def _check_bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    hint = ""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        hint = ", without quotes"
    raise _Invalid(f"must be true or false{hint}")


def _check_int(key: str, value: object) -> int:
    limits = setting_limits(key)
    low, high = limits["ge"], limits["le"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"must be a whole number from {low} to {high}{_unquote_hint(value)}")
    if value < low:
        raise _Invalid(f"must be a whole number of at least {low}")
    if value > high:
        raise _Invalid(f"must be a whole number of at most {high}")
    return value


def _check_number(key: str, value: object) -> float:
    limits = setting_limits(key)
    low, high = limits["ge"], limits["le"]
    unit = key.rsplit("_", 1)[-1]  # stream_idle_timeout_seconds: "seconds"
    wrong = f"must be a number of {unit} from {low:g} to {high:g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(wrong + _unquote_hint(value))
    if not low <= value <= high:  # also false for NaN; compared before float() can overflow
        raise _Invalid(wrong)
    return float(value)


def _check_retry_minutes(key: str, value: object) -> tuple[float, ...]:
    """A short ascending list of waits in minutes; whole numbers stay whole (as written)."""
    limits = setting_limits(key)
    low, high = limits["min_length"], limits["max_length"]
    wrong = (
        f"must be a list of {low} to {high} numbers of minutes from {RETRY_MINUTES_LOW:g} "
        f"to {RETRY_MINUTES_HIGH}, such as [1, 5, 15, 60, 240]"
    )
    if not isinstance(value, list | tuple) or not low <= len(value) <= high:
        raise _Invalid(wrong)
    minutes: list[float] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise _Invalid(wrong + _unquote_hint(item))
        if not RETRY_MINUTES_LOW <= item <= RETRY_MINUTES_HIGH:  # also false for NaN
            raise _Invalid(wrong)
        if minutes and item < minutes[-1]:
            raise _Invalid("must be in ascending order, such as [1, 5, 15, 60, 240]")
        minutes.append(int(item) if isinstance(item, float) and item.is_integer() else item)
    return tuple(minutes)


def _check_model(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid('must be a model name in quotes, such as "claude-haiku-4-5"')
    if not value:
        raise _Invalid("must not be empty")
    if any(ch.isspace() for ch in value):
        raise _Invalid("must not contain spaces or line breaks")
    if not value.isprintable():
        raise _Invalid("must not contain control characters")
    if len(value) > (high := setting_limits(key)["max_length"]):
        raise _Invalid(f"must be at most {high} characters")
    return value


def _check_url(key: str, value: object) -> str:
    reason = "must be a ws:// or wss:// address with a host, such as ws://127.0.0.1:9473"
    if not isinstance(value, str) or not value:
        raise _Invalid(reason)
    if len(value) > setting_limits(key)["max_length"] or not value.isprintable() or " " in value:
        raise _Invalid(reason)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise _Invalid("must have a port from 1 to 65535, such as ws://127.0.0.1:9473") from None
    if port == 0:
        raise _Invalid("must have a port from 1 to 65535, such as ws://127.0.0.1:9473")
    if parts.scheme not in ("ws", "wss") or not parts.hostname or parts.fragment:
        raise _Invalid(reason)
    return value


def _check_client_name(key: str, value: object) -> str:
    limits = setting_limits(key)
    if isinstance(value, str) and re.fullmatch(limits["pattern"], value, re.ASCII):
        return value
    raise _Invalid(
        "must start with a letter and contain only letters, digits, - and _ "
        f"(at most {limits['max_length']} characters)"
    )


def _normalise_newlines(text: str) -> str:
    """TOML readers turn CRLF into LF, so store LF to make what we save what we read back."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_text(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid("must be text in quotes")
    try:  # lone surrogates (possible from JSON) cannot be written as UTF-8
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("must be valid Unicode text") from None
    text = _normalise_newlines(value)
    limits = setting_limits(key)
    if limits.get("min_length", 0) > 0 and not text.strip():
        raise _Invalid("must not be empty")
    if len(text) > (high := limits["max_length"]):
        raise _Invalid(f"must be at most {high} characters (it has {len(text)})")
    return text


def _check_routing_description(key: str, value: object) -> str:
    """SmartHole's own rules (it is JavaScript): not blank after `trim()`, which also strips
    U+FEFF and U+00A0, and at most so many UTF-16 units."""
    text = _check_text(key, value)
    if not js_trim(text):
        raise _Invalid("must not be blank (it has only spaces or invisible characters)")
    high = setting_limits(key)["max_length"]
    if (units := utf16_length(text)) > high:
        raise _Invalid(
            f"must be at most {high} characters as SmartHole counts them (UTF-16 units; "
            f"it has {units})"
        )
    return text


_STRING_CHECKS: Final[dict[str, Callable[[str, object], str]]] = {
    "model": _check_model,
    "smarthole_url": _check_url,
    "client_name": _check_client_name,
    "routing_description": _check_routing_description,
}
"""Strings with a format of their own; every other string setting is free text."""

_CHECKS_BY_TYPE: Final[dict[object, Callable[[str, object], object]]] = {
    bool: _check_bool,
    int: _check_int,
    float: _check_number,
    str: _check_text,
}


def _check(key: str, value: object) -> object:
    """Check one value against its declaration; raises _Invalid with the user-worded reason."""
    if key in _STRING_CHECKS:
        return _STRING_CHECKS[key](key, value)
    annotation = setting_fields()[key].annotation
    check = _CHECKS_BY_TYPE.get(annotation, _check_retry_minutes)
    return check(key, value)


def _show(value: object, limit: int = 40) -> str:
    """A value as the user would write it in TOML, shortened so messages stay one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**30 else "a very large number"
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else str(value)
    if isinstance(value, str):
        shown = value if len(value) <= limit else value[: limit - 1] + "…"
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        if len(value) <= 10 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            return "[" + ", ".join(_show(v) for v in value) + "]"
        return "an array"
    return str(value)


def _invalid_message(key: str, value: object, reason: str) -> str:
    return f"{key} = {_show(value)} is invalid ({reason})"


def _did_you_mean(key: str) -> str:
    """A hint for a probable typo of a known key, or nothing."""
    close = difflib.get_close_matches(key, SETTING_KEYS, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def validate_setting(key: str, value: object) -> Any:
    """Check one value as a user supplied it and return it normalised.

    Raises SettingValueError (a ValueError) naming the key and the reason, for unknown
    keys too. Used for command-line overrides, saves and the settings API.
    """
    if key not in SETTING_KEYS:
        message = f"unknown setting {key!r}{_did_you_mean(key)}"
        raise SettingValueError(key, "unknown setting", message)
    try:
        return _check(key, value)
    except _Invalid as exc:
        reason = str(exc)
        raise SettingValueError(key, reason, _invalid_message(key, value, reason)) from None


def readme_table() -> str:
    """The README's settings table, generated from the declarations (a test compares them)."""
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for key, info in setting_fields().items():
        default = getattr(_DEFAULTS, key)
        shown = "(a paragraph)" if isinstance(default, str) and len(default) > 60 else None
        if shown is None:
            shown = f"`{_show(default).strip(chr(34))}`"
        rows.append(f"| `{key}` | {shown} | {_allowed(key, info)} | {info.description} |")
    return "\n".join(rows)


def _allowed(key: str, info: FieldInfo) -> str:
    limits = setting_limits(key)
    if info.annotation is bool:
        return "true or false"
    if info.annotation in (int, float):
        kind = "whole number" if info.annotation is int else "number"
        return f"{kind}, {_show(limits['ge'])} to {_show(limits['le'])}"
    if info.annotation is str:
        kinds = {
            "model": "a model id without spaces",
            "smarthole_url": "a ws:// or wss:// address",
            "client_name": "a letter, then letters, digits, - and _",
        }
        low = limits.get("min_length", 0)
        text = kinds.get(key, "text" if low == 0 else "text, not empty")
        return f"{text}; at most {limits['max_length']} characters"
    return (
        f"{limits['min_length']} to {limits['max_length']} ascending numbers, "
        f"{_show(RETRY_MINUTES_LOW)} to {_show(RETRY_MINUTES_HIGH)}"
    )


# --------------------------------------------------------------------------- reading


def settings_path(vault: Path) -> Path:
    """Where a vault's settings live."""
    return vault / ".smarthole" / SETTINGS_FILE_NAME


def _settings_from_mapping(
    data: Mapping[str, object], problems: list[SettingProblem], unknown: dict[str, object]
) -> dict[str, Any]:
    """Valid values by key; every invalid or unknown one is reported into `problems`."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in SETTING_KEYS:
            unknown[key] = value
            problems.append(
                SettingProblem(
                    key,
                    f"{SETTINGS_FILE_NAME}: unknown key {key!r}{_did_you_mean(key)} "
                    "kept but ignored",
                    "unknown_key",
                )
            )
            continue
        try:
            values[key] = _check(key, value)
        except _Invalid as exc:
            default = getattr(_DEFAULTS, key)
            problems.append(
                SettingProblem(
                    key,
                    f"{SETTINGS_FILE_NAME}: {key} = {_show(value)} is invalid ({exc}); "
                    f"using the default {_show(default)}",
                    "invalid_value",
                )
            )
    return values


def _read_text(path: Path) -> str | None:
    """The file's text (a UTF-8 BOM tolerated), or None if it does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    return raw.decode("utf-8-sig")


def load_settings(vault: Path, overrides: Mapping[str, object] | None = None) -> LoadedSettings:
    """The settings in effect for this run. Never fails because of the file.

    A missing file means defaults; an unreadable or broken file is one problem and all
    defaults; each invalid value is one problem and its default. `overrides` (command-line
    flags) apply on top for this run only; they are checked like saves and raise
    SettingValueError when invalid, since the user just typed them. An override whose value
    is None is skipped (a flag that was not given).
    """
    checked_overrides = {
        key: validate_setting(key, value)
        for key, value in (overrides or {}).items()
        if value is not None
    }
    problems: list[SettingProblem] = []
    unknown: dict[str, object] = {}
    data: dict[str, object] = {}
    try:
        text = _read_text(settings_path(vault))
    except UnicodeDecodeError as exc:
        problems.append(
            SettingProblem(
                None,
                f"{SETTINGS_FILE_NAME} is not UTF-8 text (byte {exc.start}); "
                "using the defaults for every setting",
                "unreadable",
            )
        )
        text = None
    except OSError as exc:
        problems.append(
            SettingProblem(
                None,
                f"{SETTINGS_FILE_NAME} could not be read ({exc.strerror or exc}); "
                "using the defaults for every setting",
                "unreadable",
            )
        )
        text = None
    if text is not None:
        try:
            data = tomllib.loads(text)
        except ValueError as exc:  # TOMLDecodeError, or e.g. an integer too long to convert
            problems.append(
                SettingProblem(
                    None,
                    f"{SETTINGS_FILE_NAME} is not valid TOML ({exc}); "
                    "using the defaults for every setting",
                    "invalid_toml",
                )
            )
    values = _settings_from_mapping(data, problems, unknown)
    values.update(checked_overrides)
    return LoadedSettings(dataclasses.replace(_DEFAULTS, **values), problems, unknown)


# --------------------------------------------------------------------------- writing

_SAVE_LOCK = threading.Lock()


def _toml_item(key: str, value: object, raw: object) -> object:
    """The tomlkit value to write: multi-line strings as TOML multi-line strings."""
    if isinstance(value, str):
        return tomlkit.string(value, multiline="\n" in value)
    if isinstance(value, tuple):
        return list(value)
    if key == "stream_idle_timeout_seconds" and isinstance(raw, int) and not isinstance(raw, bool):
        return raw  # keep `120` rather than `120.0` for a whole number the user gave
    return value


def save_settings(vault: Path, changes: Mapping[str, object]) -> Settings:
    """Validate `changes`, then update settings.toml in place and return the saved settings.

    Every change is checked before anything is written: an invalid value or unknown key
    raises SettingValueError and leaves the file untouched. The file is edited with tomlkit
    so comments, ordering and unknown keys survive, then written atomically. A file that is
    not valid TOML raises SettingsFileError rather than being overwritten.
    """
    checked = {key: validate_setting(key, value) for key, value in changes.items()}
    if not checked:
        return load_settings(vault).settings
    path = settings_path(vault)
    with _SAVE_LOCK:
        try:
            text = _read_text(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsFileError(
                f"{path} could not be read, so it was not changed: {exc}"
            ) from exc
        if text is None:
            document = tomlkit.document()
        else:
            try:
                document = tomlkit.parse(text)
            except tomlkit.exceptions.TOMLKitError as exc:
                raise SettingsFileError(
                    f"{path} is not valid TOML ({exc}); fix or delete it, then save again"
                ) from exc
        for key, value in checked.items():
            if key in document and isinstance(document[key], Table | AoT):
                del document[key]  # a table cannot be overwritten in place by a plain value
            document[key] = _toml_item(key, value, changes[key])
        new_text = document.as_string()
        try:  # never write what we could not read back
            stored = tomllib.loads(new_text)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsFileError(
                f"{path} would not be valid TOML after the change ({exc})"
            ) from exc
        mismatched = [
            key for key, value in checked.items() if _plain(stored.get(key)) != _plain(value)
        ]
        if mismatched:
            raise SettingsFileError(
                f"could not write {', '.join(mismatched)} faithfully; nothing saved"
            )
        path.parent.mkdir(exist_ok=True)
        existing_mode = _file_mode(path)
        if existing_mode is None:
            write_file_atomically(path, new_text.encode("utf-8"))
        else:
            write_file_atomically(path, new_text.encode("utf-8"), mode=existing_mode, exact=True)
    values = _settings_from_mapping(stored, [], {})
    return dataclasses.replace(_DEFAULTS, **values)


def _plain(value: object) -> object:
    """Lists and tuples compare alike (TOML arrays read back as lists)."""
    return list(value) if isinstance(value, tuple) else value


def _file_mode(path: Path) -> int | None:
    """Permission bits of an existing file, so a save does not change them."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return None


if __name__ == "__main__":  # `python -m smarthole_notes.settings`: the README's table
    print(readme_table())
