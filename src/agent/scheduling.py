"""After each turn: hand the conversation to the memory graph, without waiting for it.

On a LangGraph server the agent creates a delayed run of the memory graph on a thread of
its own (one per user and conversation). ``multitask_strategy="rollback"`` makes each new
turn replace the still-pending run, so a burst of turns yields one memory run that starts
once the conversation has been quiet for the configured delay. Outside a server there is
no queue to debounce with: the memory graph runs in-process after the turn, or is skipped.
"""

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AnyMessage
from langgraph.store.base import BaseStore
from langgraph_sdk import get_client

from agent.context import Context
from memory_graph.context import MemoryContext
from memory_graph.graph import builder as memory_graph_builder

logger = logging.getLogger(__name__)

# Fixed so that the memory thread of a (user, conversation) pair is the same after a restart.
_MEMORY_THREAD_NAMESPACE = uuid.UUID("6f1c3f0e-8a7b-4c1e-9a53-2d7c5b8e4f10")
# A long conversation is processed in batches, a few graph steps each.
_MEMORY_RECURSION_LIMIT = 1000
_logged_local_choice = False


def memory_thread_id(user_id: str, chat_thread_id: str) -> str:
    """The thread that holds memory runs for one user's conversation (never the chat thread)."""
    return str(uuid.uuid5(_MEMORY_THREAD_NAMESPACE, f"{user_id}\n{chat_thread_id}"))


def is_server_run(config: Mapping[str, Any]) -> bool:
    """True when a LangGraph server executes this run (it stamps every run with a request id)."""
    return bool((config.get("configurable") or {}).get("langgraph_request_id"))


def memory_context(user_id: str, context: Context, agent_assistant_id: str | None) -> dict[str, Any]:
    """What the memory run must know of this chat assistant: the user and its memory settings."""
    return {
        "user_id": user_id,
        "memory": context.memory.model_dump(mode="json"),
        "agent_assistant_id": agent_assistant_id,
        "base_prompt": context.system_prompt,
    }


def memory_run_request(
    user_id: str, chat_thread_id: str, context: Context, agent_assistant_id: str | None = None
) -> dict[str, Any]:
    """Arguments of the ``runs.create`` call that schedules the memory graph."""
    return {
        "thread_id": memory_thread_id(user_id, chat_thread_id),
        "assistant_id": context.memory_assistant_id,
        "input": {"chat_thread_id": chat_thread_id},
        "context": memory_context(user_id, context, agent_assistant_id),
        "config": {"recursion_limit": _MEMORY_RECURSION_LIMIT},
        "metadata": {"chat_thread_id": chat_thread_id, "user_id": user_id},
        "after_seconds": context.memory_delay_seconds,
        "multitask_strategy": "rollback",
        "if_not_exists": "create",
    }


async def schedule_remote(user_id: str, chat_thread_id: str, context: Context, agent_assistant_id: str | None) -> str:
    """Create the delayed memory run on the same deployment; returns its run id."""
    request = memory_run_request(user_id, chat_thread_id, context, agent_assistant_id)
    run = await get_client().runs.create(**request)
    return str(run["run_id"])


async def run_in_process(
    store: BaseStore | None,
    user_id: str,
    chat_thread_id: str,
    messages: Sequence[AnyMessage],
    context: Context,
    agent_assistant_id: str | None,
) -> None:
    """Outside a server: run the memory graph now, or skip it, as configured (logged once)."""
    global _logged_local_choice
    run_it = context.memory_without_server == "in_process" and store is not None
    if not _logged_local_choice:
        _logged_local_choice = True
        if run_it:
            logger.info("No LangGraph server: background memory runs in-process after each turn.")
        else:
            reason = "no store was given" if store is None else "memory_without_server='skip'"
            logger.info("No LangGraph server: background memory is skipped (%s).", reason)
    if not run_it:
        return
    memory_graph = memory_graph_builder.compile(store=store, checkpointer=False)
    await memory_graph.ainvoke(
        {"messages": list(messages), "chat_thread_id": chat_thread_id},
        {"recursion_limit": _MEMORY_RECURSION_LIMIT},
        context=MemoryContext.model_validate(memory_context(user_id, context, agent_assistant_id)),
    )
