"""Git versioning of the vault: the repository service, auto-commit and undo.

- `GitVault` (repo.py): the repository, synchronous (call it in a worker thread).
- `auto_commit`, `stage_request`, `commit_request` (autocommit.py): async, never raise.
- `undo` (undo.py): synchronous; a user action, not an agent tool.
"""

from smarthole_notes.versioning.autocommit import auto_commit, commit_request, stage_request
from smarthole_notes.versioning.commit_message import COMMIT_MESSAGE_MODEL
from smarthole_notes.versioning.repo import (
    COMMITTER_EMAIL,
    COMMITTER_NAME,
    ChangedFile,
    GitError,
    GitLockedError,
    GitUnavailableError,
    GitVault,
    NotARepositoryError,
    RepositoryBusyError,
    RepositoryState,
    Snapshot,
    StagedTree,
)
from smarthole_notes.versioning.undo import LAST, UndoResult, undo, undo_in_vault

__all__ = [
    "COMMITTER_EMAIL",
    "COMMITTER_NAME",
    "COMMIT_MESSAGE_MODEL",
    "LAST",
    "ChangedFile",
    "GitError",
    "GitLockedError",
    "GitUnavailableError",
    "GitVault",
    "NotARepositoryError",
    "RepositoryBusyError",
    "RepositoryState",
    "Snapshot",
    "StagedTree",
    "UndoResult",
    "auto_commit",
    "commit_request",
    "stage_request",
    "undo",
    "undo_in_vault",
]
