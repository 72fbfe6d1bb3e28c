"""Provenance and change history of memories, for hot-path and background writes alike.

Every create, update and delete of a memory (any type) appends one entry to the user's
history namespace, saying what changed, where it came from (thread and message ids, hot
path or background) and when. Entries are never rewritten, so ``history()`` reads back the
full life of a memory, like mem0's ``history()``; the first entry is its provenance.
Only a user's own request to forget (``forget``) removes entries: the history would
otherwise keep the text of what they asked to delete.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from langgraph.store.base import BaseStore

from memory.records import history_namespace

Source = Literal["hot_path", "background", "feedback", "user"]
Action = Literal["create", "update", "delete"]
_MAX_HISTORY = 1000


class Provenance:
    """Where a change came from: the conversation and messages, and which path wrote it."""

    def __init__(self, source: Source, thread_id: str | None, message_ids: Sequence[str | None]) -> None:
        self.source = source
        self.thread_id = thread_id
        self.message_ids = [m for m in message_ids if m]

    def as_dict(self) -> dict[str, Any]:
        """The provenance as stored in a history entry."""
        return {"source": self.source, "thread_id": self.thread_id, "message_ids": self.message_ids}


async def record_change(
    store: BaseStore,
    user_id: str,
    namespace: tuple[str, ...],
    key: str,
    action: Action,
    before: Any,
    after: Any,
    provenance: Provenance,
) -> None:
    """Append one history entry for a change to the memory ``namespace``/``key``."""
    entry = {
        "namespace": list(namespace),
        "memory_key": key,
        "action": action,
        "before": before,
        "after": after,
        "at": datetime.now(UTC).isoformat(),
        **provenance.as_dict(),
    }
    await store.aput(history_namespace(user_id), str(uuid.uuid4()), entry, index=False)


async def history(
    store: BaseStore, user_id: str, key: str, namespace: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """Every change to one memory, oldest first; the first entry says where it came from.

    Entries name a memory by key; ``namespace`` keeps only those of the memory in that namespace.
    """
    items = await store.asearch(history_namespace(user_id), filter={"memory_key": key}, limit=_MAX_HISTORY)
    entries = [
        item.value for item in items if namespace is None or tuple(item.value.get("namespace", ())) == tuple(namespace)
    ]
    return sorted(entries, key=lambda entry: entry["at"])


async def forget(store: BaseStore, user_id: str, namespace: tuple[str, ...], key: str | None = None) -> int:
    """Erase the history of one memory (or of every memory in ``namespace``); returns the count."""
    doomed: list[str] = []
    offset = 0
    while True:
        page = await store.asearch(
            history_namespace(user_id),
            filter={"memory_key": key} if key is not None else None,
            limit=_MAX_HISTORY,
            offset=offset,
        )
        doomed += [item.key for item in page if tuple(item.value.get("namespace", ())) == tuple(namespace)]
        if len(page) < _MAX_HISTORY:
            break
        offset += _MAX_HISTORY
    for entry_key in doomed:
        await store.adelete(history_namespace(user_id), entry_key)
    return len(doomed)
