"""The ``memory_graph``: turns a quiet conversation into consolidated long-term memories.

One pass per batch of unprocessed messages::

    load_batch ─┬─> extract_memories ─┬─> mark_processed ─> load_batch ...
                └─> update_profile ───┘
    (load_batch ends the run when nothing is left to process)

langmem's memory managers do the extraction and consolidation; this graph owns the store
input/output around them so that it can read both record shapes, show the model only the
memories related to the new messages, and move the cursor only after the writes succeeded.
"""

from typing import Any, cast

from langchain_core.messages import AnyMessage, SystemMessage, convert_to_messages, get_buffer_string
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph_sdk import get_client
from langmem import create_memory_manager

from memory_graph import prompts
from memory_graph.context import MemoryContext
from memory_graph.cursor import load_processed_count, save_processed_count
from memory_graph.identity import resolve_user_id
from memory_graph.models import load_chat_model
from memory_graph.records import (
    PROFILE_KEY,
    Memory,
    UserProfile,
    memory_namespace,
    memory_record,
    memory_text,
    profile_namespace,
)
from memory_graph.state import MemoryInput, MemoryState

# Longest text used as the query that finds memories related to a batch.
_RELATED_QUERY_CHARS = 2000


def _messages(raw: Any) -> list[AnyMessage]:
    return [cast(AnyMessage, message) for message in convert_to_messages(raw)]


def _store(runtime: Runtime[MemoryContext]) -> BaseStore:
    if runtime.store is None:
        raise RuntimeError(
            "memory_graph needs a store: run it on a LangGraph server, or compile it with `builder.compile(store=...)`."
        )
    return runtime.store


def _context(runtime: Runtime[MemoryContext]) -> MemoryContext:
    return runtime.context if runtime.context is not None else MemoryContext()


def _user_id(runtime: Runtime[MemoryContext]) -> str:
    return resolve_user_id(_context(runtime).user_id, get_config())


def _thread_key(state: MemoryState) -> str:
    configurable = get_config().get("configurable") or {}
    return state.get("chat_thread_id") or str(configurable.get("thread_id", "default"))


async def _load_conversation(state: MemoryState) -> list[AnyMessage]:
    if state.get("messages"):
        return _messages(state["messages"])
    thread_id = state.get("chat_thread_id")
    if not thread_id:
        raise ValueError("memory_graph input needs `messages` or a `chat_thread_id` to read.")
    thread_state = await get_client().threads.get_state(thread_id)
    values = thread_state["values"]
    messages = values.get("messages", []) if isinstance(values, dict) else []
    return _messages(messages)


async def load_batch(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """Select the next unprocessed messages, with a little already-seen context before them."""
    context = _context(runtime)
    conversation = await _load_conversation(state)
    processed = await load_processed_count(_store(runtime), _user_id(runtime), _thread_key(state), conversation)
    batch_end = min(len(conversation), processed + context.max_messages_per_batch)
    start = max(0, processed - context.overlap_messages)
    return {
        "batch": conversation[start:batch_end],
        "seen_in_batch": processed - start,
        "batch_end": batch_end,
        "last_message_id": conversation[batch_end - 1].id if batch_end else None,
        "done": batch_end <= processed,
    }


def transcript(state: MemoryState) -> list[AnyMessage]:
    """The batch as shown to the extractor, with the already-processed part marked."""
    seen = state["seen_in_batch"]
    if not seen:
        return list(state["batch"])
    return [*state["batch"][:seen], SystemMessage(prompts.NEW_MESSAGES_MARKER), *state["batch"][seen:]]


def route_batch(state: MemoryState) -> list[str]:
    """End when there is nothing new; otherwise update memories and profile in parallel."""
    if state["done"]:
        return [END]
    return ["extract_memories", "update_profile"]


async def extract_memories(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """Insert new facts, update changed ones, delete contradicted ones."""
    context = _context(runtime)
    store = _store(runtime)
    namespace = memory_namespace(_user_id(runtime))
    new_messages = state["batch"][state["seen_in_batch"] :]
    query = get_buffer_string(new_messages)[-_RELATED_QUERY_CHARS:]
    related = await store.asearch(namespace, query=query, limit=context.related_memories)
    existing = {item.key: memory_text(item.value) for item in related}
    manager = create_memory_manager(
        load_chat_model(context.model),
        schemas=[Memory],
        instructions=context.instructions,
        enable_inserts=True,
        enable_updates=True,
        enable_deletes=True,
    )
    extracted = await manager.ainvoke(
        {
            "messages": transcript(state),
            "existing": [(key, "Memory", Memory(content=text)) for key, text in existing.items()],
        }
    )
    for memory in extracted:
        if isinstance(memory.content, Memory):
            if existing.get(memory.id) != memory.content.content:
                await store.aput(namespace, memory.id, memory_record(memory.content.content))
        elif memory.id in existing:
            await store.adelete(namespace, memory.id)
    return {}


async def update_profile(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """Update the user's single profile document in place."""
    context = _context(runtime)
    if not context.update_profile:
        return {}
    store = _store(runtime)
    namespace = profile_namespace(_user_id(runtime))
    current = await store.aget(namespace, PROFILE_KEY)
    manager = create_memory_manager(
        load_chat_model(context.model),
        schemas=[UserProfile],
        instructions=context.profile_instructions,
        enable_inserts=current is None,
        enable_updates=True,
        enable_deletes=False,
    )
    existing = [] if current is None else [(PROFILE_KEY, "UserProfile", UserProfile(**current.value))]
    extracted = await manager.ainvoke({"messages": transcript(state), "existing": existing})
    for memory in extracted:
        if isinstance(memory.content, UserProfile):
            profile = memory.content.model_dump()
            if current is None or profile != current.value:
                await store.aput(namespace, PROFILE_KEY, profile, index=False)
            break
    return {}


async def mark_processed(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """Move the cursor past the batch, now that its memories are stored."""
    await save_processed_count(
        _store(runtime),
        _user_id(runtime),
        _thread_key(state),
        state["batch_end"],
        state["last_message_id"],
    )
    return {}


builder = StateGraph(MemoryState, input_schema=MemoryInput, context_schema=MemoryContext)
builder.add_node(load_batch)
builder.add_node(extract_memories)
builder.add_node(update_profile)
builder.add_node(mark_processed)
builder.add_edge(START, "load_batch")
builder.add_conditional_edges("load_batch", route_batch, ["extract_memories", "update_profile", END])
builder.add_edge(["extract_memories", "update_profile"], "mark_processed")
builder.add_edge("mark_processed", "load_batch")

graph = builder.compile()
graph.name = "memory_graph"
