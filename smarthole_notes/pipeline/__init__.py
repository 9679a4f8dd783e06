"""The life of a message: inbox, ack, queue, agent, record, report, clean-up, retries, side jobs.

Every message, from SmartHole or the chat page, goes through `Pipeline.submit`
(`core.py`): it is written durably to the inbox first, recorded in the conversation history
with its real time, and processed one at a time in arrival order.

Exactly one answer per message: the answer is recorded in the history (the commit point)
before it is delivered, and the message leaves the inbox only once it was delivered. A
restart that finds a message both answered and still in the inbox delivers the recorded
answer instead of running the request again. A crash before the commit point leaves the
message in the inbox; the next start runs it again, telling the agent it is a retry.

The parts, one job each: `core` (queue, worker), `states` (what the user sees of each
waiting message), `outcomes` (how a message ends), `turn` (one message's agent run
and its records), `delivery` (answers and failures to the chat page and SmartHole),
`retries` (what a failure leads to), `hooks` (typed events the side jobs subscribe to:
`commits`, git versioning of each request; `lifecycle`, summaries, retrospection,
retention, stale questions), `access` (the API key
and the shared client), `jobs` (background work), `texts` (every sentence the user reads).
"""

from smarthole_notes.pipeline.core import Pipeline, utc_now
from smarthole_notes.pipeline.delivery import Messenger
from smarthole_notes.pipeline.outcomes import Outcome
from smarthole_notes.pipeline.texts import KEY_REJECTED_NOTICE, NO_KEY_NOTICE, RETRY_NOTE

__all__ = [
    "KEY_REJECTED_NOTICE",
    "NO_KEY_NOTICE",
    "RETRY_NOTE",
    "Messenger",
    "Outcome",
    "Pipeline",
    "utc_now",
]
