"""The README's architecture tree names every module of the package."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def architecture_tree() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Architecture", 1)[1]
    return section.split("```", 2)[1]


def test_the_architecture_tree_names_every_module() -> None:
    tree = architecture_tree()
    package = ROOT / "smarthole_notes"
    missing = []
    for path in sorted(package.rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        folder = path.parent.relative_to(package)
        if str(folder) != "." and f"{folder.parts[0]}/" not in tree:
            missing.append(f"{folder}/")
        if not re.search(rf"(?<![\w.]){re.escape(path.name)}(?!\w)", tree):
            missing.append(str(path.relative_to(package)))
    assert missing == [], "add these to README.md's architecture tree"
