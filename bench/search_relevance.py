"""Benchmark: search_notes relevance on a real vault, against plain baselines in the same run.

Run: `.venv/bin/python bench/search_relevance.py [--vault DIR] [--show-misses]`

The vault is the English part of Obsidian's own help vault (github.com/obsidianmd/obsidian-help,
folder `en/`, 173 notes). Get it with the `fetch` tool, or `git clone`, then e.g.
`git --git-dir=<repo> archive HEAD en | tar -x -C /tmp/obsidian-help` (the default --vault is
/tmp/obsidian-help/en). It is copied to a temporary folder, so its own folder is not touched.

QUESTIONS: 60 questions written the way a user asks them (not the notes' titles), each with the
one note that answers it, checked by reading the note. Measured for each search:
- recall@5: the answering note is among the first five results;
- MRR: the mean of 1/rank of the answering note (0 when not in the first 10).
Searches compared, all over the same notes:
- search_notes: the product's index (fields with weights, Porter stemming, accent folding);
- BM25 single field: one FTS5 column holding the whole file, unicode61 without stemming, no
  weights, the same query words (stop words dropped, OR'ed);
- regex: search_files (the product's regex tool, files ranked by number of matches) with the
  question's words as `word1|word2|...`.
Also the warm query time of search_notes (median over the questions).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smarthole_notes.vault import Vault  # noqa: E402
from smarthole_notes.vault.index import query_words  # noqa: E402
from smarthole_notes.vault.listing import walk  # noqa: E402

QUESTIONS: list[tuple[str, str]] = [
    ("how do I put a PDF inside one of my notes", "Linking notes and files/Embed files.md"),
    ("can I get back a note I accidentally deleted or changed", "Plugins/File recovery.md"),
    ("how do I switch the app to dark mode", "User interface/Appearance.md"),
    ("how do I make a table", "Editing and formatting/Advanced formatting syntax.md"),
    ("how can I write math equations", "Editing and formatting/Advanced formatting syntax.md"),
    ("how do I draw a flowchart diagram", "Editing and formatting/Advanced formatting syntax.md"),
    (
        "how do I link to a specific heading in another note",
        "Linking notes and files/Internal links.md",
    ),
    (
        "how do I give a note a second name so links find it",
        "Linking notes and files/Aliases.md",
    ),
    ("how can I see which notes point to the current one", "Plugins/Backlinks.md"),
    ("what keyboard shortcut commands can I customise", "User interface/Hotkeys.md"),
    ("how do I make a checkbox to-do list", "Editing and formatting/Basic formatting syntax.md"),
    ("how do I add a warning box or highlighted tip block", "Editing and formatting/Callouts.md"),
    ("how do I collapse a section of a long note", "Editing and formatting/Folding.md"),
    (
        "how do I edit several lines at once with more than one cursor",
        "Editing and formatting/Multiple cursors.md",
    ),
    (
        "how do I add metadata like dates and status to a note",
        "Editing and formatting/Properties.md",
    ),
    ("how do I organise notes with hashtags", "Editing and formatting/Tags.md"),
    (
        "how do I switch between reading and editing",
        "Editing and formatting/Views and editing mode.md",
    ),
    ("how do I change the look with my own CSS", "Extending Obsidian/CSS snippets.md"),
    ("how do I install a plugin made by the community", "Extending Obsidian/Community plugins.md"),
    ("how do I change the theme", "Extending Obsidian/Themes.md"),
    ("can I open a note from another app with a link", "Extending Obsidian/Obsidian URI.md"),
    ("where are my settings files stored", "Files and folders/Configuration folder.md"),
    ("which file types can I open", "Files and folders/Accepted file formats.md"),
    ("how do I back up my vault", "Getting started/Back up your Obsidian files.md"),
    ("how do I create a new vault", "Getting started/Create a vault.md"),
    ("how do I bring my notes over from Evernote", "Import notes/Import from Evernote.md"),
    ("how do I import my Notion workspace", "Import notes/Import from Notion.md"),
    ("can I move my notes from Apple Notes", "Import notes/Import from Apple Notes.md"),
    ("can I get my money back after buying", "Licenses and payment/Refund policy.md"),
    (
        "is there a discount for students or teachers",
        "Licenses and payment/Education and non-profit discount.md",
    ),
    (
        "what do I get for supporting development early with a one-time purchase",
        "Licenses and payment/Catalyst license.md",
    ),
    ("do I need a license to use it at work", "Teams/Commercial license.md"),
    (
        "how do I use my own domain name for my published site",
        "Obsidian Publish/Custom domains.md",
    ),
    ("how do I change the web address of a published page", "Obsidian Publish/Permalinks.md"),
    ("how do I see how many people visit my published site", "Obsidian Publish/Analytics.md"),
    ("how do I get an older version of a note from sync", "Obsidian Sync/Version history.md"),
    ("which data center stores my synced vault", "Obsidian Sync/Sync regions.md"),
    (
        "what does the sync icon in the status bar mean",
        "Obsidian Sync/Status icon and messages.md",
    ),
    ("how much storage do the sync plans include", "Obsidian Sync/Plans and storage limits.md"),
    (
        "choose which folders and file types get synced",
        "Obsidian Sync/Sync settings and selective syncing.md",
    ),
    ("is my synced data end-to-end encrypted", "Obsidian Sync/Security and privacy.md"),
    (
        "how do I save a web page into my vault from the browser",
        "Obsidian Web Clipper/Introduction to Obsidian Web Clipper.md",
    ),
    ("highlight text on a website and keep it", "Obsidian Web Clipper/Highlighter.md"),
    ("make a daily journal note for each day", "Plugins/Daily notes.md"),
    ("insert a template with the date into my note", "Plugins/Templates.md"),
    (
        "create a note named with a timestamp zettelkasten style",
        "Plugins/Unique note creator.md",
    ),
    ("merge two notes into one", "Plugins/Note composer.md"),
    ("show my notes as a graph of connections", "Plugins/Graph view.md"),
    ("how do I present my note as slides", "Plugins/Slides.md"),
    ("open a random note", "Plugins/Random note.md"),
    ("count the words in my note", "Plugins/Word count.md"),
    (
        "save the layout of my open tabs and sidebars to switch between them",
        "Plugins/Workspaces.md",
    ),
    ("quickly jump to a note by typing its name", "Plugins/Quick switcher.md"),
    ("open a note in a separate window", "User interface/Pop-out windows.md"),
    ("how do I change the language of the interface", "User interface/Language settings.md"),
    ("turn on two-factor authentication for my account", "Obsidian/2-factor authentication.md"),
    ("get beta versions before everyone else", "Obsidian/Early access versions.md"),
    (
        "make a spreadsheet like view of notes filtered by property",
        "Bases/Introduction to Bases.md",
    ),
    ("write a formula that computes a value in a base", "Bases/Formulas.md"),
    ("how do symbolic links work in a vault", "Files and folders/Symbolic links and junctions.md"),
]

Search = Callable[[str], list[str]]


def plain_bm25(root: Path) -> Search:
    """One FTS5 column with the whole file, no stemming, no weights."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(path UNINDEXED, body, tokenize='unicode61')")
    for entry in walk(root, root, "", include_dirs=False):
        if entry.rel.endswith(".md"):
            db.execute(
                "INSERT INTO t VALUES (?, ?)", (entry.rel, Path(entry.real).read_text("utf-8"))
            )

    def search(question: str) -> list[str]:
        words = list(dict.fromkeys(query_words(question)))
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        rows = db.execute(
            "SELECT path FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT 10", (match,)
        ).fetchall()
        return [row[0] for row in rows]

    return search


def regex_search(vault: Vault) -> Search:
    def search(question: str) -> list[str]:
        pattern = "|".join(dict.fromkeys(query_words(question))) or question
        found = vault.search(pattern, "*.md", 0, 10)
        return [hits.rel for hits in found.files]

    return search


def score(search: Search) -> tuple[float, float, list[tuple[str, str, list[str]]]]:
    found_at_5 = 0
    reciprocal = 0.0
    misses: list[tuple[str, str, list[str]]] = []
    for question, answer in QUESTIONS:
        results = search(question)[:10]
        rank = results.index(answer) + 1 if answer in results else None
        if rank is not None and rank <= 5:
            found_at_5 += 1
        else:
            misses.append((question, answer, results[:5]))
        reciprocal += 1 / rank if rank else 0.0
    return found_at_5 / len(QUESTIONS), reciprocal / len(QUESTIONS), misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--vault", type=Path, default=Path("/tmp/obsidian-help/en"))
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    if not (args.vault / "Home.md").exists():
        sys.exit(f"{args.vault} does not look like the help vault's en/ folder (see --help)")
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp) / "vault"
        shutil.copytree(args.vault, root, ignore=shutil.ignore_patterns(".smarthole"))
        vault = Vault(root)
        began = time.perf_counter()
        vault.index.start()
        vault.index.wait_ready()
        build = time.perf_counter() - began
        notes = vault.index.status().notes

        def ours(question: str) -> list[str]:
            return [hit.rel for hit in vault.index.search(question, 10)]

        systems: list[tuple[str, Search]] = [
            ("search_notes (fields, weights, stemming)", ours),
            ("BM25 single field, no stemming", plain_bm25(root)),
            ("regex search_files, question words", regex_search(vault)),
        ]
        print(f"Vault: {args.vault} ({notes} notes; index built in {build:.2f} s)")
        print(f"Questions: {len(QUESTIONS)}\n")
        print(f"{'search':44} {'recall@5':>9} {'MRR':>6}")
        all_misses = {}
        for name, search in systems:
            recall, mrr, misses = score(search)
            all_misses[name] = misses
            print(f"{name:44} {recall:9.3f} {mrr:6.3f}")
        times = []
        for _ in range(3):
            for question, _answer in QUESTIONS:
                began = time.perf_counter()
                ours(question)
                times.append(time.perf_counter() - began)
        print(f"\nsearch_notes warm query: median {statistics.median(times) * 1000:.2f} ms")
        if args.show_misses:
            for name, misses in all_misses.items():
                print(f"\nMissed at 5 by {name}:")
                for question, answer, got in misses:
                    print(f"  {question!r} -> {answer}\n      got {got}")
        vault.index.close()


if __name__ == "__main__":
    main()
