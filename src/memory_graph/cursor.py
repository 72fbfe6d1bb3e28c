"""Which messages of a conversation the memory service has already processed.

The cursor lives in the store next to the memories, so it survives restarts and works
in-process as well as on a server. It only moves after a batch's memories are written:
a run that fails leaves it where it was, and the next run covers those messages again.
"""

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AnyMessage
from langgraph.store.base import BaseStore

from memory.records import cursor_namespace


async def load_processed_count(
    store: BaseStore, user_id: str, thread_id: str, conversation: Sequence[AnyMessage]
) -> int:
    """Number of leading messages already processed (0 for a new conversation).

    The cursor names the last processed message by id. If that message is no longer in
    the conversation (edited or trimmed), everything is processed again: consolidation
    then updates existing memories rather than duplicating them, and nothing is skipped.
    The stored count is used only for messages that have no ids.
    """
    item = await store.aget(cursor_namespace(user_id), thread_id)
    if item is None:
        return 0
    last_id = item.value.get("last_message_id")
    if last_id is None:
        return min(int(item.value.get("count", 0)), len(conversation))
    for index in range(len(conversation) - 1, -1, -1):
        if conversation[index].id == last_id:
            return index + 1
    return 0


async def save_processed_count(
    store: BaseStore, user_id: str, thread_id: str, count: int, last_message_id: str | None
) -> None:
    """Record that the first ``count`` messages, up to ``last_message_id``, are in memory."""
    value: dict[str, Any] = {"count": count, "last_message_id": last_message_id}
    await store.aput(cursor_namespace(user_id), thread_id, value, index=False)
