"""settings.toml: defaults, forgiving reads, strict saves that keep the user's file intact."""

from __future__ import annotations

import dataclasses
import os
import stat
import threading
import tomllib
from pathlib import Path

import pytest

from smarthole_notes.durable import write_file_atomically
from smarthole_notes.settings import (
    DEFAULT_INFORMATION_ARCHITECTURE,
    DEFAULT_RETROSPECTION_PROMPT,
    DEFAULT_ROUTING_DESCRIPTION,
    SETTING_KEYS,
    Settings,
    SettingsFileError,
    SettingValueError,
    load_settings,
    readme_table,
    save_settings,
    settings_path,
    settings_schema,
    validate_setting,
)

EXPECTED_DEFAULTS: dict[str, object] = {
    "model": "claude-haiku-4-5",
    "enable_smarthole_connection": True,
    "smarthole_url": "ws://127.0.0.1:9473",
    "client_name": "Miss-Simone",
    "routing_description": DEFAULT_ROUTING_DESCRIPTION,
    "information_architecture": DEFAULT_INFORMATION_ARCHITECTURE,
    "conversation_idle_timeout_minutes": 30,
    "max_conversations_retained": 1000,
    "conversation_state_timeout_minutes": 60,
    "enable_conversation_retrospection": False,
    "retrospection_prompt": DEFAULT_RETROSPECTION_PROMPT,
    "enable_git_version_control": False,
    "auto_commit_after_processing": True,
    "verbose_logging": False,
    "stream_idle_timeout_seconds": 90,
    "retry_failed_messages_minutes": (1, 5, 15, 60, 240),
}

FULL_FILE = '''\
model = "claude-sonnet-4-5"
enable_smarthole_connection = false
smarthole_url = "wss://smarthole.local:9000/ws"
client_name = "Notes_2"
routing_description = "Notes and lists."
information_architecture = """
Everything goes in Inbox/."""
conversation_idle_timeout_minutes = 15
max_conversations_retained = 50
conversation_state_timeout_minutes = 120
enable_conversation_retrospection = true
retrospection_prompt = "Reflect briefly."
enable_git_version_control = true
auto_commit_after_processing = false
verbose_logging = true
stream_idle_timeout_seconds = 12.5
retry_failed_messages_minutes = [0.5, 2, 2, 30]
'''

FULL_VALUES: dict[str, object] = {
    "model": "claude-sonnet-4-5",
    "enable_smarthole_connection": False,
    "smarthole_url": "wss://smarthole.local:9000/ws",
    "client_name": "Notes_2",
    "routing_description": "Notes and lists.",
    "information_architecture": "Everything goes in Inbox/.",
    "conversation_idle_timeout_minutes": 15,
    "max_conversations_retained": 50,
    "conversation_state_timeout_minutes": 120,
    "enable_conversation_retrospection": True,
    "retrospection_prompt": "Reflect briefly.",
    "enable_git_version_control": True,
    "auto_commit_after_processing": False,
    "verbose_logging": True,
    "stream_idle_timeout_seconds": 12.5,
    "retry_failed_messages_minutes": [0.5, 2, 2, 30],
}


def write_settings(vault: Path, text: str) -> Path:
    path = settings_path(vault)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- defaults


def test_settings_path_is_inside_the_vaults_smarthole_folder(vault: Path) -> None:
    assert settings_path(vault) == vault / ".smarthole" / "settings.toml"


def test_settings_has_exactly_the_keys_of_the_spec_in_order() -> None:
    assert list(SETTING_KEYS) == list(EXPECTED_DEFAULTS)
    assert list(Settings().as_dict()) == list(EXPECTED_DEFAULTS)


@pytest.mark.parametrize(("key", "default"), list(EXPECTED_DEFAULTS.items()))
def test_every_key_has_its_spec_default(key: str, default: object) -> None:
    assert getattr(Settings(), key) == default


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().model = "other"  # type: ignore[misc]


def test_default_texts_keep_list_items_on_their_own_lines_and_paragraphs_apart() -> None:
    assert "\n" not in DEFAULT_ROUTING_DESCRIPTION
    assert DEFAULT_ROUTING_DESCRIPTION.startswith("Personal notes assistant for an Obsidian vault.")
    assert DEFAULT_ROUTING_DESCRIPTION.endswith("what is already in the notes.")

    lines = DEFAULT_INFORMATION_ARCHITECTURE.split("\n")
    assert lines[0] == "A personal knowledge notebook, organised loosely by kind of content:"
    assert [line.split("/")[0] for line in lines[1:5]] == [
        "- Journal",
        "- Lists",
        "- Projects",
        "- Notes",
    ]
    assert lines[5] == ""
    assert lines[6].startswith("When something fits none of these")
    assert "give the note a plain, descriptive name" in lines[6]
    assert lines[6].endswith("over creating a near-duplicate.")
    assert len(lines) == 7

    prompt = DEFAULT_RETROSPECTION_PROMPT.split("\n")
    assert prompt[0].startswith("Look back over this conversation")
    assert [line[:3] for line in prompt[1:5]] == ["1. ", "2. ", "3. ", "4. "]
    assert prompt[2].endswith("that would have helped?")
    assert prompt[5] == "Be specific and practical; skip anything that went well."
    for text in (
        DEFAULT_ROUTING_DESCRIPTION,
        DEFAULT_INFORMATION_ARCHITECTURE,
        DEFAULT_RETROSPECTION_PROMPT,
    ):
        assert ">" not in text
        assert "  " not in text


def test_as_dict_gives_every_setting_by_name() -> None:
    settings = Settings(model="m", verbose_logging=True)
    data = settings.as_dict()
    assert data["model"] == "m"
    assert data["verbose_logging"] is True
    assert data == {
        key: list(v) if isinstance(v := getattr(settings, key), tuple) else v
        for key in SETTING_KEYS
    }
    assert data["retry_failed_messages_minutes"] == [1, 5, 15, 60, 240]


def test_missing_file_means_all_defaults_and_no_problems(vault: Path) -> None:
    loaded = load_settings(vault)
    assert loaded.settings == Settings()
    assert loaded.problems == []
    assert loaded.unknown == {}


def test_empty_file_means_all_defaults(vault: Path) -> None:
    write_settings(vault, "# nothing yet\n")
    loaded = load_settings(vault)
    assert loaded.settings == Settings()
    assert loaded.problems == []


# --------------------------------------------------------------------------- reading


def test_a_full_valid_file_is_read_completely(vault: Path) -> None:
    write_settings(vault, FULL_FILE)
    loaded = load_settings(vault)
    assert loaded.problems == []
    assert loaded.settings.as_dict() == FULL_VALUES


def test_a_partial_file_keeps_defaults_for_the_rest(vault: Path) -> None:
    write_settings(vault, 'model = "claude-opus-4-1"\n')
    loaded = load_settings(vault)
    assert loaded.settings == dataclasses.replace(Settings(), model="claude-opus-4-1")


def test_a_utf8_bom_written_by_some_editors_is_tolerated(vault: Path) -> None:
    settings_path(vault).parent.mkdir()
    settings_path(vault).write_bytes(b'\xef\xbb\xbfmodel = "m1"\n')
    loaded = load_settings(vault)
    assert loaded.settings.model == "m1"
    assert loaded.problems == []


def test_a_whole_number_stream_timeout_is_accepted_as_a_number(vault: Path) -> None:
    write_settings(vault, "stream_idle_timeout_seconds = 45\n")
    assert load_settings(vault).settings.stream_idle_timeout_seconds == 45.0


INVALID_VALUES: list[tuple[str, str, str]] = [
    # key, TOML value, expected part of the reason
    ("model", '""', "must not be empty"),
    ("model", '"claude haiku"', "must not contain spaces"),
    ("model", '"' + "m" * 201 + '"', "at most 200 characters"),
    ("model", "42", "model name"),
    ("enable_smarthole_connection", '"true"', "must be true or false, without quotes"),
    ("enable_smarthole_connection", "1", "must be true or false"),
    ("smarthole_url", '"http://127.0.0.1:9473"', "ws:// or wss://"),
    ("smarthole_url", '"ws://"', "with a host"),
    ("smarthole_url", '"127.0.0.1:9473"', "ws:// or wss://"),
    ("smarthole_url", '"ws://host:99999"', "port from 1 to 65535"),
    ("smarthole_url", '"ws://host:0"', "port from 1 to 65535"),
    ("smarthole_url", '"ws://host/#part"', "ws:// or wss://"),
    ("smarthole_url", '"ws://host name:1"', "ws:// or wss://"),
    ("smarthole_url", "9473", "ws:// or wss://"),
    ("client_name", '"9lives"', "must start with a letter"),
    ("client_name", '"Miss Simone"', "only letters, digits, - and _"),
    ("client_name", '"' + "a" * 65 + '"', "at most 64 characters"),
    ("client_name", '"Mïss"', "must start with a letter"),
    ("routing_description", '""', "must not be empty"),
    ("routing_description", '"   "', "must not be empty"),
    ("routing_description", '"' + "d" * 1025 + '"', "at most 1024 characters"),
    # SmartHole (JavaScript) trims U+FEFF and U+00A0 and counts an emoji as 2 units.
    ("routing_description", '"\\uFEFF"', "must not be blank"),
    ("routing_description", '"\\u00A0\\u3000"', "must not be empty"),
    ("routing_description", '"' + "\U0001f600" * 513 + '"', "UTF-16 units; it has 1026"),
    ("information_architecture", '"' + "x" * 20_001 + '"', "at most 20000 characters"),
    ("information_architecture", "[1, 2]", "must be text"),
    ("retrospection_prompt", '"' + "x" * 20_001 + '"', "at most 20000 characters"),
    ("retrospection_prompt", "true", "must be text"),
    ("conversation_idle_timeout_minutes", "-5", "must be a whole number of at least 1"),
    ("conversation_idle_timeout_minutes", "0", "at least 1"),
    ("conversation_idle_timeout_minutes", "10081", "at most 10080"),
    ("conversation_idle_timeout_minutes", "30.0", "must be a whole number from 1 to 10080"),
    ("conversation_idle_timeout_minutes", "true", "must be a whole number"),
    ("conversation_idle_timeout_minutes", '"30"', "without quotes"),
    ("max_conversations_retained", "1000001", "at most 1000000"),
    ("max_conversations_retained", "0", "at least 1"),
    ("conversation_state_timeout_minutes", "0", "at least 1"),
    ("conversation_state_timeout_minutes", "99999", "at most 10080"),
    ("enable_conversation_retrospection", '"yes"', "must be true or false"),
    ("enable_git_version_control", "0", "must be true or false"),
    ("auto_commit_after_processing", '"false"', "without quotes"),
    ("verbose_logging", "{ level = 1 }", "must be true or false"),
    ("stream_idle_timeout_seconds", "4.9", "from 5 to 3600"),
    ("stream_idle_timeout_seconds", "3601", "from 5 to 3600"),
    ("stream_idle_timeout_seconds", "nan", "from 5 to 3600"),
    ("stream_idle_timeout_seconds", "inf", "from 5 to 3600"),
    ("stream_idle_timeout_seconds", "true", "must be a number"),
    ("stream_idle_timeout_seconds", '"90"', "without quotes"),
    ("retry_failed_messages_minutes", "5", "must be a list of 1 to 10 numbers of minutes"),
    ("retry_failed_messages_minutes", "[]", "must be a list of 1 to 10"),
    ("retry_failed_messages_minutes", "[" + "1, " * 11 + "]", "1 to 10 numbers"),
    ("retry_failed_messages_minutes", "[0.01]", "from 0.05 to 10080"),
    ("retry_failed_messages_minutes", "[10081]", "from 0.05 to 10080"),
    ("retry_failed_messages_minutes", "[1, nan]", "from 0.05 to 10080"),
    ("retry_failed_messages_minutes", "[5, 1]", "must be in ascending order"),
    ("retry_failed_messages_minutes", '["1", 5]', "without quotes"),
    ("retry_failed_messages_minutes", "[true]", "must be a list"),
]


@pytest.mark.parametrize(("key", "toml_value", "reason"), INVALID_VALUES)
def test_an_invalid_value_is_reported_and_replaced_by_its_default_while_others_are_kept(
    vault: Path, key: str, toml_value: str, reason: str
) -> None:
    other = "verbose_logging" if key != "verbose_logging" else "model"
    other_line = "verbose_logging = true" if other == "verbose_logging" else 'model = "kept"'
    write_settings(vault, f"{key} = {toml_value}\n{other_line}\n")
    loaded = load_settings(vault)

    assert getattr(loaded.settings, key) == EXPECTED_DEFAULTS[key]
    assert getattr(loaded.settings, other) == (True if other == "verbose_logging" else "kept")
    assert len(loaded.problems) == 1
    problem = loaded.problems[0]
    assert problem.key == key
    assert problem.kind == "invalid_value"
    assert problem.message.startswith(f"settings.toml: {key} = ")
    assert reason in problem.message
    assert "using the default" in problem.message


def test_problem_message_reads_like_the_documented_example(vault: Path) -> None:
    write_settings(vault, "conversation_idle_timeout_minutes = -5\n")
    (problem,) = load_settings(vault).problems
    assert problem.message == (
        "settings.toml: conversation_idle_timeout_minutes = -5 is invalid "
        "(must be a whole number of at least 1); using the default 30"
    )


def test_long_invalid_values_are_shortened_in_messages(vault: Path) -> None:
    write_settings(vault, 'client_name = "' + "a" * 500 + '"\n')
    (problem,) = load_settings(vault).problems
    assert len(problem.message) < 250
    assert "…" in problem.message


def test_several_invalid_values_are_each_reported(vault: Path) -> None:
    write_settings(
        vault,
        'model = ""\nverbose_logging = "yes"\nmax_conversations_retained = 7\nclient_name = "1x"\n',
    )
    loaded = load_settings(vault)
    assert [p.key for p in loaded.problems] == ["model", "verbose_logging", "client_name"]
    assert loaded.settings.max_conversations_retained == 7
    assert loaded.settings.model == "claude-haiku-4-5"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("smarthole_url", "ws://127.0.0.1:9473"),
        ("smarthole_url", "wss://example.com/path?x=1"),
        ("smarthole_url", "ws://[::1]:9473"),
        ("smarthole_url", "ws://localhost"),
        ("client_name", "a"),
        ("client_name", "A" + "b" * 63),
        ("client_name", "Miss-Simone_2"),
        ("routing_description", "d" * 1024),
        ("information_architecture", ""),
        ("information_architecture", "x" * 20_000),
        ("retrospection_prompt", ""),
        ("conversation_idle_timeout_minutes", 1),
        ("conversation_idle_timeout_minutes", 10080),
        ("max_conversations_retained", 1_000_000),
        ("stream_idle_timeout_seconds", 5),
        ("stream_idle_timeout_seconds", 3600.0),
        ("model", "m" * 200),
        ("retry_failed_messages_minutes", (0.05,)),
        ("retry_failed_messages_minutes", (10080,)),
        ("retry_failed_messages_minutes", (1, 1, 1, 1, 1, 1, 1, 1, 1, 1)),
    ],
)
def test_boundary_values_are_accepted(key: str, value: object) -> None:
    assert validate_setting(key, value) == value


def test_unknown_keys_are_kept_and_warned_about(vault: Path) -> None:
    write_settings(vault, 'modle = "x"\nmy_note = 3\n[plugins]\nfoo = "bar"\n')
    loaded = load_settings(vault)
    assert loaded.settings == Settings()
    assert loaded.unknown == {"modle": "x", "my_note": 3, "plugins": {"foo": "bar"}}
    assert [p.key for p in loaded.problems] == ["modle", "my_note", "plugins"]
    assert all(p.kind == "unknown_key" for p in loaded.problems)
    assert all("kept but ignored" in p.message for p in loaded.problems)
    assert "did you mean model?" in loaded.problems[0].message


def test_a_file_that_is_not_toml_is_one_problem_and_all_defaults(vault: Path) -> None:
    write_settings(vault, 'model = "ok"\nverbose_logging = = true\n')
    loaded = load_settings(vault)
    assert loaded.settings == Settings()
    (problem,) = loaded.problems
    assert problem.key is None
    assert problem.kind == "invalid_toml"
    assert "not valid TOML" in problem.message
    assert "line 2" in problem.message


def test_a_file_that_is_not_utf8_is_reported_not_fatal(vault: Path) -> None:
    settings_path(vault).parent.mkdir()
    settings_path(vault).write_bytes(b'model = "\xff\xfe"\n')
    loaded = load_settings(vault)
    assert loaded.settings == Settings()
    assert [p.kind for p in loaded.problems] == ["unreadable"]


def test_an_unreadable_settings_path_is_reported_not_fatal(vault: Path) -> None:
    settings_path(vault).mkdir(parents=True)  # a folder where the file should be
    loaded = load_settings(vault)
    assert loaded.settings == Settings()
    (problem,) = loaded.problems
    assert problem.kind == "unreadable"
    assert "could not be read" in problem.message


def test_an_integer_too_long_to_convert_does_not_crash_loading(vault: Path) -> None:
    write_settings(vault, "max_conversations_retained = " + "9" * 5000 + "\n")
    loaded = load_settings(vault)
    assert loaded.settings == Settings()
    assert len(loaded.problems) == 1


# --------------------------------------------------------------------------- overrides


def test_overrides_apply_on_top_of_the_file_for_this_run_only(vault: Path) -> None:
    path = write_settings(vault, 'model = "from-file"\nverbose_logging = true\n')
    before = path.read_bytes()
    loaded = load_settings(
        vault, {"model": "claude-sonnet-4-5", "enable_smarthole_connection": False}
    )
    assert loaded.settings.model == "claude-sonnet-4-5"
    assert loaded.settings.enable_smarthole_connection is False
    assert loaded.settings.verbose_logging is True
    assert path.read_bytes() == before
    assert load_settings(vault).settings.model == "from-file"


def test_an_override_replaces_an_invalid_file_value(vault: Path) -> None:
    write_settings(vault, 'smarthole_url = "http://x"\n')
    loaded = load_settings(vault, {"smarthole_url": "ws://127.0.0.1:1234"})
    assert loaded.settings.smarthole_url == "ws://127.0.0.1:1234"


def test_overrides_given_as_none_are_skipped(vault: Path) -> None:
    loaded = load_settings(vault, {"model": None, "smarthole_url": None})
    assert loaded.settings == Settings()


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"model": "has space"}, ["model", "must not contain spaces"]),
        ({"smarthole_url": "http://127.0.0.1"}, ["smarthole_url", "ws:// or wss://"]),
        ({"conversation_idle_timeout_minutes": 0}, ["conversation_idle_timeout_minutes"]),
        ({"modle": "x"}, ["unknown setting", "did you mean model?"]),
    ],
)
def test_an_invalid_override_raises_a_clear_value_error(
    vault: Path, overrides: dict[str, object], words: list[str]
) -> None:
    with pytest.raises(ValueError) as caught:
        load_settings(vault, overrides)
    for word in words:
        assert word in str(caught.value)
    assert isinstance(caught.value, SettingValueError)
    assert caught.value.key == next(iter(overrides))


# --------------------------------------------------------------------------- validate_setting


def test_validate_setting_rejects_a_bool_where_a_number_is_expected() -> None:
    with pytest.raises(SettingValueError, match="max_conversations_retained = true is invalid"):
        validate_setting("max_conversations_retained", True)


def test_validate_setting_rejects_a_string_where_a_bool_is_expected() -> None:
    with pytest.raises(SettingValueError, match="without quotes") as caught:
        validate_setting("verbose_logging", "true")
    assert caught.value.reason == "must be true or false, without quotes"


def test_validate_setting_normalises_windows_line_endings_in_texts() -> None:
    assert validate_setting("retrospection_prompt", "a\r\nb\rc") == "a\nb\nc"


def test_validate_setting_rejects_text_that_cannot_be_encoded() -> None:
    with pytest.raises(SettingValueError, match="valid Unicode"):
        validate_setting("information_architecture", "bad \ud800 surrogate")


def test_validate_setting_rejects_none() -> None:
    with pytest.raises(SettingValueError, match="model = null is invalid"):
        validate_setting("model", None)


# --------------------------------------------------------------------------- saving

USER_FILE = """\
# My smarthole-notes settings.
# Keep the cheap model.
model = "claude-haiku-4-5"  # chosen for speed

my_own_note = "keep me"
verbose_logging = false

[plugins]
colour = "blue"
"""


def test_save_creates_the_smarthole_folder_and_file(vault: Path) -> None:
    saved = save_settings(vault, {"model": "claude-sonnet-4-5"})
    assert saved == dataclasses.replace(Settings(), model="claude-sonnet-4-5")
    assert tomllib.loads(settings_path(vault).read_text()) == {"model": "claude-sonnet-4-5"}
    assert load_settings(vault).settings == saved


def test_save_preserves_comments_unknown_keys_and_ordering(vault: Path) -> None:
    path = write_settings(vault, USER_FILE)
    save_settings(
        vault,
        {"model": "claude-sonnet-4-5", "verbose_logging": True, "max_conversations_retained": 10},
    )
    text = path.read_text()
    assert text.startswith("# My smarthole-notes settings.\n# Keep the cheap model.\n")
    assert 'model = "claude-sonnet-4-5"  # chosen for speed\n' in text
    assert 'my_own_note = "keep me"\n' in text
    assert "verbose_logging = true\n" in text
    assert '[plugins]\ncolour = "blue"\n' in text
    order = [
        text.index(s)
        for s in (
            "model =",
            "my_own_note",
            "verbose_logging",
            "max_conversations_retained",
            "[plugins]",
        )
    ]
    assert order == sorted(order)
    loaded = load_settings(vault)
    assert loaded.unknown == {"my_own_note": "keep me", "plugins": {"colour": "blue"}}
    assert loaded.settings.max_conversations_retained == 10


def test_save_writes_multiline_text_as_a_toml_multiline_string(vault: Path) -> None:
    text = 'First line\n- item with "quotes" and a \\ backslash\n\nLast """ line'
    saved = save_settings(vault, {"information_architecture": text})
    raw = settings_path(vault).read_text()
    assert 'information_architecture = """' in raw
    assert "\nFirst line\n" in raw or '"""First line\n' in raw
    assert saved.information_architecture == text
    assert load_settings(vault).settings.information_architecture == text


def test_save_writes_single_line_text_as_an_ordinary_string(vault: Path) -> None:
    save_settings(vault, {"routing_description": "Just notes."})
    assert 'routing_description = "Just notes."\n' in settings_path(vault).read_text()


def test_save_keeps_a_whole_number_timeout_whole_in_the_file(vault: Path) -> None:
    saved = save_settings(vault, {"stream_idle_timeout_seconds": 120})
    assert "stream_idle_timeout_seconds = 120\n" in settings_path(vault).read_text()
    assert saved.stream_idle_timeout_seconds == 120.0


def test_save_replaces_a_table_where_a_plain_value_belongs(vault: Path) -> None:
    write_settings(vault, 'model = "m"\n[verbose_logging]\nlevel = 2\n')
    saved = save_settings(vault, {"verbose_logging": True})
    assert saved.verbose_logging is True
    assert load_settings(vault).problems == []


def test_save_returns_the_settings_now_in_effect_from_the_whole_file(vault: Path) -> None:
    write_settings(vault, 'client_name = "Alfred"\nmodel = ""\n')
    saved = save_settings(vault, {"verbose_logging": True})
    assert saved.client_name == "Alfred"
    assert saved.model == "claude-haiku-4-5"  # still invalid in the file: its default
    assert saved.verbose_logging is True


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (
            {"model": "claude-sonnet-4-5", "verbose_logging": "yes"},
            ["verbose_logging", "true or false"],
        ),
        ({"client_name": "has space"}, ["client_name", "only letters"]),
        ({"conversation_idle_timeout_minutes": True}, ["conversation_idle_timeout_minutes"]),
        ({"smarthole_url": "ws://"}, ["smarthole_url", "with a host"]),
        ({"not_a_setting": 1}, ["unknown setting", "not_a_setting"]),
    ],
)
def test_save_rejects_bad_values_and_writes_nothing(
    vault: Path, changes: dict[str, object], words: list[str]
) -> None:
    path = write_settings(vault, USER_FILE)
    before = path.read_bytes()
    with pytest.raises(ValueError) as caught:
        save_settings(vault, changes)
    for word in words:
        assert word in str(caught.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.toml"]


def test_save_rejects_bad_values_without_creating_anything(vault: Path) -> None:
    with pytest.raises(SettingValueError):
        save_settings(vault, {"model": ""})
    assert not (vault / ".smarthole").exists()


def test_save_refuses_to_overwrite_a_broken_file(vault: Path) -> None:
    path = write_settings(vault, "this is = = not toml\n# precious comment\n")
    before = path.read_bytes()
    with pytest.raises(SettingsFileError, match="not valid TOML"):
        save_settings(vault, {"model": "m"})
    assert path.read_bytes() == before


def test_a_file_with_a_duplicated_key_is_broken_for_load_and_save(vault: Path) -> None:
    path = write_settings(vault, 'model = "a"\nmodel = "b"\n')
    assert [p.kind for p in load_settings(vault).problems] == ["invalid_toml"]
    with pytest.raises(SettingsFileError):
        save_settings(vault, {"verbose_logging": True})
    assert path.read_text() == 'model = "a"\nmodel = "b"\n'


def test_save_with_no_changes_writes_nothing(vault: Path) -> None:
    assert save_settings(vault, {}) == Settings()
    assert not settings_path(vault).exists()


def test_atomic_save_leaves_no_temporary_files(vault: Path) -> None:
    write_settings(vault, USER_FILE)
    for n in range(5):
        save_settings(vault, {"max_conversations_retained": n + 1})
    assert sorted(p.name for p in settings_path(vault).parent.iterdir()) == ["settings.toml"]


def test_save_keeps_the_files_permissions(vault: Path) -> None:
    path = write_settings(vault, USER_FILE)
    path.chmod(0o640)
    save_settings(vault, {"verbose_logging": True})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_save_writes_through_a_symlinked_settings_file(vault: Path, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "settings.toml"
    real.parent.mkdir()
    real.write_text('model = "m"\n')
    settings_path(vault).parent.mkdir()
    settings_path(vault).symlink_to(real)
    save_settings(vault, {"verbose_logging": True})
    assert settings_path(vault).is_symlink()
    assert "verbose_logging = true" in real.read_text()


def test_concurrent_saves_lose_no_change(vault: Path) -> None:
    keys = ["verbose_logging", "enable_git_version_control", "enable_conversation_retrospection"]
    threads = [threading.Thread(target=save_settings, args=(vault, {key: True})) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    settings = load_settings(vault).settings
    assert all(getattr(settings, key) is True for key in keys)


def test_a_failed_atomic_write_removes_its_temporary_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "file.toml"
    target.write_bytes(b"old")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_file_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.toml"]


def test_write_file_atomically_can_set_an_exact_mode(tmp_path: Path) -> None:
    target = tmp_path / "private"
    write_file_atomically(target, b"x", mode=0o600, exact=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes() == b"x"


def test_retry_schedule_is_a_tuple_whose_whole_numbers_stay_whole(vault: Path) -> None:
    assert validate_setting("retry_failed_messages_minutes", [1.0, 2.5, 60]) == (1, 2.5, 60)
    write_settings(vault, "retry_failed_messages_minutes = [1.0, 10]\n")
    loaded = load_settings(vault)
    assert loaded.problems == []
    assert loaded.settings.retry_failed_messages_minutes == (1, 10)


def test_an_invalid_retry_schedule_names_the_default_in_toml_form(vault: Path) -> None:
    write_settings(vault, "retry_failed_messages_minutes = [5, 1]\n")
    (problem,) = load_settings(vault).problems
    assert problem.message == (
        "settings.toml: retry_failed_messages_minutes = [5, 1] is invalid (must be in "
        "ascending order, such as [1, 5, 15, 60, 240]); using the default [1, 5, 15, 60, 240]"
    )


def test_save_writes_the_retry_schedule_as_a_toml_array(vault: Path) -> None:
    saved = save_settings(vault, {"retry_failed_messages_minutes": [0.5, 2, 30]})
    assert saved.retry_failed_messages_minutes == (0.5, 2, 30)
    text = settings_path(vault).read_text(encoding="utf-8")
    assert "retry_failed_messages_minutes = [0.5, 2, 30]" in text
    assert load_settings(vault).settings.retry_failed_messages_minutes == (0.5, 2, 30)


# --------------------------------------------------------------------------- one declaration


def test_the_readme_table_is_the_one_generated_from_the_model() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme_table()
    assert table in readme
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    listed = [row.split("`")[1] for row in rows if row.split("`")[1] in SETTING_KEYS]
    assert listed == list(SETTING_KEYS)


@pytest.mark.parametrize("key", SETTING_KEYS)
def test_every_bound_in_the_schema_is_the_one_validation_enforces(key: str) -> None:
    schema = settings_schema()["properties"][key]
    assert schema["title"] and schema["description"]
    assert schema["default"] == EXPECTED_DEFAULTS[key] or key == "retry_failed_messages_minutes"
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None:
        validate_setting(key, low)
        validate_setting(key, high)
        for outside in (low - 1, high + 1):
            with pytest.raises(SettingValueError):
                validate_setting(key, outside)
    if schema.get("maxLength") is not None:
        too_long = "a" * (schema["maxLength"] + 1)
        with pytest.raises(SettingValueError):
            validate_setting(key, too_long)
    if key == "retry_failed_messages_minutes":
        item = schema["items"]
        validate_setting(key, [item["minimum"]] * schema["maxItems"])
        validate_setting(key, [item["maximum"]] * schema["minItems"])
        with pytest.raises(SettingValueError):
            validate_setting(key, [item["minimum"] / 2])
        with pytest.raises(SettingValueError):
            validate_setting(key, [1] * (schema["maxItems"] + 1))
