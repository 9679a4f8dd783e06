"""Removing what a crash left behind: temporary files of interrupted atomic writes.

Every atomic write (a note, an inbox message, settings) goes to a hidden temporary file
named with the writing process's id, then is renamed over its target. A crash between the
two leaves that temporary file. At the next start, files of ours whose writer is no longer
running are removed, whatever their age; files of a writer still running (another
smarthole-notes process on the same vault) are left to it. Only names of our own pattern
are ever touched, never the user's files.
"""

from __future__ import annotations

import logging
from pathlib import Path

from smarthole_notes.vault.files import clean_stale_temp_files, clean_temp_files_under

log = logging.getLogger(__name__)

SERVICE_FOLDERS = (".smarthole", ".smarthole/inbox")


def remove_crash_leftovers(vault: Path) -> int:
    """Remove our orphaned temporary files anywhere in the vault; how many were removed.

    Blocking (it walks the vault): run it in a thread.
    """
    removed = clean_temp_files_under(vault, orphans=True)
    for name in SERVICE_FOLDERS:
        removed += clean_stale_temp_files(vault / name, orphans=True)
    if removed:
        log.info("Removed %d temporary files left by an interrupted write", removed)
    return removed
