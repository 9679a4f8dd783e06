"""The `smarthole-notes` command line: `ask` one request, `serve` the service.

Exit codes: 0 success, 1 API failure, 2 configuration problem, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from smarthole_notes import __version__
from smarthole_notes.agent import build_agent, client_for, require_api_key
from smarthole_notes.llm.errors import ConfigurationError, ErrorCode, LLMError
from smarthole_notes.llm.events import AgentEvent, StreamRestarted, TextDelta, ToolStarted
from smarthole_notes.logs import configure_logging
from smarthole_notes.settings import Settings, load_settings

log = logging.getLogger("smarthole_notes")

EXIT_OK = 0
EXIT_API_FAILURE = 1
EXIT_CONFIGURATION = 2
EXIT_INTERRUPTED = 130

_HINTS: dict[ErrorCode, str] = {
    ErrorCode.AUTH_ERROR: "check ANTHROPIC_API_KEY",
    ErrorCode.OVERLOADED: "try again in a minute",
    ErrorCode.RATE_LIMIT: "try again in a minute",
    ErrorCode.NETWORK_ERROR: "check your connection (or ANTHROPIC_BASE_URL)",
}


def _fail(message: str, exc: BaseException, verbose: bool, code: int) -> int:
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"smarthole-notes: error: {message}", file=sys.stderr)
    return code


def load_vault_settings(
    vault_arg: str | None, overrides: dict[str, object]
) -> tuple[Path, Settings]:
    """The vault folder and its settings (problems logged, never fatal), or a ConfigurationError."""
    vault = Path(vault_arg or ".").expanduser()
    if not vault.is_dir():
        raise ConfigurationError(f"the vault folder {str(vault)!r} does not exist")
    try:
        loaded = load_settings(vault.resolve(), overrides)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    for problem in loaded.problems:
        log.warning("%s", problem.message)
    return vault.resolve(), loaded.settings


class _TerminalPrinter:
    """Shows the answer as it is written, and tool activity on stderr."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self.wrote = False

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, TextDelta):
            self.out.write(event.text)
            self.out.flush()
            self.wrote = True
        elif isinstance(event, ToolStarted):
            if self.wrote:
                self.out.write("\n")
                self.wrote = False
            self.err.write(f"[{event.name}]\n")
        elif isinstance(event, StreamRestarted):
            self.err.write("\n[the connection broke; retrying from the start]\n")


async def _ask(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {"model": args.model} if args.model else {}
    vault, settings = load_vault_settings(args.vault, overrides)
    if settings.verbose_logging and not args.verbose:
        configure_logging(True)
    client = client_for(require_api_key())
    service = build_agent(vault, settings, client)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, service.abort)
    loop.add_signal_handler(signal.SIGTERM, service.abort)
    live = sys.stdout.isatty()
    printer = _TerminalPrinter(sys.stdout, sys.stderr) if live else None
    try:
        result = await service.process(args.text, on_event=printer)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
        await client.close()
    if result.aborted:
        print("\nStopped.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if printer is None:
        sys.stdout.write(result.text)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return EXIT_OK


def cmd_ask(args: argparse.Namespace) -> int:
    if not args.text.strip():
        print("smarthole-notes: error: nothing to ask (TEXT is empty)", file=sys.stderr)
        return EXIT_CONFIGURATION
    try:
        return asyncio.run(_ask(args))
    except ConfigurationError as exc:
        return _fail(str(exc), exc, args.verbose, EXIT_CONFIGURATION)
    except LLMError as exc:
        hint = _HINTS.get(exc.code)
        message = exc.user_message + (f" ({hint})" if hint else "")
        if exc.detail and exc.code is not ErrorCode.INVALID_REQUEST:
            log.info("API failure detail: %s", exc.detail)
        return _fail(message, exc, args.verbose, EXIT_API_FAILURE)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def cmd_serve(args: argparse.Namespace) -> int:
    from smarthole_notes.server import ServeOptions, serve

    try:
        vault, _settings = load_vault_settings(args.vault, {})
        options = ServeOptions(
            vault=vault,
            host=args.host,
            port=args.port,
            token=args.token,
            smarthole_url=args.smarthole_url,
            no_smarthole=args.no_smarthole,
            model=args.model,
            allow_remote=args.allow_remote,
        )
        return asyncio.run(serve(options))
    except ConfigurationError as exc:
        return _fail(str(exc), exc, args.verbose, EXIT_CONFIGURATION)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def cmd_inbox(args: argparse.Namespace) -> int:
    from smarthole_notes.inbox import Inbox, inbox_folder
    from smarthole_notes.server import process_inbox

    try:
        vault, _settings = load_vault_settings(args.vault, {})
    except ConfigurationError as exc:
        return _fail(str(exc), exc, args.verbose, EXIT_CONFIGURATION)
    if args.action == "list":
        pending = Inbox(inbox_folder(vault)).pending()
        if not pending:
            print("The inbox is empty.")
        for message in pending:
            error = f"  [last error: {message.last_error}]" if message.last_error else ""
            print(f"{message.id}  {message.timestamp}  {message.source}  {message.text!r}{error}")
        return EXIT_OK
    try:
        outcomes = asyncio.run(process_inbox(vault))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if not outcomes:
        print("The inbox is empty.")
    for outcome in outcomes:
        print(f"{outcome.message_id}: {outcome.status}")
    failed = [o for o in outcomes if o.status in ("failed", "no_key", "interrupted")]
    return EXIT_API_FAILURE if failed else EXIT_OK


def cmd_undo(args: argparse.Namespace) -> int:
    from smarthole_notes.versioning import undo_in_vault

    try:
        vault, _settings = load_vault_settings(args.vault, {})
    except ConfigurationError as exc:
        return _fail(str(exc), exc, args.verbose, EXIT_CONFIGURATION)
    result = undo_in_vault(vault, args.target)
    print(result.message, file=sys.stdout if result.ok else sys.stderr)
    for path in result.conflicts:
        print(f"  conflict: {path}", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_API_FAILURE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smarthole-notes",
        description="Keep a Markdown notes vault by voice and chat, with Claude doing the work.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="run one request against the vault and print the answer")
    ask.add_argument("--vault", help="the notes folder (default: the current folder)")
    ask.add_argument("--model", help="model for this run (default: the `model` setting)")
    ask.add_argument("--verbose", action="store_true", help="debug logs and tracebacks")
    ask.add_argument("text", metavar="TEXT", help="what to do, in plain language")
    ask.set_defaults(func=cmd_ask)

    serve = sub.add_parser("serve", help="run the service (SmartHole client and chat page)")
    serve.add_argument("--vault", help="the notes folder (default: the current folder)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other machines can reach (the token still guards every request)",
    )
    serve.add_argument("--port", type=int, default=8765, help="HTTP port")
    serve.add_argument("--token", help="access token for the chat page (default: generated)")
    where = serve.add_mutually_exclusive_group()
    where.add_argument("--smarthole-url", help="SmartHole's address for this run")
    where.add_argument("--no-smarthole", action="store_true", help="do not connect to SmartHole")
    serve.add_argument("--model", help="model for this run (default: the `model` setting)")
    serve.add_argument("--verbose", action="store_true", help="debug logs")
    serve.set_defaults(func=cmd_serve)

    inbox = sub.add_parser("inbox", help="list or process messages waiting in the inbox")
    inbox.add_argument("action", choices=["list", "process"])
    inbox.add_argument("--vault", help="the notes folder (default: the current folder)")
    inbox.add_argument("--verbose", action="store_true", help="debug logs")
    inbox.set_defaults(func=cmd_inbox)

    undo = sub.add_parser("undo", help="undo one processed request (git versioning must be on)")
    undo.add_argument(
        "target", nargs="?", default="last", metavar="MESSAGE_ID|last", help="default: last"
    )
    undo.add_argument("--vault", help="the notes folder (default: the current folder)")
    undo.add_argument("--verbose", action="store_true", help="debug logs")
    undo.set_defaults(func=cmd_undo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(bool(getattr(args, "verbose", False)))
    code: int = args.func(args)
    return code
