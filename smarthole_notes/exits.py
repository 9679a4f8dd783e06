"""What every command shares: its exit codes (the README's table) and the `--vault` check.

Apart from the command line itself so that other front ends (the MCP stdio server) use the
same codes and wording without importing the command line.
"""

from __future__ import annotations

from pathlib import Path

from smarthole_notes.llm.errors import ConfigurationError

EXIT_OK = 0
EXIT_API_FAILURE = 1
EXIT_CONFIGURATION = 2
EXIT_NOT_UNDONE = 3
EXIT_INTERRUPTED = 130


def vault_folder(vault_arg: str | None) -> Path:
    """The vault folder, resolved, or a ConfigurationError that says what is wrong with it."""
    vault = Path(vault_arg or ".").expanduser()
    if vault.is_dir():
        return vault.resolve()
    if vault.exists():
        raise ConfigurationError(f"the vault {str(vault)!r} is not a folder")
    raise ConfigurationError(f"the vault folder {str(vault)!r} does not exist")
