"""The vault's search and link index: SQLite FTS5 in `<vault>/.smarthole/index.sqlite3`.

`search_notes` ranks notes the way people ask for them (BM25 over the title, aliases,
headings, tags, properties, folder names and body, with Porter stemming and accent folding),
and `get_links` answers "what links here" without reading the vault. Both come from one index
that lives for the life of the service:

- built in a background thread (the service serves at once; searches meanwhile say the
  index is still being built), and brought up to date on each start by comparing each file's
  signature (inode, size, mtime) and then its content hash, so an unchanged vault costs a walk;
- kept fresh while running by inotify (`watch.Watcher`, drained every ~0.2 s, debounced) and
  synchronously by the product's own writes (`Vault` calls `changed`);
- written in batches of transactions (WAL), so a crash mid-build leaves a usable index that
  the next start completes; a corrupt file or an older schema is deleted and rebuilt.

Protected and hidden folders are never walked (`listing.walk`), so never indexed. Links are
found by `links.find_links` and resolved at query time by `resolver.LinkResolver`, the same
code that keeps links right when notes move.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import itertools
import logging
import multiprocessing
import os
import re
import sqlite3
import stat
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smarthole_notes.vault import frontmatter
from smarthole_notes.vault.cache import RACY_NS
from smarthole_notes.vault.errors import VaultError
from smarthole_notes.vault.files import read_bytes
from smarthole_notes.vault.links import find_links
from smarthole_notes.vault.listing import Entry, walk
from smarthole_notes.vault.names import is_hidden, is_markdown
from smarthole_notes.vault.resolver import LinkResolver, lookup_keys, lookup_name
from smarthole_notes.vault.watch import Watcher

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
INDEX_FILE = Path(".smarthole") / "index.sqlite3"
MAX_NOTE_BYTES = 8 * 1024 * 1024  # larger notes are indexed by name only
BATCH = 256  # notes per transaction: a crash loses at most one batch
PARALLEL_FROM = 400  # files to parse before worker processes pay for their start-up
MAX_WORKERS = 4
POLL_SECONDS = 0.2
DEBOUNCE_SECONDS = 0.1
RESCAN_SECONDS = 5.0  # without inotify: how often the vault is compared with the index
LINE_TEXT_CHARS = 240

# Ranking: BM25 in each of four fields, each with its own statistics, summed with weights
# (a linear fusion of per-field BM25), plus two signals that bridge a question's words to a
# note: the text of the lines that link to it (anchor text: how the user's other notes talk
# about it; best line only), and adjacent question words found as a phrase in the body.
# Chosen on bench/search_relevance.py's question set; see its docstring.
TITLE_WEIGHT = 0.5  # file name and aliases
NAMED_WEIGHT = 1.5  # again, when the question holds every word of the title ("kitchen")
META_WEIGHT = 0.5  # headings, tags, properties
BODY_WEIGHT = 1.0
ANCHOR_WEIGHT = 0.5
PHRASE_WEIGHT = 0.5
CANDIDATES = 200  # per field, before fusion
TOKENIZER = "porter unicode61 remove_diacritics 2"

_STOPWORDS = """
    a about above after again all am an and any are as at be been before being below between
    both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours yourself
    yourselves get use using want way ok okay please tell show find
"""
STOPWORDS = frozenset(_STOPWORDS.split())
_WORD = re.compile(r"\w+")

_SCHEMA = f"""
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE files(
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    ino INTEGER, size INTEGER, mtime_ns INTEGER,  -- mtime_ns -1: check the content again
    hash TEXT,
    note INTEGER NOT NULL,
    title TEXT NOT NULL
);
CREATE VIRTUAL TABLE fts_title USING fts5(title, aliases, tokenize="{TOKENIZER}");
CREATE VIRTUAL TABLE fts_meta USING fts5(headings, tags, properties, tokenize="{TOKENIZER}");
CREATE VIRTUAL TABLE fts_body USING fts5(body, tokenize="{TOKENIZER}");
CREATE VIRTUAL TABLE fts_links USING fts5(text, tokenize="{TOKENIZER}");
CREATE TABLE tags(file_id INTEGER NOT NULL, tag TEXT NOT NULL);
CREATE INDEX tags_tag ON tags(tag);
CREATE INDEX tags_file ON tags(file_id);
CREATE TABLE links(
    id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL, line INTEGER NOT NULL, embed INTEGER NOT NULL,
    target TEXT NOT NULL, subpath TEXT NOT NULL, key TEXT NOT NULL, key2 TEXT, text TEXT NOT NULL
);
CREATE INDEX links_key ON links(key);
CREATE INDEX links_key2 ON links(key2);
CREATE INDEX links_file ON links(file_id);
PRAGMA user_version = {SCHEMA_VERSION};
"""


# -- what the index answers -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexStatus:
    """For the chat page and the log: `state` is idle, building, ready or failed."""

    state: str
    notes: int
    files: int
    done: int  # files examined by the running build
    total: int  # files the running build examines (0 until the walk is done)
    last_update: float | None  # epoch seconds of the last change taken in
    disk_bytes: int
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.state == "building":
            progress = f" ({self.done:,} of {self.total:,} files)" if self.total else ""
            return f"building the search index{progress}"
        if self.state == "failed":
            return f"the search index failed: {self.error}"
        if self.state == "idle":
            return "the search index has not been built yet"
        return f"{self.notes:,} notes indexed"


@dataclass(frozen=True, slots=True)
class NoteHit:
    rel: str
    title: str
    snippet: str
    score: float


@dataclass(frozen=True, slots=True)
class LinkRow:
    source: str  # the note holding the link
    line: int
    text: str  # the line, trimmed
    target: str  # as written
    subpath: str
    embed: bool
    resolved: str | None


@dataclass(frozen=True, slots=True)
class NoteLinks:
    rel: str
    outgoing: list[LinkRow]
    backlinks: list[LinkRow]


# -- reading one note -----------------------------------------------------------------------


@dataclass
class _Parsed:
    rel: str
    signature: tuple[int, int, int]
    hash: str | None
    note: bool
    columns: tuple[str, ...] = ()
    tags: list[str] = field(default_factory=list)
    links: list[tuple[int, int, str, str, str, str | None, str]] = field(default_factory=list)
    unchanged: bool = False  # same content hash as indexed: only the signature changes


def _title(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    return name[:-3] if is_markdown(name) else name


def _folder_words(rel: str) -> str:
    return " ".join(rel.split("/")[:-1])


def _line_starts(text: str) -> list[int]:
    starts = [0]
    at = text.find("\n")
    while at >= 0:
        starts.append(at + 1)
        at = text.find("\n", at + 1)
    return starts


def parse_note(rel: str, text: str) -> tuple[tuple[str, ...], list[str], list[Any]]:
    """The index's columns, tags and links of one note."""
    found = frontmatter.analyse(text)
    props = found.properties
    aliases = frontmatter.aliases(props)
    others = " ".join(
        f"{key} {frontmatter.property_text(value)}"
        for key, value in props.items()
        if key not in ("tags", "tag", "aliases", "alias")
    )
    tags_text = " ".join(tag.replace("/", " ") for tag in found.tags)
    columns = (
        _title(rel),
        " ".join(aliases),
        " ".join(found.headings),
        tags_text,
        others,
        _folder_words(rel),
        found.body,
    )
    links: list[Any] = []
    if "[[" in text or "](" in text:
        starts = _line_starts(text)
        for link in find_links(text):
            number = bisect.bisect_right(starts, link.start)
            begin = starts[number - 1]
            end = text.find("\n", begin)
            line = text[begin : end if end >= 0 else len(text)].strip()
            keys = lookup_keys(link.target)
            links.append(
                (
                    number,
                    int(link.embed),
                    link.target,
                    link.subpath,
                    keys[0],
                    keys[1] if len(keys) > 1 else None,
                    line[:LINE_TEXT_CHARS],
                )
            )
    return columns, found.tags, links


def query_words(query: str) -> list[str]:
    """The words of a question that say what it is about (stop words dropped)."""
    words = [w for w in _WORD.findall(query.lower()) if w.strip("_")]
    meaningful = [w for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return meaningful or words


def _plain_words(text: str) -> set[str]:
    """Meaningful words folded for comparison (case, accents, a plural 's')."""
    folded = "".join(
        ch for ch in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(ch)
    )
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in query_words(folded)}


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _fts_query(query: str) -> str | None:
    """A natural-language question as an FTS5 OR-query of its meaningful words."""
    chosen = list(dict.fromkeys(query_words(query)))
    return " OR ".join(_quoted(w) for w in chosen) if chosen else None


def _phrase_query(query: str) -> str | None:
    """Adjacent meaningful words as phrases ("settings files"): words said together."""
    words = query_words(query)
    pairs = list(dict.fromkeys(f"{a} {b}" for a, b in itertools.pairwise(words)))
    return " OR ".join(_quoted(p) for p in pairs) if pairs else None


def read_file(
    rel: str,
    real: str,
    signature: tuple[int, int, int],
    known: Callable[[str], bool] = lambda digest: False,
) -> _Parsed | None:
    """Read one file and parse it unless `known(content hash)`; None if it vanished."""
    racy = time.time_ns() - signature[2] < RACY_NS
    kept = (signature[0], signature[1], -1 if racy else signature[2])
    if not is_markdown(rel):
        return _Parsed(
            rel, kept, None, False, (_title(rel), "", "", "", "", _folder_words(rel), "")
        )
    try:
        data = read_bytes(Path(real), MAX_NOTE_BYTES)
    except FileNotFoundError:
        return None
    except (OSError, VaultError):
        data = b""
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    if known(digest):
        return _Parsed(rel, kept, digest, True, unchanged=True)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if "\x00" in text[:8192]:
        text = ""
    columns, tags, links = parse_note(rel, text)
    return _Parsed(rel, kept, digest, True, columns, tags, links)


PARENT_CHECK_SECONDS = 1.0


def _exit_with_parent(parent: int) -> None:
    """In each worker: end when the service does. A service killed outright (SIGKILL, a
    crash) cannot shut its pool down, and an idle worker would otherwise wait for work forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _read_in_worker(job: tuple[str, str, tuple[int, int, int]]) -> _Parsed | None:
    return read_file(*job)


# -- the index ------------------------------------------------------------------------------


class NoteIndex:
    """One vault's index. Blocking methods; safe to call from any thread."""

    def __init__(self, root: Path, *, watch: bool = True) -> None:
        self.root = Path(root)
        self.path = self.root / INDEX_FILE
        self.watch = watch
        self.on_change: list[Any] = []  # callbacks(status) after each applied change
        self._lock = threading.RLock()  # the connection and the resolver
        self._db: sqlite3.Connection | None = None
        self._resolver = LinkResolver()
        self._state = "idle"
        self._error: str | None = None
        self._done = 0
        self._total = 0
        self._last_update: float | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watcher: Watcher | None = None

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Build or update the index in the background, then keep it fresh. Idempotent."""
        with self._lock:
            if self._thread is not None:
                return
            self._state = "building"
            self._thread = threading.Thread(target=self._run, name="note-index", daemon=True)
            self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None

    def _run(self) -> None:
        try:
            began = time.monotonic()
            self._open()
            self.sync(initial=True)
            self._ready.set()
            self._state = "ready"
            log.info(
                "Search index ready: %s notes in %.1f s (%s)",
                f"{self.status().notes:,}",
                time.monotonic() - began,
                self.path,
            )
            self._keep_fresh()
        except Exception as exc:  # the service goes on without ranked search
            log.exception("The search index failed")
            self._error = f"{type(exc).__name__}: {exc}"
            self._state = "failed"
            self._ready.set()

    # -- the database ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _open(self) -> None:
        """Open the index; an unreadable file or an older schema is rebuilt from scratch."""
        with self._lock:
            try:
                db = self._connect()
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version == SCHEMA_VERSION:
                    check = db.execute("PRAGMA quick_check(1)").fetchone()[0]
                    if check != "ok":
                        raise sqlite3.DatabaseError(check)
                    db.execute("SELECT count(*) FROM fts_body WHERE fts_body MATCH 'x'").fetchone()
                elif version != 0:
                    log.info("Search index from schema %s: rebuilding it", version)
                    db.close()
                    self._delete_files()
                    db = self._connect()
            except sqlite3.DatabaseError as exc:
                log.warning("Search index unusable (%s): rebuilding it", exc)
                with contextlib.suppress(Exception):
                    db.close()
                self._delete_files()
                db = self._connect()
            if db.execute("PRAGMA user_version").fetchone()[0] == 0:
                db.executescript(_SCHEMA)
            self._db = db
            self._resolver = LinkResolver(row[0] for row in db.execute("SELECT path FROM files"))
            value = db.execute("SELECT value FROM meta WHERE key='last_update'").fetchone()
            self._last_update = float(value[0]) if value else None

    def _delete_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(Exception):
                os.unlink(str(self.path) + suffix)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise VaultError("the search index is not open yet")
        return self._db

    # -- bringing it up to date ---------------------------------------------------------------

    def sync(self, *, initial: bool = False) -> int:
        """Compare the whole vault with the index and take in the differences."""
        watcher = self._watcher
        if self.watch and watcher is None and not self._stop.is_set():
            watcher = self._watcher = Watcher.create()
        if watcher is not None:
            watcher.forget()
            watcher.changes()  # what is queued is covered by this walk
            watcher.watch(str(self.root), "")
        entries: list[Entry] = []
        for entry in walk(self.root, self.root, "", include_dirs=True):
            if entry.is_dir:
                if watcher is not None and entry.path == entry.real:
                    watcher.watch(entry.path, entry.rel)
            else:
                entries.append(entry)
        with self._lock:
            known = {
                row[0]: (row[1], row[2], row[3])
                for row in self._conn().execute("SELECT path, ino, size, mtime_ns FROM files")
            }
        self._total, self._done = len(entries), 0
        changed = [e for e in entries if known.get(e.rel) != (e.ino, e.size, e.mtime_ns)]
        self._done = len(entries) - len(changed)
        seen = {e.rel for e in entries}
        gone = [rel for rel in known if rel not in seen]
        applied = len(gone)
        if gone:
            self._apply([], gone)
        last_log = time.monotonic()
        for batch in self._parsed(changed):
            if self._stop.is_set():
                break
            applied += self._apply([p for p in batch if p is not None], [])
            self._done += len(batch)
            if initial and time.monotonic() - last_log > 5:
                last_log = time.monotonic()
                log.info("Indexing notes: %s of %s files", f"{self._done:,}", f"{self._total:,}")
        return applied

    def _parsed(self, entries: list[Entry]) -> Iterator[list[_Parsed | None]]:
        """The entries read and parsed, a batch at a time; in worker processes when there
        are many (parsing Markdown is CPU work: it then uses every core and leaves the
        service's own process free)."""
        jobs = [(e.rel, e.real, (e.ino, e.size, e.mtime_ns)) for e in entries]
        workers = min(MAX_WORKERS, os.cpu_count() or 1)
        if len(jobs) < PARALLEL_FROM or workers < 2:
            for start in range(0, len(jobs), BATCH):
                yield [self._read(*job) for job in jobs[start : start + BATCH]]
            return
        context = multiprocessing.get_context("spawn")  # no fork of a threaded service
        done = 0
        try:
            with ProcessPoolExecutor(
                workers, mp_context=context, initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            ) as pool:  # fmt: skip
                for start in range(0, len(jobs), BATCH):
                    if self._stop.is_set():
                        return
                    chunk = jobs[start : start + BATCH]
                    results = list(pool.map(_read_in_worker, chunk, chunksize=16))
                    yield [self._unless_known(item) for item in results]
                    done = start + len(chunk)
        except (OSError, BrokenProcessPool) as exc:
            log.warning("Indexing in worker processes failed (%s); going on in this one", exc)
            for start in range(done, len(jobs), BATCH):
                yield [self._read(*job) for job in jobs[start : start + BATCH]]

    def _unless_known(self, item: _Parsed | None) -> _Parsed | None:
        """A worker parsed without asking the index: same content as indexed is no change."""
        if item is None or not item.note:
            return item
        with self._lock:
            row = (
                self._conn()
                .execute("SELECT hash FROM files WHERE path = ?", (item.rel,))
                .fetchone()
            )
        if row is not None and row[0] == item.hash:
            return _Parsed(item.rel, item.signature, item.hash, True, unchanged=True)
        return item

    def changed(self, rels: Iterable[str]) -> None:
        """These vault-relative paths (files or folders) changed: take them in now."""
        if self._db is None:
            return
        found: list[_Parsed] = []
        gone: list[str] = []
        for rel in dict.fromkeys(r.strip("/") for r in rels):
            if not rel or any(is_hidden(part) for part in rel.split("/")):
                continue
            path = os.path.join(self.root, *rel.split("/"))
            try:
                info = os.lstat(path)
                real = path
                if stat.S_ISLNK(info.st_mode):
                    real = os.path.realpath(path)
                    if not real.startswith(str(self.root).rstrip(os.sep) + os.sep):
                        raise FileNotFoundError(path)
                    info = os.stat(real)
            except OSError:
                gone.append(rel)
                gone.extend(self._under(rel))
                continue
            if stat.S_ISDIR(info.st_mode):
                gone.extend(self._under(rel))  # what is still there is added back below
                for entry in walk(self.root, Path(path), rel, include_dirs=False):
                    parsed = self._read(
                        entry.rel, entry.real, (entry.ino, entry.size, entry.mtime_ns)
                    )
                    if parsed is not None:
                        found.append(parsed)
                present = {p.rel for p in found}
                gone = [g for g in gone if g not in present]
            elif stat.S_ISREG(info.st_mode):
                parsed = self._read(rel, real, (info.st_ino, info.st_size, info.st_mtime_ns))
                if parsed is not None:
                    found.append(parsed)
            else:
                gone.append(rel)
        if found or gone:
            self._apply(found, gone)

    def _under(self, rel: str) -> list[str]:
        prefix = rel + "/"
        with self._lock:
            return [
                row[0]
                for row in self._conn().execute(
                    "SELECT path FROM files WHERE substr(path, 1, ?) = ?", (len(prefix), prefix)
                )
            ]

    def _read(self, rel: str, real: str, signature: tuple[int, int, int]) -> _Parsed | None:
        """Read one file and, if its content is new, parse it (outside the lock); None if
        it vanished meanwhile."""

        def known(digest: str) -> bool:
            with self._lock:
                row = (
                    self._conn().execute("SELECT hash FROM files WHERE path = ?", (rel,)).fetchone()
                )
            return row is not None and row[0] == digest

        return read_file(rel, real, signature, known)

    def _apply(self, parsed: list[_Parsed], gone: list[str]) -> int:
        """Write one batch in one transaction."""
        if not parsed and not gone:
            return 0
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                for rel in gone:
                    self._remove(db, rel)
                for item in parsed:
                    self._store(db, item)
                now = time.time()
                db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('last_update', ?)", (str(now),)
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._last_update = now
            for rel in gone:
                self._resolver.remove(rel)
            for item in parsed:
                self._resolver.add(item.rel)
        for callback in list(self.on_change):
            with contextlib.suppress(Exception):
                callback(self.status())
        return len(parsed) + len(gone)

    def _remove(self, db: sqlite3.Connection, rel: str) -> None:
        row = db.execute("SELECT id FROM files WHERE path = ?", (rel,)).fetchone()
        if row is None:
            return
        (file_id,) = row
        for table in ("fts_title", "fts_meta", "fts_body"):
            db.execute(f"DELETE FROM {table} WHERE rowid = ?", (file_id,))  # noqa: S608
        db.execute(
            "DELETE FROM fts_links WHERE rowid IN (SELECT id FROM links WHERE file_id = ?)",
            (file_id,),
        )
        db.execute("DELETE FROM tags WHERE file_id = ?", (file_id,))
        db.execute("DELETE FROM links WHERE file_id = ?", (file_id,))
        db.execute("DELETE FROM files WHERE id = ?", (file_id,))

    def _store(self, db: sqlite3.Connection, item: _Parsed) -> None:
        ino, size, mtime_ns = item.signature
        if item.unchanged:
            db.execute(
                "UPDATE files SET ino = ?, size = ?, mtime_ns = ? WHERE path = ?",
                (ino, size, mtime_ns, item.rel),
            )
            return
        self._remove(db, item.rel)
        cursor = db.execute(
            "INSERT INTO files(path, ino, size, mtime_ns, hash, note, title) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (item.rel, ino, size, mtime_ns, item.hash, int(item.note), item.columns[0]),
        )
        file_id = cursor.lastrowid
        if not item.note:
            return
        title, aliases, headings, tags, properties, _folder, body = item.columns
        db.execute(
            "INSERT INTO fts_title(rowid, title, aliases) VALUES (?, ?, ?)",
            (file_id, title, aliases),
        )
        db.execute(
            "INSERT INTO fts_meta(rowid, headings, tags, properties) VALUES (?, ?, ?, ?)",
            (file_id, headings, tags, properties),
        )
        db.execute("INSERT INTO fts_body(rowid, body) VALUES (?, ?)", (file_id, body))
        db.executemany(
            "INSERT INTO tags(file_id, tag) VALUES (?, ?)", [(file_id, t) for t in item.tags]
        )
        for link in item.links:
            cursor = db.execute(
                "INSERT INTO links(file_id, line, embed, target, subpath, key, key2, text) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (file_id, *link),
            )
            if not link[1]:  # an embed's line does not describe what it embeds
                db.execute(
                    "INSERT INTO fts_links(rowid, text) VALUES (?, ?)", (cursor.lastrowid, link[6])
                )

    # -- staying fresh ---------------------------------------------------------------------------

    def _keep_fresh(self) -> None:
        """Drain inotify's queue every POLL_SECONDS; without inotify, rescan now and then."""
        quiet_since = time.monotonic()
        while not self._stop.wait(POLL_SECONDS):
            watcher = self._watcher
            if watcher is None:
                if time.monotonic() - quiet_since >= RESCAN_SECONDS:
                    self._safely(self.sync)
                    quiet_since = time.monotonic()
                continue
            changes = watcher.changes()
            if not changes.rescan and not changes.paths:
                continue
            # Debounce: an editor's save is often several events in a few milliseconds.
            self._stop.wait(DEBOUNCE_SECONDS)
            more = watcher.changes()
            if changes.rescan or more.rescan:
                self._safely(self.sync)
            else:
                paths = changes.paths | more.paths
                self._safely(lambda paths=paths: self.changed(paths))

    def _safely(self, job: Any) -> None:
        try:
            job()
        except sqlite3.DatabaseError as exc:
            log.warning("Search index unusable (%s): rebuilding it", exc)
            with self._lock:
                with contextlib.suppress(Exception):
                    self._conn().close()
                self._db = None
                self._delete_files()
            self._open()
            self.sync()
        except Exception:
            log.exception("Updating the search index failed; it will be retried")

    # -- queries -------------------------------------------------------------------------------

    def status(self) -> IndexStatus:
        notes = files = 0
        if self._db is not None:
            with self._lock:
                if self._db is not None:
                    files, notes = self._db.execute(
                        "SELECT count(*), coalesce(sum(note), 0) FROM files"
                    ).fetchone()
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(Exception):
                size += os.path.getsize(str(self.path) + suffix)
        return IndexStatus(
            self._state,
            notes,
            files,
            self._done,
            self._total,
            self._last_update,
            size,
            self._error,
        )

    def search(
        self, query: str, limit: int = 10, *, folder: str = "", tag: str = ""
    ) -> list[NoteHit]:
        """The notes that best answer `query`, best first."""
        match = _fts_query(query)
        if match is None:
            return []
        allowed = ""
        params: list[Any] = []
        if folder:
            prefix = folder.strip("/") + "/"
            allowed += " AND substr(path, 1, ?) = ?"
            params += [len(prefix), prefix]
        if tag:
            wanted = tag.strip().lstrip("#").strip("/").lower()
            allowed += (
                " AND id IN (SELECT file_id FROM tags WHERE tag = ? OR substr(tag, 1, ?) = ?)"
            )
            params += [wanted, len(wanted) + 1, wanted + "/"]
        scores: dict[int, float] = {}

        def add(weight: float, rows: Iterable[tuple[int, float]]) -> None:
            for file_id, bm25 in rows:  # FTS5's bm25() is negative: lower is better
                scores[file_id] = scores.get(file_id, 0.0) - weight * bm25

        with self._lock:
            db = self._conn()
            titles = self._field(db, "fts_title", match, allowed, params)
            add(TITLE_WEIGHT, titles)
            add(NAMED_WEIGHT, self._named(db, query, titles))
            for table, weight in (("fts_meta", META_WEIGHT), ("fts_body", BODY_WEIGHT)):
                add(weight, self._field(db, table, match, allowed, params))
            phrases = _phrase_query(query)
            if phrases is not None:
                add(PHRASE_WEIGHT, self._field(db, "fts_body", phrases, allowed, params))
            add(ANCHOR_WEIGHT, self._anchors(db, match, allowed, params))
            best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
            hits: list[NoteHit] = []
            for file_id, score in best:
                path, title = db.execute(
                    "SELECT path, title FROM files WHERE id = ?", (file_id,)
                ).fetchone()
                hits.append(NoteHit(path, title, self._snippet(db, file_id, match), score))
        return hits

    @staticmethod
    def _named(
        db: sqlite3.Connection, query: str, titles: list[tuple[int, float]]
    ) -> list[tuple[int, float]]:
        """The notes the question names: every word of the title is in the question."""
        said = _plain_words(query)
        named: list[tuple[int, float]] = []
        for file_id, bm25 in titles:
            row = db.execute("SELECT title FROM files WHERE id = ?", (file_id,)).fetchone()
            words = _plain_words(row[0]) if row else set()
            if words and words <= said:
                named.append((file_id, bm25))
        return named

    @staticmethod
    def _field(
        db: sqlite3.Connection, table: str, match: str, allowed: str, params: list[Any]
    ) -> list[tuple[int, float]]:
        restrict = f" AND rowid IN (SELECT id FROM files WHERE 1{allowed})" if allowed else ""  # noqa: S608
        return db.execute(
            f"SELECT rowid, bm25({table}) FROM {table} WHERE {table} MATCH ?{restrict} "  # noqa: S608
            f"ORDER BY 2 LIMIT {CANDIDATES}",
            [match, *params],
        ).fetchall()

    def _anchors(
        self, db: sqlite3.Connection, match: str, allowed: str, params: list[Any]
    ) -> list[tuple[int, float]]:
        """Per note, the best line elsewhere that links to it and matches the question."""
        best: dict[str, float] = {}
        rows = db.execute(
            "SELECT files.path, links.target, bm25(fts_links) FROM fts_links "  # noqa: S608
            "JOIN links ON links.id = fts_links.rowid JOIN files ON files.id = links.file_id "
            f"WHERE fts_links MATCH ? ORDER BY 3 LIMIT {CANDIDATES * 2}",
            (match,),
        ).fetchall()
        for source, target, bm25 in rows:
            resolved = self._resolver.resolve(target, source)
            if resolved is not None and resolved != source:
                best[resolved] = min(best.get(resolved, 0.0), bm25)
        if not best:
            return []
        found: list[tuple[int, float]] = []
        for path, bm25 in best.items():
            row = db.execute(
                f"SELECT id FROM files WHERE path = ? AND note = 1{allowed}",  # noqa: S608
                [path, *params],
            ).fetchone()
            if row is not None:
                found.append((row[0], bm25))
        return found

    @staticmethod
    def _snippet(db: sqlite3.Connection, file_id: int, match: str) -> str:
        row = db.execute(
            "SELECT snippet(fts_body, 0, '**', '**', '…', 14) FROM fts_body "
            "WHERE fts_body MATCH ? AND rowid = ?",
            (match, file_id),
        ).fetchone()
        if row is None:
            row = db.execute(
                "SELECT substr(body, 1, 160) FROM fts_body WHERE rowid = ?", (file_id,)
            ).fetchone()
        return " ".join((row[0] if row else "").split())

    def links(self, rel: str) -> NoteLinks:
        """`rel`'s outgoing links (resolved) and every link to it, with their lines."""
        with self._lock:
            db = self._conn()
            outgoing = [
                LinkRow(
                    rel,
                    line,
                    text,
                    target,
                    subpath,
                    bool(embed),
                    self._resolver.resolve(target, rel),
                )
                for line, embed, target, subpath, text in db.execute(
                    "SELECT line, embed, target, subpath, text FROM links JOIN files "
                    "ON files.id = links.file_id WHERE files.path = ? ORDER BY line",
                    (rel,),
                )
            ]
            backlinks = list(self._linking(db, [rel]))
        return NoteLinks(rel, outgoing, backlinks)

    def _linking(self, db: sqlite3.Connection, targets: list[str]) -> Iterator[LinkRow]:
        wanted = set(targets)
        for name in sorted({lookup_name(t) for t in targets}):
            rows = db.execute(
                "SELECT files.path, line, embed, target, subpath, text FROM links JOIN files "
                "ON files.id = links.file_id WHERE key = ? OR key2 = ? ORDER BY files.path, line",
                (name, name),
            ).fetchall()
            for source, line, embed, target, subpath, text in rows:
                resolved = self._resolver.resolve(target, source)
                if resolved in wanted:
                    yield LinkRow(source, line, text, target, subpath, bool(embed), resolved)

    def linking_notes(self, rels: Iterable[str]) -> set[str] | None:
        """Notes outside `rels` (files, or folders with what they hold) that link into them;
        None while the index is not ready."""
        if not self._ready.is_set() or self._db is None:
            return None
        targets: list[str] = []
        for rel in rels:
            targets.append(rel)
            targets.extend(self._under(rel))
        inside = set(targets)
        with self._lock:
            return {row.source for row in self._linking(self._conn(), targets)} - inside
