"""One memory run at a time per user and kind of memory, for the read-modify-write steps.

Each extraction reads what is stored (the related memories, the profile), asks the model,
then writes. Two runs of one user doing that at once would both miss what the other is
adding: the same fact stored twice, or one profile update overwriting the other. So the
memory graph holds ``user_lock(store, user_id, scope)`` from its read through its writes.

We chose a lock per (user, scope) over optimistic retries because the window includes a
model call: retrying would pay for that call again, while waiting costs nothing, and runs
of different users (or the memories and the profile of one user) still run in parallel.

* On a Postgres store the lock is a Postgres advisory lock, so it holds across processes
  and server workers. It is taken in this process first (an ``asyncio.Lock`` per key), so
  that at most one connection per key and process waits in Postgres and waiters do not
  drain the pool.
* On any other store (the in-memory one, which lives in a single process) the
  ``asyncio.Lock`` alone does it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.store.base import BaseStore
from langgraph.store.postgres.aio import AsyncPostgresStore
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

# Locks of this process, per event loop (an asyncio.Lock belongs to one loop).
_local: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, tuple[asyncio.Lock, int]]] = (
    weakref.WeakKeyDictionary()
)


def lock_key(user_id: str, scope: str) -> int:
    """The advisory lock id of (user, scope): a stable signed 64-bit hash."""
    digest = hashlib.blake2b(f"memory_graph\0{scope}\0{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@asynccontextmanager
async def _local_lock(name: str) -> AsyncIterator[None]:
    locks = _local.setdefault(asyncio.get_running_loop(), {})
    lock, users = locks.get(name) or (asyncio.Lock(), 0)
    locks[name] = (lock, users + 1)
    try:
        async with lock:
            yield
    finally:
        lock, users = locks[name]
        if users == 1:
            del locks[name]
        else:
            locks[name] = (lock, users - 1)


@asynccontextmanager
async def _advisory_lock(conn: AsyncConnection[Any], key: int) -> AsyncIterator[None]:
    await conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    released = False
    try:
        yield
    finally:
        try:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            released = True
        finally:
            if not released:
                # Closing the session is the only other way to release its lock.
                await conn.close()


@asynccontextmanager
async def _postgres_lock(store: AsyncPostgresStore, key: int) -> AsyncIterator[None]:
    if isinstance(store.conn, AsyncConnectionPool):
        # A connection of its own: the lock is held by the session, for the whole block.
        async with store.conn.connection() as conn, _advisory_lock(conn, key):
            yield
    else:
        # One shared connection: waiting in Postgres would block every other statement on
        # it, including this run's own writes, so poll without waiting instead.
        conn = store.conn
        await poll_advisory_lock(conn, key)
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


async def _try_advisory_lock(conn: AsyncConnection[Any], key: int) -> bool:
    cursor = await conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (key,))
    row: Any = await cursor.fetchone()
    return bool(row["locked"] if isinstance(row, dict) else row[0])


async def poll_advisory_lock(
    conn: AsyncConnection[Any],
    key: int,
    *,
    timeout: float | None = None,
    first_delay: float = 0.01,
    max_delay: float = 0.5,
) -> bool:
    """Take session advisory lock ``key`` without waiting inside a statement: try, back off, retry.

    Returns False if ``timeout`` seconds pass first (never, without a timeout).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = first_delay
    while not await _try_advisory_lock(conn, key):
        if deadline is not None and time.monotonic() > deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)
    return True


def namespace_scope(namespace: tuple[str, ...]) -> str:
    """The lock scope of a kind of memory: its namespace without the user ("custom:recipes")."""
    return ":".join(part for index, part in enumerate(namespace) if index != 1)


@asynccontextmanager
async def user_lock(store: BaseStore, user_id: str, scope: str) -> AsyncIterator[None]:
    """Hold the lock of ``user_id``'s ``scope`` (e.g. ``"memories"``, ``"profile"``) for the block."""
    key = lock_key(user_id, scope)
    async with _local_lock(f"{key}"):
        if isinstance(store, AsyncPostgresStore):
            async with _postgres_lock(store, key):
                yield
        else:
            yield
