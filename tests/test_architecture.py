"""The package's layering, enforced: each part imports only parts at its own layer or below.

Read bottom-up: foundations (files, clock, events, settings), the LLM provider layer, the
vault, then what stands on them (conversation store, versioning, SmartHole), the tools,
the agent, the pipeline, the front ends (web, MCP), the server and the command line.
Imports inside `if TYPE_CHECKING:` are annotations only and do not count.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "smarthole_notes"

LAYERS: dict[str, int] = {
    "clock": 0,
    "durable": 0,
    "jstext": 0,
    "text": 0,
    "logs": 0,
    "bus": 0,
    "credentials": 0,
    "inbox": 0,
    "settings": 0,
    "llm": 1,
    "vault": 2,
    "leftovers": 3,
    "conversations": 3,
    "versioning": 3,
    "smarthole": 3,
    "tools": 4,
    "retrospection": 4,
    "agent": 5,
    "pipeline": 6,
    "web": 7,
    "mcp": 7,
    "server": 8,
    "exits": 1,
    "intake": 1,
    "cli": 9,
    "__main__": 10,
}


def part_of(module: str) -> str | None:
    """`smarthole_notes.vault.links` -> `vault`; the package itself -> None."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 and bits[0] == "smarthole_notes" else None


def runtime_imports(tree: ast.Module) -> list[str]:
    """Modules imported at run time (anywhere but under `if TYPE_CHECKING:`)."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def edges() -> dict[str, set[tuple[str, str]]]:
    """part -> {(imported part, importing file)}."""
    graph: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        source = part_of(".".join(relative.parts))
        if source is None:
            continue
        for module in runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            target = part_of(module)
            if target is not None and target != source:
                graph[source].add((target, str(relative)))
    return graph


def test_every_part_has_a_declared_layer() -> None:
    parts = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    parts.discard("__init__")
    assert parts - set(LAYERS) == set(), "declare the new part's layer in LAYERS"


def test_no_part_imports_a_part_above_it() -> None:
    upward = [
        f"{file}: {source} (layer {LAYERS[source]}) imports {target} (layer {LAYERS[target]})"
        for source, targets in edges().items()
        for target, file in sorted(targets)
        if LAYERS[target] > LAYERS[source]
    ]
    assert upward == []


def test_parts_of_one_layer_do_not_import_each_other_both_ways() -> None:
    graph = {source: {t for t, _ in targets} for source, targets in edges().items()}
    both_ways = sorted(
        f"{a} <-> {b}"
        for a, targets in graph.items()
        for b in targets
        if a in graph.get(b, ()) and a < b
    )
    assert both_ways == []
