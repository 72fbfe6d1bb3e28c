"""The ``memory_graph``: turns a quiet conversation into consolidated long-term memories.

One pass per batch of unprocessed messages::

                ┌─> extract_memories ───┐
                ├─> update_profile ─────┤
    load_batch ─┼─> extract_episodes ───┼─> mark_processed ─> load_batch ...
                ├─> extract_custom ─────┤
                └─> refine_instructions ┘
    (load_batch ends the run when nothing is left to process)

Each memory type is extracted by a langmem memory manager (see ``consolidation``); a type
the assistant did not enable is a no-op. The cursor moves only after all writes succeeded.
"""

from typing import Any, cast

from langchain_core.messages import AnyMessage, SystemMessage, convert_to_messages, get_buffer_string
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph_sdk import get_client
from langmem import create_prompt_optimizer

from memory.history import Provenance, Source, record_change
from memory.identity import resolve_user_id
from memory.locks import user_lock
from memory.records import instructions_namespace
from memory_graph import kinds, prompts
from memory_graph.consolidation import MemoryCollection, consolidate
from memory_graph.context import MemoryContext
from memory_graph.cursor import load_processed_count, save_processed_count
from memory_graph.models import load_chat_model
from memory_graph.state import MemoryInput, MemoryState

# Longest text used as the query that finds memories related to a batch.
_RELATED_QUERY_CHARS = 2000
_EXTRACTORS = ["extract_memories", "update_profile", "extract_episodes", "extract_custom", "refine_instructions"]


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
    """Select the next unprocessed messages, with a little already-seen context before them.

    With nothing new but feedback given, the latest messages are re-read for the feedback only.
    """
    context = _context(runtime)
    conversation = await _load_conversation(state)
    processed = await load_processed_count(_store(runtime), _user_id(runtime), _thread_key(state), conversation)
    batch_end = min(len(conversation), processed + context.max_messages_per_batch)
    feedback_only = batch_end <= processed and bool(state.get("feedback")) and bool(conversation)
    start = max(0, processed - (context.max_messages_per_batch if feedback_only else context.overlap_messages))
    return {
        "batch": conversation[start:batch_end],
        "seen_in_batch": 0 if feedback_only else processed - start,
        "batch_end": batch_end,
        "last_message_id": conversation[batch_end - 1].id if batch_end else None,
        "feedback_only": feedback_only,
        "done": batch_end <= processed and not feedback_only,
    }


def transcript(state: MemoryState) -> list[AnyMessage]:
    """The batch as shown to the extractor, with the already-processed part marked."""
    seen = state["seen_in_batch"]
    if not seen:
        return list(state["batch"])
    return [*state["batch"][:seen], SystemMessage(prompts.NEW_MESSAGES_MARKER), *state["batch"][seen:]]


def route_batch(state: MemoryState) -> list[str]:
    """End when there is nothing new; otherwise update every memory type in parallel."""
    return [END] if state["done"] else list(_EXTRACTORS)


async def _consolidate(state: MemoryState, runtime: Runtime[MemoryContext], collection: MemoryCollection) -> None:
    """Consolidate one memory type, one run at a time per user and type (see ``locks``)."""
    context = _context(runtime)
    store, user_id = _store(runtime), _user_id(runtime)
    new_messages = state["batch"][state["seen_in_batch"] :]
    scope = ":".join(part for index, part in enumerate(collection.namespace) if index != 1)
    async with user_lock(store, user_id, scope):
        await consolidate(
            store,
            collection,
            load_chat_model(context.model),
            transcript(state),
            query=get_buffer_string(new_messages)[-_RELATED_QUERY_CHARS:],
            related_limit=context.related_memories,
            user_id=user_id,
            provenance=Provenance("background", _thread_key(state), [m.id for m in new_messages]),
        )


async def extract_memories(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """Semantic facts: insert new ones, update changed ones, delete contradicted ones."""
    settings = _context(runtime).memory.semantic
    if settings.enabled and not state["feedback_only"]:
        await _consolidate(state, runtime, kinds.semantic(_user_id(runtime), settings))
    return {}


async def update_profile(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """The user's single profile document, updated in place."""
    settings = _context(runtime).memory.profile
    if settings.enabled and not state["feedback_only"]:
        await _consolidate(state, runtime, kinds.profile(_user_id(runtime), settings))
    return {}


async def extract_episodes(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """Episodes of interactions that went well, for few-shot recall."""
    settings = _context(runtime).memory.episodic
    if settings.enabled and not state["feedback_only"]:
        await _consolidate(state, runtime, kinds.episodic(_user_id(runtime), settings))
    return {}


async def extract_custom(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """Records of the memory types the assistant's configuration defines."""
    if not state["feedback_only"]:
        for custom_type in _context(runtime).memory.custom_types:
            await _consolidate(state, runtime, kinds.custom(_user_id(runtime), custom_type))
    return {}


def _feedback_text(state: MemoryState) -> str:
    feedback = state.get("feedback") or {}
    parts = [f"score: {feedback['score']}" if "score" in feedback else "", feedback.get("comment", "")]
    return "; ".join(part for part in parts if part)


async def refine_instructions(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """Procedural memory: refine the agent's instructions from feedback with langmem's optimizer."""
    context = _context(runtime)
    settings = context.memory.procedural
    if not settings.enabled:
        return {}
    store, user_id = _store(runtime), _user_id(runtime)
    async with user_lock(store, user_id, "instructions"):
        namespace = instructions_namespace(user_id)
        key = settings.instructions_key(context.agent_assistant_id)
        current = await store.aget(namespace, key)
        prompt = current.value["prompt"] if current else context.base_prompt
        if not prompt:
            raise ValueError(
                "Procedural memory needs the agent's system prompt to refine: pass it as context `base_prompt`."
            )
        optimizer = create_prompt_optimizer(load_chat_model(context.model), kind="prompt_memory")
        new_prompt = await optimizer.ainvoke(
            {
                "trajectories": [(transcript(state), _feedback_text(state))],
                "prompt": {"name": "instructions", "prompt": prompt, "update_instructions": settings.instructions},
            }
        )
        if not new_prompt.strip() or new_prompt == prompt:
            return {}
        base_prompt = current.value.get("base_prompt") if current else context.base_prompt
        value = {"prompt": new_prompt, "base_prompt": base_prompt}
        await store.aput(namespace, key, value, index=False)
        source: Source = "feedback" if state.get("feedback") else "background"
        message_ids = [m.id for m in state["batch"][state["seen_in_batch"] :]]
        provenance = Provenance(source, _thread_key(state), message_ids)
        before = current.value if current else None
        await record_change(
            store, user_id, namespace, key, "update" if current else "create", before, value, provenance
        )
    return {}


async def mark_processed(state: MemoryState, runtime: Runtime[MemoryContext]) -> dict[str, Any]:
    """Move the cursor past the batch, now that its memories are stored; feedback is spent."""
    if not state["feedback_only"]:
        await save_processed_count(
            _store(runtime), _user_id(runtime), _thread_key(state), state["batch_end"], state["last_message_id"]
        )
    return {"feedback": None}


builder = StateGraph(MemoryState, input_schema=MemoryInput, context_schema=MemoryContext)
builder.add_node(load_batch)
builder.add_node(extract_memories)
builder.add_node(update_profile)
builder.add_node(extract_episodes)
builder.add_node(extract_custom)
builder.add_node(refine_instructions)
builder.add_node(mark_processed)
builder.add_edge(START, "load_batch")
builder.add_conditional_edges("load_batch", route_batch, [*_EXTRACTORS, END])
builder.add_edge(_EXTRACTORS, "mark_processed")
builder.add_edge("mark_processed", "load_batch")

graph = builder.compile()
graph.name = "memory_graph"
