"""Benchmark: the auto-commit's git cost on a 10,000-note vault with one changed note.

Run: `.venv/bin/python bench/git_commit.py [--notes 10000] [--rounds 15] [--keep DIR]`

Builds a vault of `--notes` Markdown notes (about 1.5 KB each, in 50 folders of 7
subfolders), turns versioning on (`ensure_repository`: `git init`, `.gitignore`, first
commit), then times, in alternating rounds so drift (page cache, CPU frequency) hits both
alike, each after appending a line to one note:

- smarthole-notes: the pipeline's real auto-commit path without the LLM call:
  `snapshot()` (status, taken before the edit as the pipeline does) + `stage()` (add,
  write-tree, diff) + `commit_staged()` (commit-tree, update-ref);
- smarthole-notes `changed_files()` + `commit_all()` (the one-call path);
- the command line: `git status && git add -A && git commit -m ...`, as three processes.

Target (the issue): under 0.5 s, and no slower than the command line. Exits 1 when missed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smarthole_notes.versioning.repo import GitVault  # noqa: E402

WORDS = [
    "alpha",
    "garden",
    "recipe",
    "meeting",
    "journal",
    "idea",
    "project",
    "plan",
    "budget",
    "review",
    "travel",
    "book",
    "film",
    "call",
    "dentist",
    "tuesday",
    "weekend",
    "report",
    "draft",
    "client",
    "launch",
    "research",
    "summary",
    "follow",
    "up",
    "schedule",
    "question",
    "answer",
    "folder",
    "archive",
    "link",
    "note",
    "daily",
    "weekly",
    "roadmap",
    "decision",
]
TARGET_SECONDS = 0.5


def build_vault(root: Path, notes: int) -> Path:
    rnd = random.Random(7)
    vault = root / "vault"
    for i in range(notes):
        folder = vault / f"Area {i % 50:02d}" / f"Topic {i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"# Note {i}", ""]
        lines += [" ".join(rnd.choices(WORDS, k=14)) for _ in range(18)]
        lines.append(f"See [[Note {rnd.randrange(notes)}]].")
        (folder / f"Note {i}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (vault / ".obsidian").mkdir()
    (vault / ".obsidian" / "workspace.json").write_text("{}\n", encoding="utf-8")
    return vault


def cli(vault: Path, touch: Callable[[], None]) -> Callable[[str], float]:
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@localhost"]

    def commit(message: str) -> float:
        touch()
        started = time.perf_counter()
        for args in (["status"], ["add", "-A"], ["commit", "-q", "-m", message]):
            subprocess.run(
                ["git", "-C", str(vault), *identity, *args], check=True, capture_output=True
            )
        return time.perf_counter() - started

    return commit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="build the vault here and keep it")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-git-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        vault = build_vault(root, args.notes)
        built = time.perf_counter() - started
        git = GitVault(vault)
        started = time.perf_counter()
        state = git.ensure_repository()
        turned_on = time.perf_counter() - started
        print(
            f"git {'.'.join(map(str, git.version()))}; vault of {args.notes:,} notes built in "
            f"{built:.1f} s; versioning turned on (init + first commit) in {turned_on:.2f} s "
            f"({'new repository' if state.created else 'existing repository'})"
        )

        counter = 0

        def touch() -> None:
            nonlocal counter
            counter += 1
            i = (counter * 7919) % args.notes
            note = vault / f"Area {i % 50:02d}" / f"Topic {i % 7}" / f"Note {i}.md"
            with note.open("a", encoding="utf-8") as handle:
                handle.write(f"- added line {counter}\n")

        def ours_pipeline(message: str) -> float:
            """The pipeline's order: snapshot before the agent's edit, stage and commit after."""
            started = time.perf_counter()
            snapshot = git.snapshot()
            before = time.perf_counter() - started
            touch()
            started = time.perf_counter()
            staged = git.stage(snapshot)
            assert staged is not None and len(staged.changes) == 1
            assert git.commit_staged(staged, message) is not None
            return before + time.perf_counter() - started

        def ours_one_call(message: str) -> float:
            touch()
            started = time.perf_counter()
            assert len(git.changed_files()) == 1
            assert git.commit_all(message) is not None
            return time.perf_counter() - started

        contenders: dict[str, Callable[[str], float]] = {
            "smarthole-notes (snapshot + stage + commit)": ours_pipeline,
            "smarthole-notes (changed_files + commit_all)": ours_one_call,
            "git CLI (status && add -A && commit)": cli(vault, touch),
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for round_number in range(args.rounds + 2):
            for name, run in contenders.items():
                elapsed = run(f"vault(bench): round {round_number}")
                if round_number >= 2:  # two warm-up rounds
                    times[name].append(elapsed)

        status = subprocess.run(
            ["git", "-C", str(vault), "status", "--porcelain"],
            capture_output=True,
            text=True,
            check=True,
        )
        fsck = subprocess.run(
            ["git", "-C", str(vault), "fsck", "--strict", "--no-dangling"],
            capture_output=True,
            text=True,
            check=False,
        )
        cli_median = statistics.median(times["git CLI (status && add -A && commit)"])
        print(f"\n{args.rounds} rounds each, one changed note per commit, alternating:\n")
        print(f"| {'what':<46} |  median |     p90 |     min | vs CLI |")
        print(f"|{'-' * 48}|---------|---------|---------|--------|")
        for name, samples in times.items():
            ordered = sorted(samples)
            p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
            median = statistics.median(samples)
            print(
                f"| {name:<46} | {median * 1000:4.0f} ms | {p90 * 1000:4.0f} ms | "
                f"{ordered[0] * 1000:4.0f} ms | {median / cli_median:5.2f}x |"
            )
        ours = statistics.median(times["smarthole-notes (snapshot + stage + commit)"])
        ok = ours < TARGET_SECONDS and ours <= cli_median
        print(
            f"\nworking tree clean afterwards: {status.stdout == ''}; git fsck --strict: "
            f"{'clean' if fsck.returncode == 0 else 'FAILED ' + fsck.stderr}"
        )
        print(
            f"target (< {TARGET_SECONDS} s and no slower than the CLI): {'met' if ok else 'MISSED'}"
        )
        return 0 if ok and fsck.returncode == 0 else 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
