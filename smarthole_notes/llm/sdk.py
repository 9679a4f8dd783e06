"""The `anthropic` SDK, loaded off the start-up path.

Importing the SDK takes seconds on a slow machine, so nothing `serve` needs to start (bind,
print the chat page address, accept and ack SmartHole messages) imports it at module level:
`serve` calls `start_loading()` once it is ready, and the first code that needs the SDK
awaits `loaded()`. The import runs in a thread, so the event loop keeps going meanwhile; a
plain `import` elsewhere (e.g. `ask`) still works as before, Python's import lock making it
wait for the thread's import of the same module.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import anthropic
    from typing_extensions import TypeIs

SDK_MODULE = "anthropic"
# Everything that needs the SDK at import time: loaded together, so the local imports of
# the code that runs once `loaded()` returns cost nothing on the event loop.
MODULES = (SDK_MODULE, "smarthole_notes.llm.anthropic_provider")

_lock = threading.Lock()
_future: Future[None] | None = None


def _load(future: Future[None]) -> None:
    try:
        for name in MODULES:
            importlib.import_module(name)
    except BaseException as exc:  # reported to whoever awaits it
        future.set_exception(exc)
    else:
        future.set_result(None)


def start_loading() -> Future[None]:
    """Start importing the SDK in a background thread (once); its completion."""
    global _future
    with _lock:
        if _future is None:
            _future = Future()
            threading.Thread(
                target=_load, args=(_future,), name="anthropic-sdk-import", daemon=True
            ).start()
        return _future


async def loaded() -> None:
    """Return once the SDK is imported, without blocking the event loop (starts the import
    if nothing has yet); raises what the import raised."""
    if _future is None and all(name in sys.modules for name in MODULES):
        return  # imported the ordinary way (ask, tests)
    await asyncio.wrap_future(start_loading())


def is_client(value: object) -> TypeIs[anthropic.AsyncAnthropic]:
    """Whether `value` is an `anthropic.AsyncAnthropic`, without importing the SDK for it (a
    value cannot be one while the SDK is not loaded)."""
    sdk = sys.modules.get(SDK_MODULE)
    client_type = getattr(sdk, "AsyncAnthropic", None) if sdk is not None else None
    return client_type is not None and isinstance(value, client_type)
