"""Logging: standard Python logging to stderr, its level following `verbose_logging`."""

from __future__ import annotations

import logging
import sys


def configure_logging(verbose: bool) -> None:
    """Standard logging to stderr. The SDK's and HTTP library's own loggers stay quiet."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("anthropic", "httpx2", "httpcore2", "httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
