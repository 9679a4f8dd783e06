"""The API key: environment first, then a private file outside the vault; never shown."""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from pathlib import Path

import pytest

from smarthole_notes.credentials import (
    ApiKey,
    CredentialsWarning,
    api_key_status,
    clear_api_key,
    credentials_path,
    resolve_api_key,
    store_api_key,
    validate_api_key,
)

SECRET = "fake-key-api03-SECRETvalue_123"
OTHER_SECRET = "fake-key-api03-OTHERvalue_456"

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty configuration folder and no key in the environment."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    return home


class Collected(list[str]):
    """A warning handler that remembers what it was told."""

    def __call__(self, message: str) -> None:
        self.append(message)


# --------------------------------------------------------------------------- location


def test_credentials_path_follows_xdg_config_home(config_home: Path) -> None:
    assert credentials_path() == config_home / "smarthole-notes" / "credentials.toml"


def test_credentials_path_defaults_to_dot_config_in_home(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert credentials_path(env) == tmp_path / ".config" / "smarthole-notes" / "credentials.toml"


def test_a_relative_xdg_config_home_is_ignored(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": "relative/config"}
    assert credentials_path(env) == tmp_path / ".config" / "smarthole-notes" / "credentials.toml"


# --------------------------------------------------------------------------- resolving


def test_no_key_anywhere_resolves_to_none_and_status_not_set(config_home: Path) -> None:
    assert resolve_api_key() is None
    assert api_key_status() == "not set"


def test_the_environment_variable_is_used(config_home: Path) -> None:
    key = resolve_api_key({"ANTHROPIC_API_KEY": SECRET, "XDG_CONFIG_HOME": str(config_home)})
    assert key is not None
    assert key.source == "environment"
    assert key.reveal() == SECRET


def test_the_environment_wins_over_the_credentials_file(
    config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_api_key(OTHER_SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    key = resolve_api_key()
    assert key is not None
    assert (key.source, key.reveal()) == ("environment", SECRET)


def test_the_credentials_file_is_used_when_the_environment_has_no_key(config_home: Path) -> None:
    store_api_key(SECRET)
    key = resolve_api_key()
    assert key is not None
    assert (key.source, key.reveal()) == ("file", SECRET)
    assert api_key_status() == "set"


def test_an_empty_environment_variable_counts_as_unset(
    config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_api_key(SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "")
    key = resolve_api_key()
    assert key is not None
    assert key.source == "file"


def test_an_unusable_environment_key_is_warned_about_and_the_file_tried(
    config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_api_key(SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "fake-key bad key")
    warnings = Collected()
    key = resolve_api_key(on_warning=warnings)
    assert key is not None
    assert key.source == "file"
    assert len(warnings) == 1
    assert "ANTHROPIC_API_KEY" in warnings[0]
    assert "bad key" not in warnings[0]


def test_surrounding_whitespace_such_as_a_pasted_newline_is_removed(
    config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", f"  {SECRET}\n")
    key = resolve_api_key()
    assert key is not None
    assert key.reveal() == SECRET


def test_warnings_become_credentials_warnings_without_a_handler(config_home: Path) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True)
    path.write_text("not toml = = at all\n")
    path.chmod(0o600)
    with pytest.warns(CredentialsWarning, match="not valid TOML"):
        assert resolve_api_key() is None


def test_a_logger_method_can_receive_the_warnings(
    config_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True)
    path.write_text('other = "x"\n')
    path.chmod(0o600)
    log = logging.getLogger("test.credentials")
    with caplog.at_level(logging.WARNING):
        assert resolve_api_key(on_warning=log.warning) is None
    assert "has no anthropic_api_key" in caplog.text


# --------------------------------------------------------------------------- the file


@posix_only
def test_stored_file_has_mode_0600_and_folder_0700(config_home: Path) -> None:
    path = store_api_key(SECRET)
    assert path == credentials_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert tomllib.loads(path.read_text()) == {"anthropic_api_key": SECRET}


@posix_only
def test_the_file_is_private_even_with_a_permissive_umask(config_home: Path) -> None:
    old = os.umask(0)
    try:
        path = store_api_key(SECRET)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@posix_only
def test_the_file_is_never_created_readable_by_others(
    config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file the store opens for writing is created 0600, before any byte is written."""
    modes: list[int] = []
    real_open = os.open

    def spying_open(path: object, flags: int, mode: int = 0o777, *args: object) -> int:
        if flags & os.O_CREAT:
            modes.append(mode)
        return real_open(path, flags, mode, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spying_open)
    store_api_key(SECRET)
    assert modes == [0o600]


@posix_only
def test_an_existing_folder_open_to_others_is_tightened(config_home: Path) -> None:
    folder = credentials_path().parent
    folder.mkdir(parents=True, mode=0o755)
    folder.chmod(0o755)
    store_api_key(SECRET)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_storing_again_replaces_the_key_and_keeps_other_entries(config_home: Path) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True)
    path.write_text(f'# mine\nanthropic_api_key = "{OTHER_SECRET}"\nnote = "keep"\n')
    store_api_key(SECRET)
    text = path.read_text()
    assert "# mine" in text
    assert tomllib.loads(text) == {"anthropic_api_key": SECRET, "note": "keep"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["credentials.toml"]


@posix_only
def test_a_file_readable_by_others_is_warned_about_but_still_used(config_home: Path) -> None:
    path = store_api_key(SECRET)
    path.chmod(0o644)
    warnings = Collected()
    key = resolve_api_key(on_warning=warnings)
    assert key is not None
    assert key.reveal() == SECRET
    assert len(warnings) == 1
    assert "can be read by other users" in warnings[0]
    assert "chmod 600" in warnings[0]
    assert SECRET not in warnings[0]


def test_an_unreadable_file_is_warned_about_not_fatal(config_home: Path) -> None:
    credentials_path().mkdir(parents=True)  # a folder where the file should be
    warnings = Collected()
    assert resolve_api_key(on_warning=warnings) is None
    assert api_key_status(on_warning=warnings) == "not set"
    assert "cannot be read" in warnings[0]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("anthropic_api_key = 42\n", "not a string"),
        ('anthropic_api_key = "fake-key bad"\n', "not usable"),
        (b"anthropic_api_key = '\xff'\n", "not UTF-8"),
    ],
)
def test_an_unusable_stored_value_is_warned_about_without_echo(
    config_home: Path, content: str | bytes, words: str
) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    path.chmod(0o600)
    warnings = Collected()
    assert resolve_api_key(on_warning=warnings) is None
    assert len(warnings) == 1
    assert words in warnings[0]
    assert "fake-key bad" not in warnings[0]


def test_clear_removes_the_stored_key(config_home: Path) -> None:
    store_api_key(SECRET)
    assert clear_api_key() is True
    assert not credentials_path().exists()
    assert resolve_api_key() is None
    assert clear_api_key() is False


def test_clear_keeps_other_entries_a_user_added(config_home: Path) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True)
    path.write_text(f'anthropic_api_key = "{SECRET}"\nnote = "keep"\n')
    assert clear_api_key() is True
    assert tomllib.loads(path.read_text()) == {"note": "keep"}


def test_clear_does_not_touch_the_environment(
    config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    store_api_key(OTHER_SECRET)
    clear_api_key()
    assert api_key_status() == "set"


# --------------------------------------------------------------------------- the key itself


def test_repr_and_str_hide_the_key() -> None:
    key = ApiKey(SECRET, "environment")
    assert repr(key) == "ApiKey(source='environment', value=<hidden>)"
    assert str(key) == repr(key)
    assert SECRET not in f"{key} {key!r} {[key]} { ({'k': key}) }"
    assert key.reveal() == SECRET


def test_keys_compare_by_value_and_source() -> None:
    assert ApiKey(SECRET, "file") == ApiKey(SECRET, "file")
    assert ApiKey(SECRET, "file") != ApiKey(SECRET, "environment")
    assert ApiKey(SECRET, "file") != ApiKey(OTHER_SECRET, "file")


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("fake-key-api03 SECRET", "spaces"),
        ("fake-key-api03\tSECRET", "spaces"),
        ("fake-key-api03\nSECRET", "spaces"),
        ("fake-key-api03\x00SECRET", "printable ASCII"),
        ("fake-key-api03\x7fSECRET", "printable ASCII"),
        ("fake-key-api03-SÉCRET", "printable ASCII"),
        ("fake-key-api03-SECRET\u200b", "printable ASCII"),
        ("fake-key-" + "x" * 2000, "too long"),
    ],
)
def test_bad_keys_are_rejected_without_echoing_them(
    config_home: Path, bad: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        store_api_key(bad)
    message = str(caught.value)
    assert "SECRET" not in message
    assert "SÉCRET" not in message
    assert "xxxx" not in message
    assert not credentials_path().exists()
    with pytest.raises(ValueError):
        ApiKey(bad, "file")


def test_validate_api_key_returns_the_trimmed_key() -> None:
    assert validate_api_key(f"\n{SECRET} \r\n") == SECRET
