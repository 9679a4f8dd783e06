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
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import urlsplit

import tomlkit
import tomlkit.exceptions
from tomlkit.items import AoT, Table

from smarthole_notes.durable import write_file_atomically

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


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of settings.md with its default.

    Constructing one directly does not validate (tests may want a tiny stream timeout);
    validation happens where values enter: the file, command-line overrides and saves.
    """

    model: str = "claude-haiku-4-5"
    enable_smarthole_connection: bool = True
    smarthole_url: str = "ws://127.0.0.1:9473"
    client_name: str = "Miss-Simone"
    routing_description: str = DEFAULT_ROUTING_DESCRIPTION
    information_architecture: str = DEFAULT_INFORMATION_ARCHITECTURE
    conversation_idle_timeout_minutes: int = 30
    max_conversations_retained: int = 1000
    conversation_state_timeout_minutes: int = 60
    enable_conversation_retrospection: bool = False
    retrospection_prompt: str = DEFAULT_RETROSPECTION_PROMPT
    enable_git_version_control: bool = False
    auto_commit_after_processing: bool = True
    verbose_logging: bool = False
    stream_idle_timeout_seconds: float = 90.0
    retry_failed_messages_minutes: tuple[float, ...] = DEFAULT_RETRY_MINUTES
    """When a message that failed for a transient reason is tried again, in minutes counted
    from its previous failure; after the last it waits for the user."""

    def as_dict(self) -> dict[str, Any]:
        """All settings as a plain, JSON-ready dict, in the order of settings.md."""
        return {
            f.name: list(value) if isinstance(value := getattr(self, f.name), tuple) else value
            for f in fields(self)
        }


SETTING_KEYS: Final[tuple[str, ...]] = tuple(f.name for f in fields(Settings))
_DEFAULTS: Final[Settings] = Settings()

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


# --------------------------------------------------------------------------- validation


class _Invalid(Exception):
    """Internal: a value failed its check; the argument is the reason, worded for the user."""


_Validator: TypeAlias = Callable[[object], object]

_CLIENT_NAME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_MAX_URL_LENGTH: Final = 2048
_MAX_MODEL_LENGTH: Final = 200
_MAX_ROUTING_DESCRIPTION: Final = 1024
_MAX_LONG_TEXT: Final = 20_000


def _unquote_hint(value: object) -> str:
    """Suffix for the common mistake of quoting a boolean or a number in TOML."""
    return ", without quotes" if isinstance(value, str) else ""


def _check_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    hint = ""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        hint = ", without quotes"
    raise _Invalid(f"must be true or false{hint}")


def _int_checker(low: int, high: int) -> _Validator:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"must be a whole number from {low} to {high}{_unquote_hint(value)}")
        if value < low:
            raise _Invalid(f"must be a whole number of at least {low}")
        if value > high:
            raise _Invalid(f"must be a whole number of at most {high}")
        return value

    return check


def _number_checker(low: float, high: float, unit: str) -> _Validator:
    def check(value: object) -> float:
        wrong = f"must be a number of {unit} from {low:g} to {high:g}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid(wrong + _unquote_hint(value))
        if not low <= value <= high:  # also false for NaN; compared before float() can overflow
            raise _Invalid(wrong)
        return float(value)

    return check


def _check_retry_minutes(value: object) -> tuple[float, ...]:
    """A short ascending list of waits in minutes; whole numbers stay whole (as written)."""
    wrong = (
        f"must be a list of 1 to {MAX_RETRIES} numbers of minutes from {RETRY_MINUTES_LOW:g} "
        f"to {RETRY_MINUTES_HIGH}, such as [1, 5, 15, 60, 240]"
    )
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= MAX_RETRIES:
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


def _check_model(value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid('must be a model name in quotes, such as "claude-haiku-4-5"')
    if not value:
        raise _Invalid("must not be empty")
    if any(ch.isspace() for ch in value):
        raise _Invalid("must not contain spaces or line breaks")
    if not value.isprintable():
        raise _Invalid("must not contain control characters")
    if len(value) > _MAX_MODEL_LENGTH:
        raise _Invalid(f"must be at most {_MAX_MODEL_LENGTH} characters")
    return value


def _check_url(value: object) -> str:
    reason = "must be a ws:// or wss:// address with a host, such as ws://127.0.0.1:9473"
    if not isinstance(value, str) or not value:
        raise _Invalid(reason)
    if len(value) > _MAX_URL_LENGTH or not value.isprintable() or " " in value:
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


def _check_client_name(value: object) -> str:
    if isinstance(value, str) and _CLIENT_NAME_RE.fullmatch(value):
        return value
    raise _Invalid(
        "must start with a letter and contain only letters, digits, - and _ (at most 64 characters)"
    )


def _normalise_newlines(text: str) -> str:
    """TOML readers turn CRLF into LF, so store LF to make what we save what we read back."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _require_unicode(text: str) -> None:
    """Lone surrogates (possible from JSON) cannot be written as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("must be valid Unicode text") from None


def _text_checker(low: int, high: int) -> _Validator:
    def check(value: object) -> str:
        if not isinstance(value, str):
            raise _Invalid("must be text in quotes")
        _require_unicode(value)
        text = _normalise_newlines(value)
        if low > 0 and not text.strip():
            raise _Invalid("must not be empty")
        if len(text) > high:
            raise _Invalid(f"must be at most {high} characters (it has {len(text)})")
        return text

    return check


_VALIDATORS: Final[dict[str, _Validator]] = {
    "model": _check_model,
    "enable_smarthole_connection": _check_bool,
    "smarthole_url": _check_url,
    "client_name": _check_client_name,
    "routing_description": _text_checker(1, _MAX_ROUTING_DESCRIPTION),
    "information_architecture": _text_checker(0, _MAX_LONG_TEXT),
    "conversation_idle_timeout_minutes": _int_checker(1, 10080),
    "max_conversations_retained": _int_checker(1, 1_000_000),
    "conversation_state_timeout_minutes": _int_checker(1, 10080),
    "enable_conversation_retrospection": _check_bool,
    "retrospection_prompt": _text_checker(0, _MAX_LONG_TEXT),
    "enable_git_version_control": _check_bool,
    "auto_commit_after_processing": _check_bool,
    "verbose_logging": _check_bool,
    "stream_idle_timeout_seconds": _number_checker(5, 3600, "seconds"),
    "retry_failed_messages_minutes": _check_retry_minutes,
}
assert set(_VALIDATORS) == set(SETTING_KEYS), "every setting needs exactly one validator"


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


def _did_you_mean(key: str) -> str:
    """A hint for a probable typo of a known key, or nothing."""
    close = difflib.get_close_matches(key, SETTING_KEYS, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def validate_setting(key: str, value: object) -> Any:
    """Check one value as a user supplied it and return it normalised.

    Raises SettingValueError (a ValueError) naming the key and the reason, for unknown
    keys too. Used for command-line overrides, saves and the settings API.
    """
    validator = _VALIDATORS.get(key)
    if validator is None:
        message = f"unknown setting {key!r}{_did_you_mean(key)}"
        raise SettingValueError(key, "unknown setting", message)
    try:
        return validator(value)
    except _Invalid as exc:
        reason = str(exc)
        raise SettingValueError(
            key, reason, f"{key} = {_show(value)} is invalid ({reason})"
        ) from None


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
        validator = _VALIDATORS.get(key)
        if validator is None:
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
            values[key] = validator(value)
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
