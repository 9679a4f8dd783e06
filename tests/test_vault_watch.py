"""The link index learns of changes made outside the Vault API between two moves: from
inotify's queue where it can, by rescanning the vault where it cannot."""

from __future__ import annotations

import errno
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from smarthole_notes.vault import Vault, watch
from smarthole_notes.vault.linkgraph import LinkGraph
from smarthole_notes.vault.watch import Watcher


def inotify_works() -> bool:
    watcher = Watcher.create()
    if watcher is None:
        return False
    watcher.close()
    return True


needs_inotify = pytest.mark.skipif(not inotify_works(), reason="no inotify here")


def write_elsewhere(path: Path, text: str) -> None:
    """Write a file from another process, as Obsidian or a sync client would."""
    code = "import sys; open(sys.argv[1], 'w', encoding='utf-8').write(sys.argv[2])"
    subprocess.run([sys.executable, "-c", code, str(path), text], check=True)


def make_vault(root: Path) -> Vault:
    (root / "A").mkdir(parents=True)
    (root / "A" / "T.md").write_text("t\n")
    (root / "Doc.md").write_text("[[T]]\n")
    for protected in (".obsidian", ".git", ".smarthole", ".trash"):
        (root / protected / "sub").mkdir(parents=True)
        (root / protected / "sub" / "x.md").write_text("[[T]]\n")
    return Vault(root)


@pytest.fixture
def rescans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the link index's full rescans."""
    calls: list[int] = []
    original: Callable[[LinkGraph], None] = LinkGraph._rescan

    def counted(graph: LinkGraph) -> None:
        calls.append(1)
        original(graph)

    monkeypatch.setattr(LinkGraph, "_rescan", counted)
    return calls


def watcher_of(vault: Vault) -> Watcher:
    assert vault._links is not None
    watcher = vault._links._watcher
    assert watcher is not None
    return watcher


@needs_inotify
def test_an_edit_by_another_process_between_two_moves_is_seen_from_inotify(
    tmp_path: Path, rescans: list[int]
) -> None:
    root = tmp_path / "notes"
    vault = make_vault(root)
    vault.move("A/T.md", "A/U.md")  # the first move indexes the vault
    assert (root / "Doc.md").read_text() == "[[U]]\n"
    assert len(rescans) == 1

    write_elsewhere(root / "A" / "New.md", "links to [[U]]\n")  # a new note
    write_elsewhere(root / "Doc.md", "edited [[U]] and [[U|again]]\n")  # an edited one

    outcome = vault.move("A/U.md", "A/V.md")
    assert (root / "A" / "New.md").read_text() == "links to [[V]]\n"
    assert (root / "Doc.md").read_text() == "edited [[V]] and [[V|again]]\n"
    assert (outcome.links, outcome.notes) == (3, 2)
    assert len(rescans) == 1  # known from inotify's queue, not from a rescan


@needs_inotify
def test_a_folder_added_by_another_process_makes_a_rescan(
    tmp_path: Path, rescans: list[int]
) -> None:
    root = tmp_path / "notes"
    vault = make_vault(root)
    vault.move("A/T.md", "A/U.md")
    (root / "B" / "C").mkdir(parents=True)
    write_elsewhere(root / "B" / "C" / "Deep.md", "[[U]]\n")

    vault.move("A/U.md", "A/V.md")
    assert (root / "B" / "C" / "Deep.md").read_text() == "[[V]]\n"
    assert len(rescans) == 2
    assert {"B", "B/C"} <= set(watcher_of(vault)._folders.values())  # watched from now on

    write_elsewhere(root / "B" / "C" / "Deep.md", "again [[V]]\n")
    vault.move("A/V.md", "A/W.md")
    assert (root / "B" / "C" / "Deep.md").read_text() == "again [[W]]\n"
    assert len(rescans) == 2


@needs_inotify
def test_a_queue_overflow_makes_a_rescan(
    tmp_path: Path, rescans: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from inotify_simple import Event, flags  # type: ignore[import-untyped]

    root = tmp_path / "notes"
    vault = make_vault(root)
    vault.move("A/T.md", "A/U.md")
    inotify = watcher_of(vault)._inotify
    real_read = inotify.read

    def overflowed(timeout: int | None = None) -> list[object]:
        real_read(timeout=0)  # the kernel dropped what it had: only the overflow is left
        return [Event(-1, flags.Q_OVERFLOW, 0, "")]

    monkeypatch.setattr(inotify, "read", overflowed)
    write_elsewhere(root / "Doc.md", "lost event [[U]]\n")
    vault.move("A/U.md", "A/V.md")
    assert (root / "Doc.md").read_text() == "lost event [[V]]\n"
    assert len(rescans) == 2


@needs_inotify
def test_a_folder_that_cannot_be_watched_makes_every_refresh_a_rescan(
    tmp_path: Path, rescans: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "notes"
    vault = make_vault(root)
    graph = vault._link_graph()
    inotify = watcher_of(vault)._inotify

    def limit_reached(path: str, mask: int) -> int:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(inotify, "add_watch", limit_reached)
    graph._rescan()
    assert watcher_of(vault).broken
    rescans.clear()
    write_elsewhere(root / "Doc.md", "unwatched [[T]]\n")
    vault.move("A/T.md", "A/U.md")
    assert (root / "Doc.md").read_text() == "unwatched [[U]]\n"
    assert len(rescans) == 1


@pytest.mark.parametrize("unavailable", ["not installed", "init fails"])
def test_without_inotify_every_move_rescans_and_sees_outside_edits(
    tmp_path: Path, rescans: list[int], monkeypatch: pytest.MonkeyPatch, unavailable: str
) -> None:
    if unavailable == "not installed":
        monkeypatch.setattr(watch, "INotify", None)
    else:

        def fails() -> None:
            raise OSError(errno.EMFILE, "too many inotify instances")

        monkeypatch.setattr(watch, "INotify", fails)
    assert Watcher.create() is None
    root = tmp_path / "notes"
    vault = make_vault(root)
    vault.move("A/T.md", "A/U.md")
    write_elsewhere(root / "Doc.md", "rescanned [[U]]\n")
    write_elsewhere(root / "A" / "New.md", "[[U]]\n")
    vault.move("A/U.md", "A/V.md")
    assert (root / "Doc.md").read_text() == "rescanned [[V]]\n"
    assert (root / "A" / "New.md").read_text() == "[[V]]\n"
    assert vault._links is not None and vault._links._watcher is None
    assert len(rescans) == 2


@needs_inotify
def test_protected_and_hidden_folders_are_not_watched(tmp_path: Path, rescans: list[int]) -> None:
    root = tmp_path / "notes"
    vault = make_vault(root)
    vault.move("A/T.md", "A/U.md")
    watcher = watcher_of(vault)
    assert set(watcher._folders.values()) == {"", "A"}
    watcher.changes()  # the move's own writes
    for protected in (".obsidian", ".git", ".smarthole", ".trash"):
        assert (root / protected / "sub" / "x.md").read_text() == "[[T]]\n"  # untouched
        write_elsewhere(root / protected / "sub" / "x.md", "[[U]]\n")
        write_elsewhere(root / protected / "y.md", "[[U]]\n")
    changes = watcher.changes()
    assert changes.paths == set()
    assert not changes.rescan
