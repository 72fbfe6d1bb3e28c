"""Batches of a conversation the memory graph failed to process: retried later, then set aside.

A batch whose extraction fails (provider down, budget spent, answers that cannot be used) is
recorded in the user's ``("memory_failures", user)`` namespace and the run stops; a later run
tries it again once ``retry_at`` has passed, the delay doubling after each failure. After
``batch_attempts`` failures the batch is set aside: the record stays (its owner sees it under
``/me/memory-failures`` and in the export) and the cursor moves past it, so the rest of the
conversation is processed. The owner can ask for a set-aside batch to be retried; the next
memory run of that conversation (started at once on a server) processes it again, with the
memory assistant's settings of that time (e.g. after changing the model).

One record per (conversation, first message of the batch), updated in place. On a server it
also holds ``rerun``, the ``runs.create`` arguments of a memory run of the conversation, so
that asking for a retry starts one at once.
"""

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from langgraph.store.base import BaseStore
from langgraph_sdk import get_client

from memory.records import failure_namespace

logger = logging.getLogger(__name__)

Status = Literal["retrying", "set_aside", "retry_requested"]
# The context fields the agent passes to a memory run; a rerun carries only these.
RERUN_CONTEXT = ("user_id", "memory", "agent_assistant_id", "base_prompt")
# Fixed so that a batch keeps its record key across runs and restarts.
_KEY_NAMESPACE = uuid.UUID("0b0f3a52-1d7e-4b8e-9c59-5f0f6f3e2a71")
_MAX_ERROR_CHARS = 2000
_SCAN_PAGE = 100


def failure_key(chat_thread_id: str, first_message: str) -> str:
    """The record key of the batch of ``chat_thread_id`` that starts at ``first_message``."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{chat_thread_id}\n{first_message}"))


def retry_delay(attempts: int, first_delay: float) -> float:
    """Seconds to wait after the ``attempts``-th failure: ``first_delay``, doubled after each further one."""
    return first_delay * 2 ** (attempts - 1)


async def load(store: BaseStore, user_id: str, key: str) -> dict[str, Any] | None:
    """The failure record ``key``, if there is one."""
    item = await store.aget(failure_namespace(user_id), key)
    return item.value if item else None


async def clear(store: BaseStore, user_id: str, key: str) -> None:
    """Forget a failure: its batch has now been processed."""
    await store.adelete(failure_namespace(user_id), key)


async def record(
    store: BaseStore,
    user_id: str,
    key: str,
    batch: dict[str, Any],
    error: str,
    *,
    max_attempts: int,
    first_delay: float,
    give_up: bool = False,
) -> dict[str, Any]:
    """Count one more failure of the batch; set it aside after ``max_attempts`` (or at once with ``give_up``).

    ``batch`` holds ``chat_thread_id``, ``first_message_id``, ``last_message_id`` and the
    message range ``start`` / ``end``. Returns the record as stored.
    """
    now = datetime.now(UTC)
    before = await load(store, user_id, key) or {}
    attempts = int(before.get("attempts", 0)) + 1
    set_aside = give_up or attempts >= max_attempts
    value = {
        **batch,
        "error": error[:_MAX_ERROR_CHARS],
        "attempts": attempts,
        "first_failed_at": before.get("first_failed_at", now.isoformat()),
        "last_failed_at": now.isoformat(),
        "status": "set_aside" if set_aside else "retrying",
        "retry_at": None if set_aside else (now + timedelta(seconds=retry_delay(attempts, first_delay))).isoformat(),
    }
    await store.aput(failure_namespace(user_id), key, value, index=False)
    return value


def waiting_seconds(value: dict[str, Any]) -> float:
    """Seconds until a retrying batch may be tried again (0 if it may be now)."""
    if value.get("status") != "retrying" or not value.get("retry_at"):
        return 0.0
    return max(0.0, (datetime.fromisoformat(value["retry_at"]) - datetime.now(UTC)).total_seconds())


async def all_records(store: BaseStore, user_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every failure record of the user, as (key, value), oldest failure first."""
    found: list[tuple[str, dict[str, Any]]] = []
    while True:
        page = await store.asearch(failure_namespace(user_id), limit=_SCAN_PAGE, offset=len(found))
        found += [(item.key, item.value) for item in page]
        if len(page) < _SCAN_PAGE:
            return sorted(found, key=lambda pair: str(pair[1].get("first_failed_at", "")))


async def requested(store: BaseStore, user_id: str, chat_thread_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Set-aside batches of one conversation whose owner asked for another attempt."""
    wanted = {"chat_thread_id": chat_thread_id, "status": "retry_requested"}
    items = await store.asearch(failure_namespace(user_id), filter=wanted, limit=_SCAN_PAGE)
    return [(item.key, item.value) for item in items]


async def request_retry(store: BaseStore, user_id: str, key: str) -> dict[str, Any] | None:
    """Ask for a set-aside batch to be processed again by its conversation's next memory run."""
    value = await load(store, user_id, key)
    if value is None:
        return None
    if value.get("status") == "set_aside":
        value = {**value, "status": "retry_requested"}
        await store.aput(failure_namespace(user_id), key, value, index=False)
    return value


async def start_run(request: dict[str, Any], *, after_seconds: int = 0) -> bool:
    """Start a memory run from ``rerun`` arguments on this server, queued after any run on its thread.

    Returns False (and logs why) if it could not be created: the conversation's next memory
    run then does the work.
    """
    thread_id = str(request["thread_id"])
    try:
        await get_client().runs.create(
            thread_id,
            str(request["assistant_id"]),
            input=request["input"],
            context=request["context"],
            after_seconds=after_seconds,
            multitask_strategy="enqueue",
        )
    except Exception:
        logger.exception("Could not start a memory run on thread %s; the next one will cover it.", thread_id)
        return False
    return True
