"""Obsidian's conventions: Moment.js formats, daily-note paths per time zone, templates, prompt."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from smarthole_notes.llm.prompt import SystemPrompt
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.tools.base import ToolRegistry
from smarthole_notes.tools.vault import vault_tools
from smarthole_notes.vault import Vault
from smarthole_notes.vault.conventions import (
    DailyNotes,
    fill_daily_template,
    format_moment,
    read_conventions,
)

MONDAY = dt.datetime(2026, 11, 30, 9, 5, 7, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("YYYY-MM-DD", "2026-11-30"),
        ("YYYY-MM-DD dddd", "2026-11-30 Monday"),
        ("DD.MM.YY", "30.11.26"),
        ("ddd, MMM Do YYYY", "Mon, Nov 30th 2026"),
        ("MMMM D, YYYY", "November 30, 2026"),
        ("YYYY/MM-MMMM/YYYY-MM-DD-dddd", "2026/11-November/2026-11-30-Monday"),
        ("gggg-[W]ww", "2026-W49"),  # locale week: weeks start on Sunday
        ("GGGG-[W]WW-E", "2026-W49-1"),  # ISO week
        ("[Daily] YYYY-DDDD", "Daily 2026-334"),
        ("Qo [quarter] YY", "4th quarter 26"),
        ("h:mm A, HH:mm:ss", "9:05 AM, 09:05:07"),
        ("dd do d", "Mo 1st 1"),
    ],
)
def test_moment_formats(fmt: str, expected: str) -> None:
    assert format_moment(fmt, MONDAY) == expected


def test_week_numbers_around_new_year() -> None:
    # 2027-01-01 is a Friday: ISO week 53 of 2026, and the locale's week 1 of 2027.
    day = dt.datetime(2027, 1, 1)
    assert format_moment("GGGG-WW", day) == "2026-53"
    assert format_moment("gggg-ww", day) == "2027-01"
    assert format_moment("Do", dt.datetime(2026, 1, 11)) == "11th"
    assert format_moment("Do", dt.datetime(2026, 1, 22)) == "22nd"


@pytest.mark.parametrize(
    ("hour", "zone", "expected"),
    [
        (11, "Pacific/Auckland", "Journal/2026-12-01 Tuesday.md"),  # 00:30 tomorrow there
        (11, "Europe/Paris", "Journal/2026-11-30 Monday.md"),
        (11, "UTC", "Journal/2026-11-30 Monday.md"),
        (6, "America/Los_Angeles", "Journal/2026-11-29 Sunday.md"),  # 22:30 the day before
        (6, "Asia/Kolkata", "Journal/2026-11-30 Monday.md"),  # a half-hour offset
    ],
)
def test_todays_daily_note_depends_on_the_users_time_zone(
    hour: int, zone: str, expected: str
) -> None:
    daily = DailyNotes("Journal", "YYYY-MM-DD dddd", None, "Daily notes core plugin")
    utc = dt.datetime(2026, 11, 30, hour, 30, tzinfo=dt.UTC)
    assert daily.path_for(utc.astimezone(ZoneInfo(zone))) == expected


def test_templates_are_filled_in() -> None:
    daily = DailyNotes("", "YYYY-MM-DD", "T.md", "Daily notes core plugin")
    template = (
        "# {{title}}\nCreated {{date}} at {{time}}\n{{date:dddd D MMMM}} / {{ DATE:YYYY }}\n"
        "Prev [[{{yesterday}}]] next [[{{tomorrow}}]], week later {{date+7d:YYYY-MM-DD}}\n"
    )
    assert fill_daily_template(template, daily, MONDAY) == (
        "# 2026-11-30\nCreated 2026-11-30 at 09:05\nMonday 30 November / 2026\n"
        "Prev [[2026-11-29]] next [[2026-12-01]], week later 2026-12-07\n"
    )


def obsidian(root: Path, name: str, data: object) -> None:
    path = root / ".obsidian" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    root = tmp_path / "vault"
    root.mkdir()
    obsidian(root, "daily-notes.json", {"folder": "Journal/Daily", "format": "YYYY-MM-DD dddd",
                                       "template": "Templates/Daily"})  # fmt: skip
    obsidian(root, "templates.json", {"folder": "Templates"})
    obsidian(root, "app.json", {"attachmentFolderPath": "Assets/Files", "newFileLocation":
                                "folder", "newFileFolderPath": "Inbox"})  # fmt: skip
    (root / "Templates").mkdir()
    (root / "Templates" / "Daily.md").write_text("# {{title}}\n\n## Tasks\n", encoding="utf-8")
    return Vault(root, tz=ZoneInfo("Europe/Paris"))


def test_the_vaults_settings(vault: Vault) -> None:
    found = read_conventions(vault.resolver)
    assert found is not None and found.daily is not None
    assert found.daily.folder == "Journal/Daily" and found.daily.template == "Templates/Daily.md"
    text = found.describe()
    assert "'Journal/Daily/'" in text and "'YYYY-MM-DD dddd'" in text
    assert "'Templates/Daily.md'" in text and "Templates folder: 'Templates/'" in text
    assert "Attachments go in 'Assets/Files/'" in text and "New notes go in 'Inbox/'" in text


def test_periodic_notes_wins_when_enabled(vault: Vault) -> None:
    obsidian(vault.root, "community-plugins.json", ["periodic-notes"])
    obsidian(vault.root, "plugins/periodic-notes/data.json",
             {"daily": {"enabled": True, "folder": "Days", "format": "YYYY/MM/DD",
                        "template": "Templates/Day.md"}})  # fmt: skip
    found = read_conventions(vault.resolver)
    assert found is not None and found.daily is not None
    assert found.daily.source == "Periodic Notes plugin"
    assert found.daily.path_for(MONDAY) == "Days/2026/11/30.md"


def test_a_plain_folder_has_no_conventions(tmp_path: Path) -> None:
    assert read_conventions(Vault(tmp_path).resolver) is None
    assert Vault(tmp_path).conventions_prompt() == ""


def test_the_disabled_core_plugin_says_nothing_about_daily_notes(vault: Vault) -> None:
    obsidian(vault.root, "core-plugins.json", {"daily-notes": False, "templates": True})
    found = read_conventions(vault.resolver)
    assert found is not None and found.daily is None


def test_the_prompt_names_the_folders_stably_and_todays_note_in_the_volatile_part(
    vault: Vault,
) -> None:
    prompt = SystemPrompt(
        "Projects in Projects/.",
        zone=ZoneInfo("Europe/Paris"),
        zone_name="Europe/Paris",
        clock=lambda: dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC),  # Dec 1 in Paris
        vault_conventions=vault.conventions_prompt,
        daily_note=vault.daily_note_prompt,
    )
    stable, volatile = prompt.stable(), prompt.volatile(ConversationState())
    assert "Daily notes (Daily notes core plugin): in 'Journal/Daily/'" in stable
    assert "2026-12-01" not in stable  # the date lives in the volatile part only
    assert "Today's daily note: Journal/Daily/2026-12-01 Tuesday.md (does not exist yet)." in (
        volatile
    )


async def test_writing_a_new_daily_note_starts_from_its_template(vault: Vault) -> None:
    today = dt.datetime.now(ZoneInfo("Europe/Paris"))
    rel = f"Journal/Daily/{format_moment('YYYY-MM-DD dddd', today)}.md"
    registry = ToolRegistry(vault_tools(vault))
    out = await registry.run("write_file", {"path": rel, "content": "- call the plumber\n"})
    assert "starting from the daily-note template Templates/Daily.md" in out.content
    title = rel.rsplit("/", 1)[1][:-3]
    text = (vault.root / rel).read_text(encoding="utf-8")
    assert text == f"# {title}\n\n## Tasks\n\n- call the plumber\n"
    # Overwriting it, or writing an ordinary note, uses no template.
    again = await registry.run("write_file", {"path": rel, "content": "replaced\n"})
    assert "template" not in again.content
    other = await registry.run("write_file", {"path": "Journal/Daily/Ideas.md", "content": "x"})
    assert "template" not in other.content
