"""The `smarthole-notes` command line: `ask` one request, `serve` the service.

Exit codes (the README's table): 0 success, 1 API failure, 2 configuration problem,
3 `undo` did nothing, 130 interrupted.

Parsing the command line loads little more than argparse (`--help` and `--version` stay
instant): each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from smarthole_notes import __version__
from smarthole_notes.exits import (
    EXIT_API_FAILURE,
    EXIT_CONFIGURATION,
    EXIT_INTERRUPTED,
    EXIT_NOT_UNDONE,
    EXIT_OK,
    vault_folder,
)
from smarthole_notes.llm.errors import ConfigurationError, ErrorCode, LLMError
from smarthole_notes.logs import configure_logging

if TYPE_CHECKING:
    from smarthole_notes.inbox import InboxMessage
    from smarthole_notes.llm.events import AgentEvent
    from smarthole_notes.llm.types import Usage
    from smarthole_notes.settings import Settings

log = logging.getLogger("smarthole_notes")


_HINTS: dict[ErrorCode, str] = {
    ErrorCode.AUTH_ERROR: "check ANTHROPIC_API_KEY",
    ErrorCode.OVERLOADED: "try again in a minute",
    ErrorCode.RATE_LIMIT: "try again in a minute",
    ErrorCode.NETWORK_ERROR: "check your connection (or ANTHROPIC_BASE_URL)",
}


def _fail(message: str, exc: BaseException, verbose: bool, code: int) -> int:
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(f"smarthole-notes: error: {message}", file=sys.stderr)
    return code


def load_vault_settings(
    vault_arg: str | None, overrides: dict[str, object], *, report: bool = True
) -> tuple[Path, Settings]:
    """The vault folder and its settings (problems logged, never fatal), or a ConfigurationError.

    `report=False` when the caller loads them again and logs the problems itself (`serve`),
    so each warning is printed once.
    """
    from smarthole_notes.settings import load_settings

    vault = vault_folder(vault_arg)
    try:
        loaded = load_settings(vault, overrides)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    if report:
        for problem in loaded.problems:
            log.warning("%s", problem.message)
    return vault, loaded.settings


class _TerminalPrinter:
    """Shows the answer as it is written, and tool activity on stderr."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self.wrote = False

    def __call__(self, event: AgentEvent) -> None:
        from smarthole_notes.llm.events import StreamRestarted, TextDelta, ToolStarted

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
    import asyncio
    import signal

    from smarthole_notes.agent import build_agent, client_for, require_api_key

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
    spent: Usage | None = None
    try:
        result = await service.process(args.text, on_event=printer)
        spent = result.usage
    except BaseException as exc:
        if isinstance(exc, LLMError):
            spent = exc.usage  # the rounds before the failure were billed too
        if printer is not None and printer.wrote:
            sys.stdout.write("\n")  # the error line must not run on from the streamed text
            sys.stdout.flush()
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
        await client.close()
        if spent is not None:
            await asyncio.to_thread(_keep_spending, vault, spent, settings.model)
    usage_line = None
    if args.verbose:
        from smarthole_notes.llm.pricing import format_usage

        usage_line = format_usage(result.usage, result.model)  # tokens and estimated cost
    if result.aborted:
        print("\nStopped.", file=sys.stderr)
        if usage_line:
            print(usage_line, file=sys.stderr)
        return EXIT_INTERRUPTED
    if printer is None:
        sys.stdout.write(result.text)
    sys.stdout.write("\n")
    sys.stdout.flush()
    if usage_line:
        print(usage_line, file=sys.stderr)
    return EXIT_OK


def _keep_spending(vault: Path, usage: Usage, model: str) -> None:
    """`ask`'s bill in the vault's spending ledger, so this month's spending (chat page,
    Settings) counts it; a failure to keep it never fails the command."""
    if not usage.billed:
        return
    from datetime import UTC

    from smarthole_notes.conversations.store import ConversationStore, default_path

    try:
        with ConversationStore(default_path(vault)) as store:
            store.add_spending("ask", usage.to_dict(model), at=datetime.now(UTC))
    except Exception as exc:
        log.warning("Could not keep what this request cost: %s", exc)


def cmd_ask(args: argparse.Namespace) -> int:
    import asyncio

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
        code = _fail(message, exc, args.verbose, EXIT_API_FAILURE)
        if args.verbose and exc.usage.billed:
            from smarthole_notes.llm.pricing import format_usage

            # What the rounds before the failure cost: billed, though nothing was answered.
            print(format_usage(exc.usage, exc.model or ""), file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    from smarthole_notes.server import ServeOptions, serve

    try:
        # `serve` loads the settings again and logs their problems: not here too.
        vault, settings = load_vault_settings(args.vault, {}, report=False)
        if settings.verbose_logging and not args.verbose:
            configure_logging(True)
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
    import asyncio

    from smarthole_notes.inbox import Inbox, inbox_folder
    from smarthole_notes.server import process_inbox

    try:
        # `inbox process` loads the settings again for its pipeline and logs their problems.
        vault, _settings = load_vault_settings(args.vault, {}, report=args.action == "list")
    except ConfigurationError as exc:
        return _fail(str(exc), exc, args.verbose, EXIT_CONFIGURATION)
    if args.action == "list":
        pending = Inbox(inbox_folder(vault)).pending()
        if not pending:
            print("The inbox is empty.")
        for message in pending:
            print(inbox_line(message))
        return EXIT_OK
    inbox = Inbox(inbox_folder(vault))
    for message in inbox.pending():
        # "Process now" means now: failed, refused and scheduled ones too, with a fresh
        # retry schedule (as the chat page's "Process again" does).
        if message.state in ("failed", "refused", "retry_scheduled"):
            inbox.update(message.id, state="queued", next_attempt_at=None, retries=0)
    try:
        outcomes = asyncio.run(process_inbox(vault))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if not outcomes:
        left = len(inbox.pending())
        print(
            f"Nothing was processed; {left} waiting (inbox list)."
            if left
            else "The inbox is empty."
        )
    settled = ("answered", "redelivered", "duplicate", "cancelled")
    for outcome in outcomes:
        print(f"{outcome.message_id}: {OUTCOME_LABELS.get(outcome.status, outcome.status)}")
        if outcome.status not in settled and outcome.text:
            print(f"    {outcome.text}")  # what the user was told, e.g. when serve retries it
    if any(o.status == "no_key" for o in outcomes):
        return EXIT_CONFIGURATION  # like `ask` without a key
    return EXIT_API_FAILURE if any(o.status not in settled for o in outcomes) else EXIT_OK


OUTCOME_LABELS: dict[str, str] = {
    "redelivered": "answered earlier; the answer was delivered now",
    "duplicate": "already processed",
    "cancelled": "stopped",
    "no_key": "waiting for an API key",
    "retry_scheduled": "failed, will be tried again by serve",
    "refused": "refused by Claude",
}


def cmd_undo(args: argparse.Namespace) -> int:
    from smarthole_notes.versioning import GitError, GitVault, undo_in_vault

    try:
        vault, settings = load_vault_settings(args.vault, {})
        if not settings.enable_git_version_control:
            raise ConfigurationError(
                "git versioning is off for this vault, so there is nothing to undo "
                "(turn on enable_git_version_control in Settings)"
            )
        try:
            versioned = GitVault(vault).is_repository()
        except (GitError, OSError) as exc:
            raise ConfigurationError(f"git cannot be used here ({exc})") from exc
        if not versioned:
            raise ConfigurationError(
                "the vault is not a git repository yet: start `serve` once with git "
                "versioning on and it becomes one"
            )
    except ConfigurationError as exc:
        return _fail(str(exc), exc, args.verbose, EXIT_CONFIGURATION)
    result = undo_in_vault(vault, args.target)
    done = result.ok or result.status == "already_undone"
    print(result.message, file=sys.stdout if done else sys.stderr)
    for path in result.conflicts:
        print(f"  conflict: {path}", file=sys.stderr)
    return EXIT_OK if done else EXIT_NOT_UNDONE


def inbox_line(message: InboxMessage) -> str:
    """One message of `inbox list`: id, when it was sent (local time), source, its state with
    the next automatic try, and what the user was told about its last failure."""
    view = message.view()
    label = STATE_LABELS.get(view.state, view.state)
    if view.state == "retry_scheduled" and view.next_attempt_at is not None:
        label = f"failed, next try at {_local(view.next_attempt_at)}"
    attempts = f", {view.attempts} attempt{'s' if view.attempts != 1 else ''}"
    line = (
        f"{message.id}  {_local_text(message.timestamp)}  {message.source}  "
        f"[{label}{attempts if view.attempts else ''}]  {message.text!r}"
    )
    if view.error:
        line += f"\n    {view.error}"
    return line


STATE_LABELS: dict[str, str] = {
    "queued": "queued",
    "processing": "processing",
    "waiting_for_key": "waiting for an API key",
    "retry_scheduled": "failed, will be tried again",
    "failed": "failed, waiting for you (inbox process)",
    "refused": "refused by Claude, waiting for you",
}


def _local(moment: datetime) -> str:
    """A time in the user's zone: HH:MM today, with the date otherwise."""
    local = moment.astimezone() if moment.tzinfo is not None else moment
    if local.date() == datetime.now(local.tzinfo).date():
        return local.strftime("%H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def _local_text(timestamp: str) -> str:
    try:
        return _local(datetime.fromisoformat(timestamp))
    except ValueError:
        return timestamp or "?"


def cmd_mcp(args: argparse.Namespace) -> int:
    from smarthole_notes.mcp.stdio import command

    return command(args.vault, args.verbose)


VAULT_HELP = "the notes folder (default: the current folder)"
VAULT_METAVAR = "PATH"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smarthole-notes",
        description="Keep a Markdown notes vault by voice and chat, with Claude doing the work.",
        epilog="Exit codes: 0 success, 1 the Anthropic API failed, 2 configuration problem, "
        "3 undo did nothing, 130 stopped with Ctrl-C.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ask = sub.add_parser(
        "ask",
        help="run one request against the vault and print the answer",
        description="Run one request against the vault and print the answer (streamed in a "
        "terminal, with the tools used on stderr). Needs ANTHROPIC_API_KEY or a key saved "
        "in the chat page's Settings.",
    )
    ask.add_argument("--vault", metavar=VAULT_METAVAR, help=VAULT_HELP)
    ask.add_argument("--model", help="model for this run (default: the `model` setting)")
    ask.add_argument("--verbose", action="store_true", help="debug logs and tracebacks")
    ask.add_argument("text", metavar="TEXT", help="what to do, in plain language")
    ask.set_defaults(func=cmd_ask)

    serve = sub.add_parser(
        "serve",
        help="run the service (SmartHole client and chat page)",
        description="Run the service: the SmartHole client, the message pipeline and the "
        "chat page with its API. Prints the chat page's address with its access token. "
        "Starts without an API key too: messages are kept until one is set.",
    )
    serve.add_argument("--vault", metavar=VAULT_METAVAR, help=VAULT_HELP)
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other machines can reach (the token still guards every request)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=8765,
        help="HTTP port; 0 picks a free one (default: %(default)s)",
    )
    serve.add_argument(
        "--token",
        help="access token for the chat page (default: the one generated at first start, "
        "kept in ~/.config/smarthole-notes/web-token)",
    )
    where = serve.add_mutually_exclusive_group()
    where.add_argument(
        "--smarthole-url",
        help="SmartHole's address for this run (default: the `smarthole_url` setting, "
        "ws://127.0.0.1:9473 unless changed)",
    )
    where.add_argument(
        "--no-smarthole",
        action="store_true",
        help="do not connect to SmartHole for this run (default: the "
        "`enable_smarthole_connection` setting, on unless changed)",
    )
    serve.add_argument(
        "--model",
        help="model for this run (default: the `model` setting, claude-haiku-4-5 unless changed)",
    )
    serve.add_argument(
        "--verbose", action="store_true", help="debug logs (default: the `verbose_logging` setting)"
    )
    serve.set_defaults(func=cmd_serve)

    inbox = sub.add_parser(
        "inbox",
        help="list or process messages waiting in the inbox",
        description="Messages wait in the inbox while they are queued, wait for an API key, "
        "failed (a transient failure is tried again automatically by `serve`) or were "
        "refused.",
    )
    actions = inbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, summary, description in (
        (
            "list",
            "show each waiting message with its state and next automatic try",
            "Show each message waiting in the inbox, oldest first: its id, when it was sent, "
            "where it came from, its state (queued, waiting for an API key, failed with the "
            "time of the next automatic try, failed and waiting for you, refused) and what "
            "you were told about its last failure.",
        ),
        (
            "process",
            "run every waiting message through the pipeline now, then exit",
            "Run every waiting message through the pipeline now, oldest first, print how "
            "each ended, and exit: 0 if all were answered, 1 if any still failed, 2 if there "
            "is no API key. Do not use it while `serve` runs on the same vault.",
        ),
    ):
        action = actions.add_parser(name, help=summary, description=description)
        action.add_argument("--vault", metavar=VAULT_METAVAR, help=VAULT_HELP)
        action.add_argument("--verbose", action="store_true", help="debug logs")
        action.set_defaults(func=cmd_inbox)

    undo = sub.add_parser(
        "undo",
        help="undo one processed request (git versioning must be on)",
        description="Undo one processed request as a new git commit: the last one, or the "
        "one with the given message id. Needs git versioning (enable_git_version_control; "
        "exit 2 when it is off). Refuses, naming the files, when later edits touched the same "
        "lines (exit 3).",
    )
    undo.add_argument(
        "target",
        nargs="?",
        default="last",
        metavar="MESSAGE_ID|last",
        help="the request to undo (default: %(default)s)",
    )
    undo.add_argument("--vault", metavar=VAULT_METAVAR, help=VAULT_HELP)
    undo.add_argument("--verbose", action="store_true", help="debug logs")
    undo.set_defaults(func=cmd_undo)

    mcp = sub.add_parser(
        "mcp",
        help="serve the vault tools to an MCP client (Claude Desktop, Claude Code) over stdio",
        description="Serve the vault tools over MCP on stdin/stdout, for an MCP client that "
        "starts this command (see the README for Claude Desktop and Claude Code): the vault "
        "tools, and the git history tools and undo while git versioning is on. Changes are "
        "committed like the agent's. Logs go to stderr. Runs safely beside `serve`.",
    )
    mcp.add_argument("--vault", metavar=VAULT_METAVAR, help=VAULT_HELP)
    mcp.add_argument("--verbose", action="store_true", help="debug logs (on stderr)")
    mcp.set_defaults(func=cmd_mcp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(bool(getattr(args, "verbose", False)))
    code: int = args.func(args)
    return code
