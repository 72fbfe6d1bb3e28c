"""Hot-path memory tools: langmem's manage and search tools, scoped to the run's user.

We wrap langmem's tools rather than hand them to the model as they are because, in
langmem 0.0.30, they read the namespace only from ``configurable`` (not a run's context),
report success for an update or delete of an unknown id (an update silently creates it),
and raise a ``BaseException`` that kills the run. The wrappers resolve the user, check ids
and sizes, and turn every mistake into a tool error the model can act on. The search tool
keeps langmem's name, description and answer format but searches with ``memory.search``,
the ranking recall uses, instead of the store's similarity alone.
"""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import ToolException, tool
from langgraph.prebuilt import ToolRuntime
from langgraph.store.base import BaseStore
from langmem import create_manage_memory_tool, create_search_memory_tool
from langmem import utils as langmem_utils

from agent.context import Context, context_or_default
from memory import write_guard
from memory.history import Provenance, record_change
from memory.identity import resolve_user_id
from memory.records import MAX_MEMORY_CHARS, memory_namespace, memory_record, message_time
from memory.search import search_memories

MAX_QUERY_CHARS = 1000
M = TypeVar("M", bound=BaseMessage)
MAX_SEARCH_RESULTS = 20

_MANAGE_DESCRIPTION = create_manage_memory_tool(namespace=("memories",)).description
_SEARCH_DESCRIPTION = create_search_memory_tool(namespace=("memories",)).description


def _scope(runtime: ToolRuntime[Context]) -> tuple[BaseStore, tuple[str, ...]]:
    if runtime.store is None:
        raise RuntimeError("The agent has no store: compile the graph with `store=...`.")
    context = context_or_default(runtime.context)
    return runtime.store, memory_namespace(resolve_user_id(context.user_id, runtime.config))


def _latest(runtime: ToolRuntime[Context], kind: type[M]) -> M | None:
    """The conversation's latest message of ``kind`` (the user's turn, or the model's tool call)."""
    messages = runtime.state.get("messages", []) if isinstance(runtime.state, dict) else []
    return next((m for m in reversed(messages) if isinstance(m, kind)), None)


def _provenance(runtime: ToolRuntime[Context]) -> Provenance:
    """The conversation and messages behind a hot-path change: the user's turn and the tool call."""
    human, caller = _latest(runtime, HumanMessage), _latest(runtime, AIMessage)
    thread_id = (runtime.config.get("configurable") or {}).get("thread_id")
    return Provenance("hot_path", thread_id, [human.id if human else None, caller.id if caller else None])


def _stated_at(runtime: ToolRuntime[Context]) -> datetime:
    """When the user said what is being saved: their latest message's time, else now."""
    return message_time(_latest(runtime, HumanMessage)) or datetime.now(UTC)


def _memory_id(raw: str | None, action: str) -> uuid.UUID:
    if not raw:
        raise ToolException(f"To {action} a memory, pass its `id` (from search_memory).")
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise ToolException(
            f"{raw!r} is not a memory id. Ids are UUIDs; call search_memory to find the right one."
        ) from None


@tool("manage_memory", description=_MANAGE_DESCRIPTION)
async def manage_memory(
    action: Annotated[Literal["create", "update", "delete"], "What to do."] = "create",
    content: Annotated[str | None, "The memory text (for create and update)."] = None,
    id: Annotated[str | None, "The memory's id (for update and delete)."] = None,
    *,
    runtime: ToolRuntime[Context],
) -> str:
    """Create, update or delete one of the user's memories."""
    store, namespace = _scope(runtime)
    memory_id: uuid.UUID | None = None
    before = None
    if action in ("update", "delete"):
        memory_id = _memory_id(id, action)
        before = await store.aget(namespace, str(memory_id))
        if before is None:
            raise ToolException(
                f"No memory has id {memory_id}. Call search_memory to find the memory to {action}, or create a new one."
            )
    elif id:
        raise ToolException("Do not pass an `id` to create a memory; one is assigned.")
    if action != "delete":
        if not content or not content.strip():
            raise ToolException(f"To {action} a memory, pass its text as `content`.")
        if len(content) > MAX_MEMORY_CHARS:
            raise ToolException(
                f"This memory is {len(content)} characters; the limit is {MAX_MEMORY_CHARS}. "
                "Save a shorter statement, or split it into several memories."
            )
    # Written here rather than by langmem's tool, which stores the text alone: the record also
    # keeps when it was stated, and every write passes the write guard. Successful answers are
    # langmem's, word for word.
    provenance = _provenance(runtime)
    if action == "delete":
        await store.adelete(namespace, str(memory_id))
        before_value = before.value if before else None
        await record_change(store, namespace[1], namespace, str(memory_id), "delete", before_value, None, provenance)
        return f"Deleted memory {memory_id}"
    text = write_guard.third_person(content or "")
    value = memory_record(text, stated_at=_stated_at(runtime).isoformat())
    target = str(memory_id) if memory_id else None
    written = await write_guard.guarded_write(store, namespace[1], namespace, value, provenance, key=target)
    return _answer(written, action, text)


def _answer(written: write_guard.Written, action: str, text: str) -> str:
    """The tool's answer: langmem's on a write, else what the guard decided and what to do next."""
    match written.outcome:
        case "created" | "updated":
            return f"{action}d memory {written.key}"
        case "merged":
            return f"updated memory {written.key} (it said part of this: {written.existing!r}; it now says it all)"
        case "unchanged":
            return f"Memory {written.key} already says this; nothing was changed."
        case "duplicate":
            return (
                f"Memory {written.key} already says this ({written.existing!r}); nothing was saved. "
                "Do not save it again."
            )
        case "unrelated":
            raise ToolException(
                f"Memory {written.key} says {written.existing!r}, which is unrelated to {text!r}, so it was not "
                "changed. To remember this as well, call manage_memory with action 'create'. To correct memory "
                f"{written.key}, send its full corrected text."
            )


@tool("search_memory", description=_SEARCH_DESCRIPTION)
async def search_memory(
    query: Annotated[str, "What to look for."],
    limit: Annotated[int, "How many memories to return."] = 5,
    *,
    runtime: ToolRuntime[Context],
) -> str:
    """Search the user's memories by meaning."""
    store, namespace = _scope(runtime)
    if not query.strip():
        raise ToolException("Pass a non-empty `query`.")
    if len(query) > MAX_QUERY_CHARS:
        raise ToolException(f"The query is too long ({len(query)} characters; at most {MAX_QUERY_CHARS}).")
    if not 1 <= limit <= MAX_SEARCH_RESULTS:
        raise ToolException(f"`limit` must be between 1 and {MAX_SEARCH_RESULTS}.")
    context = context_or_default(runtime.context)
    memories = await search_memories(store, namespace, query, limit, context.ranking)
    return str(langmem_utils.dumps([memory.dict() for memory in memories]))


TOOLS = [manage_memory, search_memory]
