"""The Anthropic API key: from the environment, or a private file outside the vault.

Vaults are often synced to cloud storage, so the key never goes there. It comes from
`ANTHROPIC_API_KEY`, or else from `$XDG_CONFIG_HOME/smarthole-notes/credentials.toml`
(`~/.config/...` by default), which is written with mode 0600 from its first byte. The key
travels as an `ApiKey`, whose repr and str never show it, so it cannot leak into a log line
or a traceback by accident.
"""

from __future__ import annotations

import os
import stat
import tomllib
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, Literal, TypeAlias

import tomlkit
import tomlkit.exceptions

from smarthole_notes.durable import write_file_atomically

ENV_VAR: Final = "ANTHROPIC_API_KEY"
FILE_KEY: Final = "anthropic_api_key"
APP_FOLDER: Final = "smarthole-notes"
CREDENTIALS_FILE_NAME: Final = "credentials.toml"
_MAX_KEY_LENGTH: Final = 1024
NO_API_KEY_MESSAGE: Final = (
    "No Anthropic API key is set. Set one with `export ANTHROPIC_API_KEY=<your key>` "
    "(create a key at https://console.anthropic.com/settings/keys)."
)

KeySource: TypeAlias = Literal["environment", "file"]
WarningHandler: TypeAlias = Callable[[str], None]


class CredentialsWarning(UserWarning):
    """Something is wrong with how the key is stored; the service carries on regardless."""


class ApiKey:
    """An API key and where it came from. Printing it never shows the secret."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: KeySource) -> None:
        self._value = validate_api_key(value)
        self.source: KeySource = source

    def reveal(self) -> str:
        """The secret itself: only for handing to the SDK client."""
        return self._value

    def __repr__(self) -> str:
        return f"ApiKey(source={self.source!r}, value=<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApiKey):
            return NotImplemented
        return self._value == other._value and self.source == other.source

    def __hash__(self) -> int:
        return hash((self._value, self.source))


def validate_api_key(key: str) -> str:
    """The key with surrounding whitespace (a pasted newline) removed, if it can be sent.

    It has to fit in an HTTP header, so empty keys, inner whitespace and anything but
    printable ASCII are refused. The error never repeats the key.
    """
    if not isinstance(key, str):
        raise ValueError("the API key must be text")
    key = key.strip()
    if not key:
        raise ValueError("the API key is empty")
    if len(key) > _MAX_KEY_LENGTH:
        raise ValueError(f"the API key is too long (more than {_MAX_KEY_LENGTH} characters)")
    if any(ch.isspace() for ch in key):
        raise ValueError("the API key contains spaces or line breaks")
    if not all(" " < ch < "\x7f" for ch in key):
        raise ValueError(
            "the API key contains a character that cannot be sent to the API "
            "(only printable ASCII characters are allowed)"
        )
    return key


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/smarthole-notes/credentials.toml`, or under `~/.config`.

    A relative XDG_CONFIG_HOME is ignored, as the XDG specification asks.
    """
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME", "")
    if base and os.path.isabs(base):
        root = Path(base)
    else:
        home = env.get("HOME")
        root = (Path(home) if home else Path.home()) / ".config"
    return root / APP_FOLDER / CREDENTIALS_FILE_NAME


def _default_warning(message: str) -> None:
    warnings.warn(message, CredentialsWarning, stacklevel=3)


def _read_file_key(path: Path, warn: WarningHandler) -> ApiKey | None:
    """The key stored in the credentials file, warning about anything amiss."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        warn(f"the credentials file {path} cannot be checked ({exc.strerror or exc})")
        return None
    if not stat.S_ISREG(info.st_mode):
        warn(f"the credentials file {path} cannot be read (it is not a regular file)")
        return None
    if os.name == "posix" and stat.S_IMODE(info.st_mode) & 0o077:
        warn(
            f"the credentials file {path} can be read by other users "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
        )
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except OSError as exc:
        warn(f"the credentials file {path} cannot be read ({exc.strerror or exc})")
        return None
    except tomllib.TOMLDecodeError as exc:  # its message gives a position, never the content
        warn(f"the credentials file {path} is not valid TOML ({exc}); ignoring it")
        return None
    except UnicodeDecodeError:
        warn(f"the credentials file {path} is not UTF-8 text; ignoring it")
        return None
    value = data.get(FILE_KEY)
    if value is None:
        warn(f"the credentials file {path} has no {FILE_KEY}; ignoring it")
        return None
    if not isinstance(value, str):
        warn(f"{FILE_KEY} in {path} is not a string; ignoring it")
        return None
    try:
        return ApiKey(value, "file")
    except ValueError as exc:
        warn(f"{FILE_KEY} in {path} is not usable: {exc}; ignoring it")
        return None


def resolve_api_key(
    env: Mapping[str, str] | None = None, *, on_warning: WarningHandler | None = None
) -> ApiKey | None:
    """The key to use, or None: `ANTHROPIC_API_KEY` first, then the credentials file.

    `env` defaults to os.environ (it also decides the credentials file's location). Problems
    that do not stop us (a file other users can read, an unusable value) go to `on_warning`
    (e.g. a logger's warning method), or else are issued as a CredentialsWarning. An empty
    ANTHROPIC_API_KEY counts as unset; an unusable one is warned about and skipped.
    """
    env = os.environ if env is None else env
    warn = _default_warning if on_warning is None else on_warning
    from_env = env.get(ENV_VAR)
    if from_env is not None and from_env.strip():
        try:
            return ApiKey(from_env, "environment")
        except ValueError as exc:
            warn(f"{ENV_VAR} is set but not usable: {exc}; trying the credentials file")
    return _read_file_key(credentials_path(env), warn)


def api_key_status(
    env: Mapping[str, str] | None = None, *, on_warning: WarningHandler | None = None
) -> Literal["set", "not set"]:
    """Whether a usable key is available, for the chat page (which never sees the key)."""
    return "set" if resolve_api_key(env, on_warning=on_warning) is not None else "not set"


def store_api_key(key: str) -> Path:
    """Save the key to the credentials file (0600, in a 0700 folder) and return its path.

    Raises ValueError (without the key in the message) if the key cannot be used. Other
    entries a user added to the file are kept. The environment variable, when set, still
    takes precedence.
    """
    key = validate_api_key(key)
    path = credentials_path()
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix" and stat.S_IMODE(folder.stat().st_mode) != 0o700:
        os.chmod(folder, 0o700)
    document = _existing_document(path)
    document[FILE_KEY] = key
    write_file_atomically(path, document.as_string().encode("utf-8"), mode=0o600, exact=True)
    return path


def _existing_document(path: Path) -> tomlkit.TOMLDocument:
    """The current file to update, or a fresh one if it is missing or unusable."""
    try:
        return tomlkit.parse(path.read_bytes().decode("utf-8-sig"))
    except (OSError, ValueError, tomlkit.exceptions.TOMLKitError):
        return tomlkit.document()


def clear_api_key() -> bool:
    """Forget the stored key; True if there was a credentials file.

    The file is deleted, unless a user added other entries to it, which are kept. A key in
    ANTHROPIC_API_KEY stays in effect: it is not ours to clear.
    """
    path = credentials_path()
    if not path.exists():
        return False
    document = _existing_document(path)
    others = [name for name in document if name != FILE_KEY]
    if others:
        document.pop(FILE_KEY, None)
        write_file_atomically(path, document.as_string().encode("utf-8"), mode=0o600, exact=True)
    else:
        path.unlink(missing_ok=True)
    return True
