"""Benchmark: the cost of adding a message with 10 and with 10,000 stored conversations.

Run: `.venv/bin/python bench/history.py [--small 10] [--big 10000] [--messages 20]
[--adds 600] [--keep DIR]`

Builds two stores through the store's own schema (migrations, triggers, FTS index): one with
`--small` ended conversations, one with `--big`, each of `--messages` messages (half requests
with inbox ids, half answers with tool records), titled and summarised; the bulk is written
with `executemany` in one transaction per store so setup takes seconds. Each store then gets an
active conversation, and `add_message` is timed `--adds` times per store, alternating between
the stores in rounds of 50 so that drift (CPU frequency, page cache) hits both alike.

Timed twice: with the store's real durability (`synchronous=FULL`: one WAL fsync per add),
and with `synchronous=OFF`, which removes the fsync and leaves the CPU and index work alone, so
a cost that grows with the store cannot hide behind fsync noise. The spec's target: the median
add with 10,000 conversations within 1.2x of the median with 10.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smarthole_notes.conversations.store import (  # noqa: E402
    ConversationStore,
    ToolUse,
    _ts,
    default_path,
)

WORD_LIST = (
    "add eggs milk bread shopping list journal entry meeting notes project plan budget review "
    "garden recipe travel idea reading book film call mom dentist tuesday friday weekend "
    "report draft client launch research summary follow up schedule question answer move "
    "folder rename archive tag link note daily weekly quarterly roadmap decision owner risk"
)
WORDS = WORD_LIST.split()
T0 = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
IDLE = timedelta(minutes=30)
ROUND = 50
TOOLS_JSON = (
    '[{"name": "edit_file", "input_summary": "path=\\"Lists/Shopping.md\\"", '
    '"is_error": false, "summary": "Inserted 1 line after line 3 in Lists/Shopping.md"}]'
)


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def build(path: Path, conversations: int, messages: int, seed: int) -> ConversationStore:
    """A store holding `conversations` ended conversations of `messages` messages each."""
    rng = random.Random(seed)
    store = ConversationStore(path)
    conversation_rows = []
    message_rows = []
    row_id = 0
    for c in range(conversations):
        start = T0 + timedelta(hours=2 * c)
        conversation_id = f"00000000-0000-4000-8000-{c:012d}"
        end = start + timedelta(minutes=messages)
        conversation_rows.append(
            (
                conversation_id,
                _ts(start),
                _ts(end),
                _ts(end),
                "idle",
                sentence(rng, 6),
                sentence(rng, 20) + " " + sentence(rng, 15),
            )
        )
        for m in range(messages):
            row_id += 1
            user = m % 2 == 0
            message_rows.append(
                (
                    row_id,
                    conversation_id,
                    "user" if user else "assistant",
                    sentence(rng, rng.randint(8, 30) if user else rng.randint(15, 60)),
                    "smarthole" if c % 2 else "chat",
                    ("voice" if c % 2 else "typed") if user else None,
                    f"inbox-{c}-{m}" if user else None,
                    None if user else row_id - 1,
                    "[]" if user else TOOLS_JSON,
                    _ts(start + timedelta(minutes=m)),
                )
            )
    with store._transaction("IMMEDIATE") as conn:
        conn.executemany(
            "INSERT INTO conversations (id, started_at, last_activity_at, ended_at, end_reason, "
            "title, summary) VALUES (?, ?, ?, ?, ?, ?, ?)",
            conversation_rows,
        )
        conn.executemany(
            "INSERT INTO messages (id, conversation_id, role, content, source, input_method, "
            "message_id, reply_to, tools_used, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            message_rows,
        )
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store._conn.execute("ANALYZE")
    return store


class Adder:
    """Adds messages to a store's active conversation, timing each `add_message`."""

    def __init__(self, store: ConversationStore, seed: int, tag: str) -> None:
        self.store = store
        self.tag = tag
        self.rng = random.Random(seed)
        self.now = T0 + timedelta(days=5000)
        active, _ = store.begin_message(self.now, IDLE)
        self.conversation_id = active.id
        self.n = 0
        self.times: list[float] = []
        self.tools = (ToolUse("edit_file", 'path="Lists/Shopping.md"', False, "Inserted 1 line"),)

    def add(self, count: int) -> None:
        for _ in range(count):
            self.n += 1
            self.now += timedelta(seconds=20)
            user = self.n % 2 == 1
            content = sentence(self.rng, 20 if user else 40)
            started = time.perf_counter()
            if user:
                self.store.add_message(
                    self.conversation_id,
                    "user",
                    content,
                    source="chat",
                    input_method="typed",
                    message_id=f"bench-{self.tag}-{self.n}",
                    at=self.now,
                )
            else:
                self.store.add_message(
                    self.conversation_id,
                    "assistant",
                    content,
                    source="chat",
                    tools_used=self.tools,
                    at=self.now,
                )
            self.times.append(time.perf_counter() - started)


def measure(
    small: ConversationStore, big: ConversationStore, adds: int, tag: str
) -> tuple[Adder, Adder]:
    adders = (Adder(small, 1, tag), Adder(big, 2, tag))
    for adder in adders:  # warm-up: caches, prepared statements
        adder.add(20)
        adder.times.clear()
    done = 0
    while done < adds:
        step = min(ROUND, adds - done)
        for adder in adders:
            adder.add(step)
        done += step
    return adders


def report(label: str, small: Adder, big: Adder, n_small: int, n_big: int) -> float:
    def us(values: list[float], q: float | None = None) -> float:
        if q is None:
            return statistics.median(values) * 1e6
        return statistics.quantiles(values, n=100)[int(q) - 1] * 1e6

    ratio = statistics.median(big.times) / statistics.median(small.times)
    print(f"\n{label}: {len(small.times)} timed adds per store")
    print(f"  {'conversations':>13}  {'median':>10}  {'p90':>10}  {'p99':>10}")
    for n, adder in ((n_small, small), (n_big, big)):
        print(
            f"  {n:>13,}  {us(adder.times):>8.1f}us  {us(adder.times, 90):>8.1f}us"
            f"  {us(adder.times, 99):>8.1f}us"
        )
    print(f"  ratio of medians ({n_big:,} / {n_small:,}): {ratio:.3f}  (target <= 1.2)")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--adds", type=int, default=600)
    parser.add_argument("--keep", type=Path, help="build the stores here and keep them")
    args = parser.parse_args(argv)

    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-history-"))
    try:
        started = time.perf_counter()
        small = build(default_path(base / "small"), args.small, args.messages, 10)
        big = build(default_path(base / "big"), args.big, args.messages, 20)
        built = time.perf_counter() - started
        size = big.path.stat().st_size / 1e6
        print(
            f"Built stores of {args.small:,} and {args.big:,} conversations x {args.messages} "
            f"messages in {built:.1f}s (big database: {size:.0f} MB, in {base})"
        )
        ratios = [
            report(
                "synchronous=FULL (as shipped)",
                *measure(small, big, args.adds, "full"),
                args.small,
                args.big,
            )
        ]
        for store in (small, big):
            store._conn.execute("PRAGMA synchronous=OFF")
        ratios.append(
            report(
                "synchronous=OFF (CPU and index work only)",
                *measure(small, big, args.adds, "off"),
                args.small,
                args.big,
            )
        )
        for store in (small, big):
            store.close()
        ok = all(r <= 1.2 for r in ratios)
        print(f"\n{'PASS' if ok else 'FAIL'}: ratios {', '.join(f'{r:.3f}' for r in ratios)}")
        return 0 if ok else 1
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
