"""Extract and consolidate one memory type into the store with a langmem memory manager.

We call langmem's ``create_memory_manager`` (extraction only) and do the store reads and
writes here, rather than using its store manager, because that one reads only its own
record shape (it raises ``KeyError: 'kind'`` on the hot-path tool's records), cannot show
the extractor just the memories related to the new messages, and keeps no history.

``extract`` asks the model and returns the changes unwritten; ``Extraction.write`` writes them
once every memory type of the batch has been extracted, so a batch is written all or nothing.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphRecursionError
from langgraph.store.base import BaseStore
from langmem import create_memory_manager
from pydantic import BaseModel, Field

from memory.history import Action, Provenance, record_change
from memory.records import STATED_AT_FIELD
from memory.write_guard import guarded_write
from memory_graph.budget import CallLog, MeteredChatModel, RunBudget, UnusableOutput
from memory_graph.evidence import Evidence

# A stored value -> (schema name, current content) as the extractor is shown it.
FromRecord = Callable[[dict[str, Any]], tuple[str, Any]]
# Extracted content -> the value to store.
ToRecord = Callable[[BaseModel], dict[str, Any]]


@dataclass(frozen=True)
class MemoryCollection:
    """One memory type as the extractor sees it, and where and how it is stored."""

    namespace: tuple[str, ...]
    schemas: Sequence[Any]
    """Pydantic models or OpenAI function schemas offered to the extractor."""
    instructions: str
    to_record: ToRecord
    from_record: FromRecord
    document_key: str | None = None
    """Set for a single document per user (updated in place); None for a collection."""
    deletes: bool = True
    """Whether the extractor may delete contradicted records (collections only)."""
    shared_document: bool = False
    """A document that other schemas also write (the profile): stored fields the extractor did
    not produce are kept, so one assistant's schema never erases another's fields. Its changes
    must be supported by the user's words (see ``evidence``)."""


class NothingToSave(BaseModel):
    """Call this only when the user's new messages say nothing new about the user.

    Nothing about their life, work, home, plans, preferences or people: only questions, small
    talk, or what is already saved.
    """

    # Optional: an answer that leaves it out must still count (trustcall's repair of a first
    # answer that fails validation crashes in 0.0.39).
    reason: str = Field(default="", description="Why there is nothing to save, in a few words.")


def extractor_config(attempts: int) -> RunnableConfig:
    """Limits of one extraction, set here so that it never inherits the memory run's recursion limit.

    trustcall reads ``max_attempts`` for its repair rounds; its "Fix the validation error"
    loop is not counted by them, so only the step limit ends that loop (one model call a
    step). The first answer takes two steps (extract, validate), each further attempt three
    (patch, sync, validate); one step is spare.
    """
    return {"recursion_limit": 3 * attempts + 1, "configurable": {"max_attempts": attempts}}


def _comparable(content: Any) -> Any:
    return content.model_dump() if isinstance(content, BaseModel) else content


@dataclass
class Writes:
    """What the writes of a memory run did, for its report."""

    created: int = 0
    updated: int = 0
    merged: int = 0
    deleted: int = 0
    duplicates_skipped: int = 0
    unrelated_kept_apart: int = 0
    unsupported_profile_values: int = 0

    def add(self, other: "Writes") -> None:
        """Add another batch's counts to these."""
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


async def write_document(
    store: BaseStore,
    user_id: str,
    namespace: tuple[str, ...],
    key: str,
    before: dict[str, Any] | None,
    value: dict[str, Any],
    provenance: Provenance,
) -> Writes:
    """Store a document (the profile, a patch-mode record, learned instructions; unindexed) and log the change."""
    await store.aput(namespace, key, value, index=False)
    action: Action = "create" if before is None else "update"
    await record_change(store, user_id, namespace, key, action, before, value, provenance)
    return Writes(created=before is None, updated=before is not None)


@dataclass
class Extraction:
    """One memory type's changes from one batch, not yet written: a batch is written all or nothing."""

    collection: MemoryCollection
    changes: list["Change"]
    user_id: str
    provenance: Provenance
    stated_at: datetime | None
    unsupported: list[str] = field(default_factory=list)

    async def write(self, store: BaseStore) -> Writes:
        """Write the changes; records of a collection pass the write guard (see ``memory.write_guard``)."""
        collection, namespace = self.collection, self.collection.namespace
        writes = Writes(unsupported_profile_values=len(self.unsupported))
        for target, before, value in self.changes:
            if value is None:
                await store.adelete(namespace, target)
                await record_change(store, self.user_id, namespace, target, "delete", before, None, self.provenance)
                writes.deleted += 1
                continue
            if collection.document_key is not None:
                writes.add(await write_document(store, self.user_id, namespace, target, before, value, self.provenance))
                continue
            if self.stated_at is not None:
                value = {**value, STATED_AT_FIELD: self.stated_at.isoformat()}
            await self._write_record(store, writes, target if before is not None else None, value)
        return writes

    async def _write_record(self, store: BaseStore, writes: Writes, key: str | None, value: dict[str, Any]) -> None:
        namespace = self.collection.namespace
        written = await guarded_write(store, self.user_id, namespace, value, self.provenance, key=key)
        if written.outcome == "unrelated":
            # The model updated the wrong memory: keep that one, and the new text as a memory of its own.
            writes.unrelated_kept_apart += 1
            written = await guarded_write(store, self.user_id, namespace, value, self.provenance)
        match written.outcome:
            case "created":
                writes.created += 1
            case "updated":
                writes.updated += 1
            case "merged":
                writes.merged += 1
            case "duplicate" | "unchanged":
                writes.duplicates_skipped += 1


async def extract(
    store: BaseStore,
    collection: MemoryCollection,
    model: BaseChatModel,
    transcript: Sequence[AnyMessage],
    *,
    query: str,
    related_limit: int,
    user_id: str,
    provenance: Provenance,
    budget: RunBudget,
    attempts: int,
    evidence: Evidence,
    stated_at: datetime | None = None,
) -> Extraction:
    """What the model asks to insert, update and delete for one memory type; nothing is written yet.

    Records (not documents) will keep ``stated_at``: when the messages they came from were said.
    A document's changes the user's words in ``evidence`` do not support are dropped (see ``evidence``).

    The extraction makes at most the calls ``budget`` still allows and gets ``attempts`` to
    produce valid memories. It raises an ``ExtractionError`` if the provider failed, the budget
    ran out, or none of the model's answers could be used.
    """
    namespace, key = collection.namespace, collection.document_key
    if key is not None:
        item = await store.aget(namespace, key)
        existing = {key: item.value} if item else {}
    else:
        items = await store.asearch(namespace, query=query, limit=related_limit)
        existing = {item.key: item.value for item in items}
    shown = {k: collection.from_record(v) for k, v in existing.items()}
    if key is not None:
        # A document with none of this schema's fields yet is created, not patched.
        shown = {k: (kind, content) for k, (kind, content) in shown.items() if content}
    log = CallLog()
    inserts = key is None or not shown
    metered = MeteredChatModel(base=model, budget=budget, log=log, force_tool_call=inserts)
    manager = create_memory_manager(
        metered,
        # An extractor forced to call a tool must be able to say that there is nothing to save.
        schemas=[*collection.schemas, NothingToSave] if inserts else list(collection.schemas),
        instructions=collection.instructions,
        enable_inserts=inserts,
        enable_updates=True,
        enable_deletes=key is None and collection.deletes,
    )
    payload = {"messages": list(transcript), "existing": [(k, kind, content) for k, (kind, content) in shown.items()]}
    try:
        extracted = await manager.ainvoke(payload, extractor_config(attempts))
    except GraphRecursionError as error:
        log.raise_failure(nothing_extracted=True)
        raise UnusableOutput(
            f"The model did not produce valid memories within {attempts} attempts: "
            f"{'; '.join(log.unusable[-3:]) or 'it kept answering with patches that could not be applied'}."
        ) from error
    except AttributeError as error:
        # trustcall 0.0.39 crashes repairing a first answer that fails its schema (a Memory without
        # content): "'ExtractionState' object has no attribute 'tool_call_id'". The model's fault.
        log.raise_failure(nothing_extracted=True)
        raise UnusableOutput(f"The model's answer did not match the memory schema ({error}).") from error
    said_nothing_new = any(isinstance(memory.content, NothingToSave) for memory in extracted)
    changes = _changes(collection, existing, shown, extracted)
    log.raise_failure(nothing_extracted=not changes and not said_nothing_new)
    if collection.shared_document:
        changes = [
            (target, before, evidence.filter_document(before or {}, value or {})) for target, before, value in changes
        ]
        changes = [change for change in changes if change[2] != (change[1] or {})]
    return Extraction(collection, changes, user_id, provenance, stated_at, evidence.dropped)


# (key, value before, value after); after is None for a deletion.
Change = tuple[str, dict[str, Any] | None, dict[str, Any] | None]


def _changes(
    collection: MemoryCollection,
    existing: dict[str, dict[str, Any]],
    shown: dict[str, tuple[str, Any]],
    extracted: Sequence[Any],
) -> list[Change]:
    """What the extraction asks to write: new and changed records, and deletions."""
    key = collection.document_key
    changes: list[Change] = []
    for memory in extracted:
        target = key or memory.id
        before = existing.get(target)
        if type(memory.content).__name__ == "RemoveDoc":
            if key is None and before is not None:
                changes.append((target, before, None))
            continue
        # langmem hands back the records it left alone as they were shown, e.g. plain dicts.
        if not isinstance(memory.content, BaseModel) or isinstance(memory.content, NothingToSave):
            continue
        if target in shown and _comparable(memory.content) == _comparable(shown[target][1]):
            continue
        value = collection.to_record(memory.content)
        if collection.shared_document and before is not None:
            value = {**before, **value}
        if value != before:
            changes.append((target, before, value))
        if key is not None:
            break
    return changes
