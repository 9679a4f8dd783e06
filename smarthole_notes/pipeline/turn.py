"""One message, start to finish of its agent run: history, context, tools, the agent, the answer.

The pipeline's worker hands each message to `Turns.run`, which records the request in its
conversation, builds the agent with every tool on the service's one vault-access layer, runs
it (once more with less context when the conversation is too long for the model), keeps the
agent's mid-task messages in the history, and returns what happened. Recording the answer is
the commit point of a message: after it, a crash delivers, never re-runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from smarthole_notes.agent import build_agent
from smarthole_notes.bus import EventBus
from smarthole_notes.clock import local_zone
from smarthole_notes.conversations.context import build_context
from smarthole_notes.conversations.store import (
    Conversation,
    ConversationStore,
    InputMethod,
    StoredMessage,
    summarise_tool_input,
    tool_uses_from_calls,
)
from smarthole_notes.inbox import InboxMessage
from smarthole_notes.llm.errors import ErrorCode, LLMError
from smarthole_notes.llm.events import (
    AgentEvent,
    StreamRestarted,
    TextDelta,
    ToolFinished,
    ToolStarted,
)
from smarthole_notes.llm.service import AgentResult, AgentService
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.llm.types import StopReason, Usage
from smarthole_notes.pipeline.commits import RequestCommits
from smarthole_notes.pipeline.delivery import Delivery
from smarthole_notes.pipeline.hooks import ConversationEnded, Hooks
from smarthole_notes.pipeline.texts import LESS_CONTEXT, RETRY_NOTE, empty_answer
from smarthole_notes.settings import Settings
from smarthole_notes.tools.catalog import NOTE_WRITING_TOOLS
from smarthole_notes.tools.conversation import TurnContext, conversation_tools
from smarthole_notes.tools.git import git_tools
from smarthole_notes.vault import Vault

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger("smarthole_notes.pipeline")


@dataclass(slots=True)
class TurnRun:
    """What one run of a message produced: a result, or the error that ended it."""

    message: InboxMessage
    conversation: Conversation
    request: StoredMessage
    turn: TurnContext
    result: AgentResult | None = None
    error: LLMError | None = None

    @property
    def tools_used(self) -> list[dict[str, Any]]:
        """The tool calls that ran (before the error, if it failed), JSON-ready."""
        if self.result is not None:
            calls = self.result.tools_used
        else:
            calls = self.error.tools_used if self.error is not None else []
        return [dataclasses.asdict(t) for t in tool_uses_from_calls(calls)]

    @property
    def changed_notes(self) -> bool:
        """Whether a tool that writes to the vault ran successfully."""
        return any(t["name"] in NOTE_WRITING_TOOLS and not t["is_error"] for t in self.tools_used)


class Turns:
    def __init__(
        self,
        vault: Vault,
        store: ConversationStore,
        bus: EventBus,
        settings: Callable[[], Settings],
        clock: Callable[[], datetime],
        hooks: Hooks,
        commits: RequestCommits,
        delivery: Delivery,
    ) -> None:
        self.vault = vault
        self._store = store
        self._bus = bus
        self._settings = settings
        self._clock = clock
        self._hooks = hooks
        self._commits = commits
        self._delivery = delivery
        self.current: AgentService | None = None
        self._abort_requested = False

    async def record_request(
        self, message: InboxMessage, arrived: datetime | None = None
    ) -> StoredMessage:
        """The user's message in the active conversation, at the time it arrived.

        Recorded when it arrives, not when it is processed, so that a message waiting for
        a key or a retry is in the chat with its real time. If its conversation has ended
        since (idle, or ended by the agent), it moves to the current one, keeping its time.
        """
        recorded = await asyncio.to_thread(self._store.user_message, message.id)
        at = arrived or self._clock()
        if recorded is not None:
            conversation = await asyncio.to_thread(self._store.get, recorded.conversation_id)
            if conversation is not None and conversation.active:
                return recorded
            at = recorded.created_at
        idle = timedelta(minutes=self._settings().conversation_idle_timeout_minutes)
        active, ended = await asyncio.to_thread(self._store.begin_message, self._clock(), idle)
        if ended is not None:
            await self._hooks.emit(ConversationEnded(ended))
        return await asyncio.to_thread(
            self._store.add_message,
            active.id,
            "user",
            message.text,
            source=message.source,
            input_method=_input_method(message),
            message_id=message.id,
            at=at,
            usage=recorded.usage if recorded is not None else None,  # it moves with it
        )

    async def run(self, message: InboxMessage, client: anthropic.AsyncAnthropic) -> TurnRun:
        """Run the agent on `message`. An API failure is returned in `error`, not raised."""
        request = await self.record_request(message)
        conversation = await asyncio.to_thread(self._store.get, request.conversation_id)
        assert conversation is not None
        zone, zone_name = local_zone()
        context = await asyncio.to_thread(
            build_context, self._store, conversation, zone, zone_name, before_row=request.row_id
        )
        state = await asyncio.to_thread(self._store.load_state, conversation.id)
        run = TurnRun(
            message,
            conversation,
            request,
            TurnContext(message, conversation.id, state or ConversationState()),
        )
        recorder = UpdateRecorder(
            self._store, conversation.id, request.row_id, message.source, self._clock
        )
        text = f"{RETRY_NOTE}\n\n{message.text}" if message.attempts > 1 else message.text
        unanswered = Usage()  # what attempts that ended without an answer cost
        try:
            try:
                run.result = await self._agent(run, client, context, text, recorder)
            except LLMError as error:
                if error.code is not ErrorCode.CONTEXT_TOO_LONG:
                    raise
                unanswered += error.usage
                log.warning("Message %s: conversation too long; retrying with less", message.id)
                run.result = await self._agent(run, client, LESS_CONTEXT, text, recorder)
        except LLMError as error:
            run.error = error
            unanswered += error.usage
        finally:
            self.current = None
            await recorder.flush()
        if run.result is not None and run.result.aborted:
            unanswered += run.result.usage
        if unanswered.billed:
            record = unanswered.to_dict(self._settings().model)  # priced as answers are
            total = await asyncio.to_thread(
                self._store.add_usage, request.row_id, record, at=self._clock()
            )
            if total is not None:
                self._bus.publish("request_cost", message_id=message.id, usage=total)
        return run

    def abort(self) -> None:
        """Stop the message in hand: at once if its agent runs, else before it starts (Stop
        pressed while the message was still being set up)."""
        self._abort_requested = True
        if self.current is not None:
            self.current.abort()

    def next_message(self) -> None:
        """A new message is taken up: an earlier Stop does not apply to it."""
        self._abort_requested = False

    async def _agent(
        self,
        run: TurnRun,
        client: anthropic.AsyncAnthropic,
        context: str,
        text: str,
        recorder: UpdateRecorder,
    ) -> AgentResult:
        tools = conversation_tools(
            run.turn, bus=self._bus, store=self._store, notifier=self._delivery.messenger
        )
        git = self._commits.git()
        if git is not None:
            tools += git_tools(git)
        agent = build_agent(
            self.vault,
            self._settings(),
            client,
            extra_tools=tools,
            conversation_context=lambda: context,
        )
        agent.state = run.turn.state
        if self._abort_requested:
            return AgentResult("", StopReason.OTHER, aborted=True)
        self.current = agent
        return await agent.process(text, on_event=self._forward(run.message.id, recorder))

    async def record_answer(self, run: TurnRun) -> StoredMessage:
        """The commit point: the answer (with its tools and usage) and the state, recorded."""
        assert run.result is not None
        result = run.result
        if not run.turn.asked_question:
            run.turn.state.answered()
        now = self._clock()
        stored = await asyncio.to_thread(
            self._store.add_message,
            run.conversation.id,
            "assistant",
            result.text.strip() or empty_answer(result),
            source=run.message.source,
            reply_to=run.request.row_id,
            tools_used=tool_uses_from_calls(result.tools_used),
            at=now,
            usage=usage_record(result, self._settings().model),
        )
        await asyncio.to_thread(self._store.save_state, run.conversation.id, run.turn.state, now)
        return stored

    async def record_refusal(self, run: TurnRun, error: LLMError) -> None:
        """A refusal is kept in the history as a refusal: never as an answer."""
        await asyncio.to_thread(
            self._store.add_message,
            run.conversation.id,
            "assistant",
            error.user_message,
            source=run.message.source,
            reply_to=run.request.row_id,
            at=self._clock(),
            kind="refusal",
            tools_used=tool_uses_from_calls(error.tools_used),
        )

    def _forward(self, message_id: str, recorder: UpdateRecorder) -> Callable[[AgentEvent], None]:
        bus = self._bus

        def forward(event: AgentEvent) -> None:
            if isinstance(event, TextDelta):
                bus.publish("text_delta", message_id=message_id, text=event.text)
            elif isinstance(event, ToolStarted):
                recorder.started(event)
                bus.publish(
                    "tool_started",
                    message_id=message_id,
                    tool=event.name,
                    input=summarise_tool_input(event.input),
                )
            elif isinstance(event, ToolFinished):
                recorder.finished(event)
                bus.publish(
                    "tool_finished",
                    message_id=message_id,
                    tool=event.name,
                    is_error=event.is_error,
                    summary=event.summary,
                )
            elif isinstance(event, StreamRestarted):
                bus.publish("stream_restarted", message_id=message_id)

        return forward


class UpdateRecorder:
    """Keeps the agent's mid-task messages (`send_message`) in the history as they are sent,
    so they survive a reload of the chat page and appear in the conversation's context."""

    def __init__(
        self,
        store: ConversationStore,
        conversation_id: str,
        request_row: int,
        source: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._clock = clock
        self._store = store
        self._conversation_id = conversation_id
        self._request_row = request_row
        self._source = source
        self._inputs: dict[str, dict[str, Any]] = {}
        self._writes: list[asyncio.Task[None]] = []

    def started(self, event: ToolStarted) -> None:
        if event.name == "send_message":
            self._inputs[event.tool_use_id] = dict(event.input)

    def finished(self, event: ToolFinished) -> None:
        tool_input = self._inputs.pop(event.tool_use_id, None)
        if tool_input is None or event.is_error:
            return
        text = str(tool_input.get("message", "")).strip()
        question = bool(tool_input.get("is_question"))
        self._writes.append(asyncio.create_task(self._write(text, question)))

    async def _write(self, text: str, question: bool) -> None:
        try:
            await asyncio.to_thread(
                self._store.add_message,
                self._conversation_id,
                "assistant",
                text,
                source="smarthole" if self._source == "smarthole" else "chat",
                reply_to=self._request_row,
                at=self._clock(),
                kind="question" if question else "update",
            )
        except Exception:
            log.exception("Could not record the agent's message in the history")

    async def flush(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes)
            self._writes.clear()


def usage_record(result: AgentResult, model: str) -> dict[str, Any]:
    """What an answer cost (tokens, model, estimated cost), kept with it in the history."""
    return result.usage.to_dict(model)


def _input_method(message: InboxMessage) -> InputMethod:
    if message.source == "chat":
        return "typed"
    method = message.metadata.get("inputMethod")
    return method if method in ("voice", "text") else "text"
