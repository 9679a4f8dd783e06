"""What the agent remembers between messages besides history: whether it is waiting for an answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class ConversationState:
    """Set by `send_message` with `is_question`; persisted so a restart keeps the thread."""

    waiting_for_answer: bool = False
    pending_question: str | None = None
    question_message_id: str | None = None
    tool_call_count: int = 0

    def ask(self, question: str, message_id: str | None) -> None:
        self.waiting_for_answer = True
        self.pending_question = question
        self.question_message_id = message_id

    def answered(self) -> None:
        self.waiting_for_answer = False
        self.pending_question = None
        self.question_message_id = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversationState:
        question = data.get("pending_question")
        message_id = data.get("question_message_id")
        return cls(
            waiting_for_answer=bool(data.get("waiting_for_answer", False)),
            pending_question=question if isinstance(question, str) else None,
            question_message_id=message_id if isinstance(message_id, str) else None,
            tool_call_count=int(data.get("tool_call_count", 0)),
        )
