"""State of the memory graph."""

from typing import Any, TypedDict

from langchain_core.messages import AnyMessage


class Feedback(TypedDict, total=False):
    """Feedback on a conversation, for procedural memory: a score and/or a comment."""

    score: float
    comment: str


class MemoryInput(TypedDict, total=False):
    """What a caller sends: the conversation, or a reference to the chat thread holding it."""

    chat_thread_id: str
    """The chat thread to process. Without `messages`, its messages are fetched from the server."""
    messages: list[Any]
    """The conversation itself (used when the graph runs in-process, outside a server)."""
    feedback: Feedback | None
    """Feedback on the conversation; refines the agent's instructions if procedural memory is on."""


class MemoryState(MemoryInput, total=False):
    """Internal state: only the current batch is kept, never the whole conversation."""

    batch: list[AnyMessage]
    """Already-seen context messages followed by the new messages of this batch, as the extractor
    is shown them: without the agent's tool calls and their results."""
    seen_in_batch: int
    """How many leading messages of `batch` were processed before (context only)."""
    stated_at: str | None
    """When the batch's new messages were said (ISO 8601), from the times they or earlier messages
    carry; None when none carries one."""
    batch_end: int
    """Position in the conversation just after the batch."""
    last_message_id: str | None
    """Id of the batch's last message, where the cursor moves once the batch is stored."""
    feedback_only: bool
    """True when the batch is re-read only to apply feedback (nothing new to extract)."""
    done: bool
    """True when no unprocessed message is left (or the next batch must wait before a retry)."""
    batch_info: dict[str, Any] | None
    """The batch's conversation and message range, as a failure record names it."""
    failure_key: str | None
    """Key of the batch's failure record (see ``failures``); None for feedback-only batches."""
    replay: bool
    """True when the batch is a set-aside one that its owner asked to retry (the cursor stays)."""
    batch_error: str | None
    """Why the batch failed, per memory type; None when every type was stored."""
    over_budget: bool
    """True when the batch failed because the run's budget ran out."""
    run_started_at: float
    """When this run started (seconds since the epoch)."""
    usage: dict[str, int]
    """Model calls, requests sent (retries included), prompt and completion tokens this run spent so far."""
    writes: dict[str, int]
    """What this run wrote so far: created, updated, merged, deleted, duplicates skipped, updates
    of unrelated memories kept apart, profile values dropped as unsupported (see ``consolidation.Writes``)."""
    batches_done: int
    """Batches this run processed or set aside."""
    batches_set_aside: int
    """Batches this run set aside after their last allowed failure."""
    stop_reason: str | None
    """Why the run stopped before processing everything, if it did."""
    report: dict[str, Any] | None
    """What the run did and spent: model calls, requests, tokens, duration, batches; set when it ends."""
