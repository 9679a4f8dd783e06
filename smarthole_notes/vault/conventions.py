"""Obsidian's own conventions for a vault: daily notes, templates, attachments, new notes.

Read from the vault's `.obsidian/` settings (the Daily notes core plugin's `daily-notes.json`,
the Periodic Notes plugin's `plugins/periodic-notes/data.json` when that plugin is enabled,
`templates.json`, `app.json`), so the agent files a note where Obsidian would. Dates are
written with Moment.js format strings, which `format_moment` renders as Moment.js does in its
English locale (`YYYY-MM-DD dddd`, `[Week] W`, `Do MMMM`, ...). Template variables are filled
in as Obsidian's daily notes fill them: `{{date}}`, `{{time}}`, `{{title}}`, `{{date:FORMAT}}`,
`{{date+1d:FORMAT}}`, `{{yesterday}}`, `{{tomorrow}}`.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smarthole_notes.vault.errors import VaultError
from smarthole_notes.vault.files import read_bytes
from smarthole_notes.vault.obsidian import _read_json
from smarthole_notes.vault.paths import Access, PathResolver

DEFAULT_DATE_FORMAT = "YYYY-MM-DD"
DEFAULT_TIME_FORMAT = "HH:mm"
DAILY_SEARCH_DAYS = 366  # a new note's path is compared with the daily notes this far around

_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
]  # fmt: skip
_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_TOKEN = re.compile(
    r"\[[^\]]*\]|YYYYYY|YYYY|YY|Y|Qo|Q|MMMM|MMM|Mo|MM|M|DDDD|DDDo|DDD|Do|DD|D|dddd|ddd|dd|do"
    r"|d|E|e|wo|ww|w|Wo|WW|W|gggg|gg|GGGG|GG|HH|H|hh|h|kk|k|mm|m|ss|s|SSS|SS|S|A|a|X|x|ZZ|Z"
)


def _ordinal(number: int) -> str:
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


def _first_week_offset(year: int, dow: int, doy: int) -> int:
    """Moment's offset of week 1 (English locale: weeks start Sunday, week 1 holds Jan 1)."""
    fwd = 7 + dow - doy
    weekday = (dt.date(year, 1, fwd).isoweekday()) % 7  # Sunday = 0
    return -((7 + weekday - dow) % 7) + fwd - 1


def _weeks_in_year(year: int, dow: int, doy: int) -> int:
    days = 366 if dt.date(year, 12, 31).timetuple().tm_yday == 366 else 365
    return (days - _first_week_offset(year, dow, doy) + _first_week_offset(year + 1, dow, doy)) // 7


def _locale_week(day: dt.date, dow: int = 0, doy: int = 6) -> tuple[int, int]:
    """(week, week-year) as Moment's `w` and `gggg` compute them."""
    year = day.year
    week = (day.timetuple().tm_yday - _first_week_offset(year, dow, doy) - 1) // 7 + 1
    if week < 1:
        return week + _weeks_in_year(year - 1, dow, doy), year - 1
    if week > _weeks_in_year(year, dow, doy):
        return week - _weeks_in_year(year, dow, doy), year + 1
    return week, year


def _offset(moment: dt.datetime, colon: bool) -> str:
    delta = moment.utcoffset() or dt.timedelta(0)
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"


def format_moment(fmt: str, moment: dt.datetime) -> str:
    """`moment.format(fmt)` in Moment.js's English locale."""
    day = moment.date()
    weekday = day.isoweekday() % 7  # Sunday = 0, as Moment's `d`
    hour12 = moment.hour % 12 or 12

    def token(match: re.Match[str]) -> str:
        t = match.group(0)
        if t.startswith("["):
            return t[1:-1]
        table: dict[str, Callable[[], str]] = {
            "YYYYYY": lambda: f"{'+' if moment.year >= 0 else '-'}{moment.year:06d}",
            "YYYY": lambda: f"{moment.year:04d}",
            "YY": lambda: f"{moment.year % 100:02d}",
            "Y": lambda: str(moment.year),
            "Q": lambda: str((moment.month - 1) // 3 + 1),
            "Qo": lambda: _ordinal((moment.month - 1) // 3 + 1),
            "MMMM": lambda: _MONTHS[moment.month - 1],
            "MMM": lambda: _MONTHS[moment.month - 1][:3],
            "MM": lambda: f"{moment.month:02d}",
            "Mo": lambda: _ordinal(moment.month),
            "M": lambda: str(moment.month),
            "DDDD": lambda: f"{day.timetuple().tm_yday:03d}",
            "DDDo": lambda: _ordinal(day.timetuple().tm_yday),
            "DDD": lambda: str(day.timetuple().tm_yday),
            "DD": lambda: f"{moment.day:02d}",
            "Do": lambda: _ordinal(moment.day),
            "D": lambda: str(moment.day),
            "dddd": lambda: _DAYS[weekday],
            "ddd": lambda: _DAYS[weekday][:3],
            "dd": lambda: _DAYS[weekday][:2],
            "do": lambda: _ordinal(weekday),
            "d": lambda: str(weekday),
            "e": lambda: str(weekday),
            "E": lambda: str(day.isoweekday()),
            "w": lambda: str(_locale_week(day)[0]),
            "ww": lambda: f"{_locale_week(day)[0]:02d}",
            "wo": lambda: _ordinal(_locale_week(day)[0]),
            "gggg": lambda: f"{_locale_week(day)[1]:04d}",
            "gg": lambda: f"{_locale_week(day)[1] % 100:02d}",
            "W": lambda: str(day.isocalendar()[1]),
            "WW": lambda: f"{day.isocalendar()[1]:02d}",
            "Wo": lambda: _ordinal(day.isocalendar()[1]),
            "GGGG": lambda: f"{day.isocalendar()[0]:04d}",
            "GG": lambda: f"{day.isocalendar()[0] % 100:02d}",
            "HH": lambda: f"{moment.hour:02d}",
            "H": lambda: str(moment.hour),
            "hh": lambda: f"{hour12:02d}",
            "h": lambda: str(hour12),
            "kk": lambda: f"{moment.hour or 24:02d}",
            "k": lambda: str(moment.hour or 24),
            "mm": lambda: f"{moment.minute:02d}",
            "m": lambda: str(moment.minute),
            "ss": lambda: f"{moment.second:02d}",
            "s": lambda: str(moment.second),
            "SSS": lambda: f"{moment.microsecond // 1000:03d}",
            "SS": lambda: f"{moment.microsecond // 10000:02d}",
            "S": lambda: str(moment.microsecond // 100000),
            "A": lambda: "AM" if moment.hour < 12 else "PM",
            "a": lambda: "am" if moment.hour < 12 else "pm",
            "X": lambda: str(int(moment.timestamp())),
            "x": lambda: str(int(moment.timestamp() * 1000)),
            "Z": lambda: _offset(moment, True),
            "ZZ": lambda: _offset(moment, False),
        }
        return table[t]()

    return _TOKEN.sub(token, fmt)


# -- the vault's settings --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyNotes:
    folder: str  # vault-relative, "" for the root
    format: str  # Moment.js
    template: str | None  # vault-relative path of the template note (with .md)
    source: str  # which plugin says so

    def path_for(self, day: dt.datetime) -> str:
        name = format_moment(self.format or DEFAULT_DATE_FORMAT, day).strip("/")
        return posixpath.join(self.folder, name) + ".md" if self.folder else name + ".md"


@dataclass(frozen=True, slots=True)
class Conventions:
    daily: DailyNotes | None
    templates_folder: str | None
    template_date_format: str
    template_time_format: str
    attachments: str  # Obsidian's attachmentFolderPath ("/" root, "./" beside the note, ...)
    new_notes: str  # Obsidian's newFileLocation: root, current or folder
    new_notes_folder: str

    def describe(self) -> str:
        """The stable part of the prompt: where things go (no dates)."""
        lines: list[str] = []
        if self.daily is not None:
            where = f"'{self.daily.folder}/'" if self.daily.folder else "the vault root"
            line = (
                f"- Daily notes ({self.daily.source}): in {where}, named with the Moment.js "
                f"format '{self.daily.format}'"
            )
            if self.daily.template:
                line += (
                    f"; new daily notes are created from the template '{self.daily.template}' "
                    "(write_file on a daily note that does not exist yet applies it for you: "
                    "give only what to add)"
                )
            lines.append(line + ".")
        if self.templates_folder:
            lines.append(f"- Templates folder: '{self.templates_folder}/'.")
        attachments = self.attachments.strip()
        if attachments in ("", "/"):
            lines.append("- Attachments (images, PDFs) go in the vault root.")
        elif attachments == "./":
            lines.append("- Attachments go in the same folder as the note they belong to.")
        elif attachments.startswith("./"):
            lines.append(
                f"- Attachments go in the subfolder '{attachments[2:]}/' of the note's folder."
            )
        else:
            lines.append(f"- Attachments go in '{attachments.strip('/')}/'.")
        if self.new_notes == "folder" and self.new_notes_folder:
            lines.append(f"- New notes go in '{self.new_notes_folder}/' unless said otherwise.")
        elif self.new_notes == "current":
            lines.append("- New notes go in the same folder as the note being worked on.")
        return "Obsidian's settings for this vault:\n" + "\n".join(lines)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _safe_json(resolver: PathResolver, name: str) -> Any:
    try:
        return _read_json(resolver, name)
    except VaultError:
        return None


def _folder(value: Any) -> str:
    return str(value).strip().strip("/") if isinstance(value, str) else ""


def _note_path(value: Any) -> str | None:
    text = _folder(value)
    if not text:
        return None
    return text if text.lower().endswith(".md") else text + ".md"


def _core_enabled(resolver: PathResolver, plugin: str, default: bool) -> bool:
    core = _safe_json(resolver, "core-plugins.json")
    if isinstance(core, list):
        return plugin in core
    if isinstance(core, dict):
        return bool(core.get(plugin, default))
    return default


def read_conventions(resolver: PathResolver) -> Conventions | None:
    """The vault's conventions; None when it has no `.obsidian/` folder (a plain folder)."""
    if not (resolver.root / ".obsidian").is_dir():
        return None
    daily: DailyNotes | None = None
    community = _safe_json(resolver, "community-plugins.json")
    if isinstance(community, list) and "periodic-notes" in community:
        periodic = _dict(
            _dict(_safe_json(resolver, "plugins/periodic-notes/data.json")).get("daily")
        )
        if periodic.get("enabled"):
            daily = DailyNotes(
                _folder(periodic.get("folder")),
                str(periodic.get("format") or DEFAULT_DATE_FORMAT),
                _note_path(periodic.get("template")),
                "Periodic Notes plugin",
            )
    if daily is None and _core_enabled(resolver, "daily-notes", True):
        settings = _dict(_safe_json(resolver, "daily-notes.json"))
        daily = DailyNotes(
            _folder(settings.get("folder")),
            str(settings.get("format") or DEFAULT_DATE_FORMAT),
            _note_path(settings.get("template")),
            "Daily notes core plugin",
        )
    templates = _dict(_safe_json(resolver, "templates.json"))
    app = _dict(_safe_json(resolver, "app.json"))
    return Conventions(
        daily=daily,
        templates_folder=_folder(templates.get("folder")) or None,
        template_date_format=str(templates.get("dateFormat") or DEFAULT_DATE_FORMAT),
        template_time_format=str(templates.get("timeFormat") or DEFAULT_TIME_FORMAT),
        attachments=str(app.get("attachmentFolderPath") or "/"),
        new_notes=str(app.get("newFileLocation") or "root"),
        new_notes_folder=_folder(app.get("newFileFolderPath")),
    )


# -- templates ---------------------------------------------------------------------------------

_VARIABLE = re.compile(r"{{\s*(date|time)\s*(?:([+-]\d+)([yqmwdhs]))?\s*(:.+?)?}}", re.IGNORECASE)
_UNITS = {"y": "years", "q": "quarters", "m": "months", "w": "weeks", "d": "days"}


def _shift(moment: dt.datetime, amount: int, unit: str) -> dt.datetime:
    if unit in ("h", "s"):
        return moment + dt.timedelta(**{"hours" if unit == "h" else "seconds": amount})
    if unit in ("w", "d"):
        return moment + dt.timedelta(days=amount * (7 if unit == "w" else 1))
    months = amount * {"y": 12, "q": 3, "m": 1}[unit]
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    for day in range(moment.day, 0, -1):  # Moment clamps Jan 31 + 1 month to Feb 28/29
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment


def fill_daily_template(template: str, daily: DailyNotes, day: dt.datetime) -> str:
    """A daily note's template with Obsidian's variables filled in for `day` (the time of
    day is `day`'s: pass the current local time on the note's date)."""
    fmt = daily.format or DEFAULT_DATE_FORMAT
    filename = format_moment(fmt, day)
    title = filename.rsplit("/", 1)[-1]
    text = re.sub(r"{{\s*date\s*}}", lambda _: filename, template, flags=re.IGNORECASE)
    text = re.sub(
        r"{{\s*time\s*}}", lambda _: format_moment(DEFAULT_TIME_FORMAT, day), text, flags=re.I
    )
    text = re.sub(r"{{\s*title\s*}}", lambda _: title, text, flags=re.IGNORECASE)

    def variable(match: re.Match[str]) -> str:
        _kind, amount, unit, pattern = match.groups()
        moment = _shift(day, int(amount), unit.lower()) if amount else day
        return format_moment(pattern[1:].strip(), moment) if pattern else format_moment(fmt, moment)

    text = _VARIABLE.sub(variable, text)
    text = re.sub(
        r"{{\s*yesterday\s*}}",
        lambda _: format_moment(fmt, day - dt.timedelta(days=1)),
        text,
        flags=re.IGNORECASE,
    )
    return re.sub(
        r"{{\s*tomorrow\s*}}",
        lambda _: format_moment(fmt, day + dt.timedelta(days=1)),
        text,
        flags=re.IGNORECASE,
    )


def daily_note_date(rel: str, daily: DailyNotes, now: dt.datetime) -> dt.datetime | None:
    """The day whose daily note is at `rel` (within a year of `now`), at `now`'s time."""
    wanted = rel.casefold()
    for offset in range(DAILY_SEARCH_DAYS + 1):
        for sign in (0, 1) if offset else (0,):
            day = now + dt.timedelta(days=-offset if sign else offset)
            if daily.path_for(day).casefold() == wanted:
                return day
    return None


def read_template(resolver: PathResolver, rel: str) -> str | None:
    """A template note's text, read like any note (None if it is missing or refused)."""
    try:
        vp = resolver.resolve(rel, Access.READ)
        if not vp.exists or vp.is_dir:
            return None
        return read_bytes(vp.real).decode("utf-8")
    except (VaultError, OSError, UnicodeDecodeError):
        return None
