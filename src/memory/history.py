"""Provenance and change history of memories, for hot-path and background writes alike.

Every create, update and delete of a memory (any type) appends one entry to the user's
history namespace, saying what changed, where it came from (thread and message ids, hot
path or background) and when. Entries are never rewritten, so ``history()`` reads back the
full life of a memory, like mem0's ``history()``; the first entry is its provenance.
Only a user's own request to forget (``forget``) removes entries: the history would
otherwise keep the text of what they asked to delete.

Because each entry keeps the value before the change, a change can be undone
(``undo_latest_change``): the undo puts that value back and is itself an entry (action
``undo``), so undoing it re-applies what was undone. A memory that a change removed stays
findable through its history (``deleted``) until it is restored or forgotten.
"""

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from langgraph.store.base import BaseStore, Item

from memory.records import history_namespace

Source = Literal["hot_path", "background", "feedback", "user"]
# "undo": the user put a memory back as it was before its previous change (see undo_latest_change).
Action = Literal["create", "update", "delete", "undo"]
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
    extra: dict[str, Any] | None = None,
) -> None:
    """Append one history entry for a change to the memory ``namespace``/``key`` (``extra``: more fields)."""
    entry = {
        "namespace": list(namespace),
        "memory_key": key,
        "action": action,
        "before": before,
        "after": after,
        "at": datetime.now(UTC).isoformat(),
        **provenance.as_dict(),
        **(extra or {}),
    }
    await store.aput(history_namespace(user_id), str(uuid.uuid4()), entry, index=False)


async def _entries(store: BaseStore, user_id: str, key: str | None = None) -> list[Item]:
    """The user's history entries (of one memory key, if given), paged through so none is missed."""
    found: list[Item] = []
    while True:
        page = await store.asearch(
            history_namespace(user_id),
            filter={"memory_key": key} if key is not None else None,
            limit=_MAX_HISTORY,
            offset=len(found),
        )
        found.extend(page)
        if len(page) < _MAX_HISTORY:
            return found


def _in(namespace: tuple[str, ...] | None, entry: Mapping[str, Any]) -> bool:
    return namespace is None or tuple(entry.get("namespace", ())) == tuple(namespace)


def _at(entry: Mapping[str, Any]) -> str:
    return str(entry.get("at", ""))


async def history(
    store: BaseStore, user_id: str, key: str, namespace: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """Every change to one memory, oldest first; the first entry says where it came from.

    Entries name a memory by key; ``namespace`` keeps only those of the memory in that namespace.
    """
    entries = [item.value for item in await _entries(store, user_id, key) if _in(namespace, item.value)]
    return sorted(entries, key=_at)


async def forget(store: BaseStore, user_id: str, namespace: tuple[str, ...], key: str | None = None) -> int:
    """Erase the history of one memory (or of every memory in ``namespace``); returns the count."""
    doomed = [item.key for item in await _entries(store, user_id, key) if _in(namespace, item.value)]
    for entry_key in doomed:
        await store.adelete(history_namespace(user_id), entry_key)
    return len(doomed)


class NothingToUndo(LookupError):
    """No change to this memory is recorded: there is nothing to go back to."""


class CannotUndo(ValueError):
    """The memory's latest recorded change cannot be undone; the message says why."""


def _is_value(value: Any) -> bool:
    return value is None or isinstance(value, Mapping)


async def undo_latest_change(
    store: BaseStore,
    user_id: str,
    namespace: tuple[str, ...],
    key: str,
    provenance: Provenance,
    *,
    index: Literal[False] | list[str] | None = None,
    check: Callable[[Mapping[str, Any]], object] | None = None,
) -> dict[str, Any]:
    """Put the memory ``namespace``/``key`` back as it was before its latest recorded change.

    An update is reverted to the text (and every other field) before it, a deletion brings
    the memory back under the same key, a creation is undone by deleting the memory. The undo
    is recorded (action ``undo``, naming the change it undid), so undoing again re-applies
    that change. ``index`` is passed to ``store.aput`` (None: the store's own index
    configuration); ``check`` is called with the entry of the change before it is undone, and
    may raise ``CannotUndo`` to refuse it. Returns that entry.

    Raises ``NothingToUndo`` when no change of the memory is recorded, and ``CannotUndo`` when
    the memory already holds the value from before that change, or was changed since without
    being recorded (through the store API): undoing would then discard a change the history
    does not know.
    """
    entries = await history(store, user_id, key, namespace)
    if not entries:
        raise NothingToUndo(f"No change to memory {key!r} is recorded.")
    latest = entries[-1]
    before, after = latest.get("before"), latest.get("after")
    if not (_is_value(before) and _is_value(after)) or (before is None and after is None):
        raise CannotUndo(
            "its latest recorded change does not hold the memory's values, so there is nothing to put back."
        )
    item = await store.aget(namespace, key)
    current = item.value if item else None
    if current == before:
        raise CannotUndo(
            f"it already holds what it held before its latest change ({latest.get('action')} at {latest.get('at')}): "
            "there is nothing to undo."
        )
    if current != after:
        raise CannotUndo(
            f"it was changed after its latest recorded change ({latest.get('action')} at {latest.get('at')}) "
            "through the store API, which the history does not record; edit it instead."
        )
    if check is not None:
        check(latest)
    if before is None:
        await store.adelete(namespace, key)
    else:
        await store.aput(namespace, key, dict(before), index=index)
    undone = {"action": latest.get("action"), "at": latest.get("at"), "source": latest.get("source")}
    await record_change(store, user_id, namespace, key, "undo", current, before, provenance, {"undoes": undone})
    return latest


async def deleted(store: BaseStore, user_id: str, namespace: tuple[str, ...]) -> list[dict[str, Any]]:
    """The memories of ``namespace`` whose latest change removed them and that are still gone.

    One entry per memory, its latest (a deletion, or the undo of its creation), newest first:
    ``before`` holds the memory as it was. Reads the user's whole history.
    """
    latest: dict[str, dict[str, Any]] = {}
    for item in await _entries(store, user_id):
        entry, key = item.value, item.value.get("memory_key")
        if isinstance(key, str) and _in(namespace, entry) and (key not in latest or _at(entry) >= _at(latest[key])):
            latest[key] = entry
    removed = [
        entry for entry in latest.values() if entry.get("after") is None and isinstance(entry.get("before"), Mapping)
    ]
    gone = [entry for entry in removed if await store.aget(namespace, entry["memory_key"]) is None]
    return sorted(gone, key=_at, reverse=True)
