"""The vault-access layer: every rule about touching the user's notes lives here.

`Vault` (vault.py) is the one object the tools use. Each method resolves its paths through
`paths.PathResolver` (confinement, protected folders, case-insensitive lookup), works through
`files` (atomic durable writes, concurrent-edit-safe read-modify-write, trash), and returns
plain data that `smarthole_notes.tools.vault` turns into text for the model. Beside it: links
(`links`, `resolver`, `linkgraph`, `watch`: Obsidian's link rules and moves that keep every
link), search (`search`, `cache`: regex search; `index`, `frontmatter`: the ranked full-text
index, tags and properties), Obsidian's own settings (`obsidian`, `conventions`).
"""

from smarthole_notes.vault.errors import (
    AmbiguousPathError,
    ConflictError,
    NotFoundError,
    RefusedPathError,
    VaultError,
)
from smarthole_notes.vault.index import IndexStatus, NoteLinks
from smarthole_notes.vault.paths import VaultPath
from smarthole_notes.vault.vault import (
    ActiveOutcome,
    DeleteOutcome,
    EditOutcome,
    FolderOutcome,
    InfoOutcome,
    ListOutcome,
    MoveOutcome,
    PropertiesOutcome,
    ReadOutcome,
    SearchNotesOutcome,
    Vault,
    WriteOutcome,
)

__all__ = [
    "ActiveOutcome",
    "AmbiguousPathError",
    "ConflictError",
    "DeleteOutcome",
    "EditOutcome",
    "FolderOutcome",
    "IndexStatus",
    "InfoOutcome",
    "ListOutcome",
    "MoveOutcome",
    "NotFoundError",
    "NoteLinks",
    "PropertiesOutcome",
    "ReadOutcome",
    "RefusedPathError",
    "SearchNotesOutcome",
    "Vault",
    "VaultError",
    "VaultPath",
    "WriteOutcome",
]
