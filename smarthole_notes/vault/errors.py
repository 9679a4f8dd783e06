"""Errors of the vault layer: each message is written for the model to read and act on."""

from __future__ import annotations


class VaultError(Exception):
    """A refused or failed vault operation; the message says what to do differently."""


class NotFoundError(VaultError):
    """The path does not exist (even case-insensitively)."""


class AmbiguousPathError(VaultError):
    """Several entries match a path case-insensitively."""


class RefusedPathError(VaultError):
    """The path is outside the vault, protected, or malformed."""


class ConflictError(VaultError):
    """The note changed on disk while a tool was editing it, or the destination exists."""
