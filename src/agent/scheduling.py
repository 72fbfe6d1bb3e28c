"""After each turn: hand the conversation to the memory graph, without waiting for it.

On a LangGraph server the agent creates a delayed run of the memory graph on a thread of
its own (one per user and conversation). ``multitask_strategy="rollback"`` makes each new
turn replace the still-pending run, so a burst of turns yields one memory run that starts
once the conversation has been quiet for the configured delay. Outside a server there is
no queue to debounce with: the memory graph runs in-process after the turn, or is skipped.

The memory thread's id is derived from the user and the chat thread with a deployment
secret, so nobody else can compute it and occupy the thread first. Should the thread be
unusable anyway (a client error on ``runs.create``), the next id of the same derivation is
tried. Scheduling never fails the chat turn: a run that cannot be created is logged and
dropped, and since the memory graph's cursor has not moved, the next turn's run covers
these messages too.
"""

import hashlib
import hmac
import logging
import os
import secrets
import uuid
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AnyMessage
from langgraph.config import get_store
from langgraph.store.base import BaseStore
from langgraph_sdk import get_client
from langgraph_sdk.errors import APIStatusError

from agent.context import Context
from memory.locks import user_lock
from memory_graph.context import MemoryContext
from memory_graph.graph import builder as memory_graph_builder

logger = logging.getLogger(__name__)

SECRET_ENV = "MEMORY_THREAD_SECRET"
# A one-label namespace: the store API confines every caller to ("<kind>", <caller>, ...),
# so no user can read or replace the secret kept here.
_SECRET_NAMESPACE = ("memory_service",)
_SECRET_KEY = "memory_thread_secret"
# Ids tried per turn before scheduling gives up (the first is the usual one).
_THREAD_CANDIDATES = 3
# A long conversation is processed in batches, a few graph steps each; every model call of a
# batch happens inside one step, whose work the memory graph bounds itself.
_MEMORY_RECURSION_LIMIT = 1000
_logged_local_choice = False
_stored_secrets: weakref.WeakKeyDictionary[BaseStore, bytes] = weakref.WeakKeyDictionary()


def memory_thread_id(user_id: str, chat_thread_id: str, secret: bytes | str, candidate: int = 0) -> str:
    """The thread that holds memory runs for one user's conversation (never the chat thread).

    A keyed hash of the user and the chat thread: stable across restarts, and impossible to
    compute without the deployment's secret. ``candidate`` > 0 gives the fallbacks.
    """
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{user_id}\n{chat_thread_id}\n{candidate}".encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


async def thread_secret(store: BaseStore) -> bytes:
    """The deployment's secret for memory thread ids: ``$MEMORY_THREAD_SECRET``, else one kept in the store.

    The stored one is created at random on first use, under a lock so that concurrent
    workers agree on it, and then cached per store.
    """
    configured = os.environ.get(SECRET_ENV)
    if configured:
        return configured.encode()
    cached = _stored_secrets.get(store)
    if cached is not None:
        return cached
    async with user_lock(store, "", _SECRET_KEY):
        item = await store.aget(_SECRET_NAMESPACE, _SECRET_KEY)
        if item is None:
            value = secrets.token_hex(32)
            await store.aput(_SECRET_NAMESPACE, _SECRET_KEY, {"secret": value}, index=False)
        else:
            value = str(item.value["secret"])
    _stored_secrets[store] = value.encode()
    return value.encode()


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
    thread_id: str, user_id: str, chat_thread_id: str, context: Context, agent_assistant_id: str | None = None
) -> dict[str, Any]:
    """Arguments of the ``runs.create`` call that schedules the memory graph on ``thread_id``."""
    return {
        "thread_id": thread_id,
        "assistant_id": context.memory_assistant_id,
        "input": {"chat_thread_id": chat_thread_id},
        "context": memory_context(user_id, context, agent_assistant_id),
        "config": {"recursion_limit": _MEMORY_RECURSION_LIMIT},
        "metadata": {"chat_thread_id": chat_thread_id, "user_id": user_id},
        "after_seconds": context.memory_delay_seconds,
        "multitask_strategy": "rollback",
        "if_not_exists": "create",
    }


def _unusable_thread(error: Exception) -> bool:
    """A client error about the thread itself (missing, not ours, busy in another way): try another id."""
    return isinstance(error, APIStatusError) and 400 <= error.status_code < 500 and error.status_code not in (408, 429)


async def schedule_remote(
    user_id: str, chat_thread_id: str, context: Context, agent_assistant_id: str | None
) -> str | None:
    """Create the delayed memory run on the same deployment; its run id, or None if it was dropped.

    Never raises: a failure here must not fail the chat turn (see the module docstring).
    """
    try:
        secret = await thread_secret(get_store())
        for candidate in range(_THREAD_CANDIDATES):
            thread_id = memory_thread_id(user_id, chat_thread_id, secret, candidate)
            request = memory_run_request(thread_id, user_id, chat_thread_id, context, agent_assistant_id)
            try:
                run = await get_client().runs.create(**request)
            except Exception as error:
                if not _unusable_thread(error):
                    raise
                logger.warning("Memory thread %s cannot be used (%s); trying the next one.", thread_id, error)
                continue
            return str(run["run_id"])
        logger.error(
            "No memory thread could be used for conversation %s of user %s; its memory run is dropped.",
            chat_thread_id,
            user_id,
        )
    except Exception:
        logger.exception(
            "Could not schedule the memory run of conversation %s; the next turn's run will cover it.", chat_thread_id
        )
    return None


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
