"""Postgres persistence: start-up checks, migrations, a connection pool, and the checkpointer.

Everything here fails early and says what is wrong: an unreachable server, rejected
credentials, a database without pgvector, or a vector index whose dimensions differ from the
configured embeddings are reported when the server (or your process) starts, not on the
first run.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import psycopg
from langchain_core.embeddings import Embeddings
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.postgres.base import PostgresIndexConfig
from psycopg import AsyncConnection, conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from memory.embeddings import index_config
from memory.locks import poll_advisory_lock
from memory.postgres_search import TEXT_VECTOR_SQL

logger = logging.getLogger(__name__)

POOL_MAX_SIZE_ENV = "POSTGRES_POOL_MAX_SIZE"
DEFAULT_POOL_MAX_SIZE = 10
CONNECT_TIMEOUT_SECONDS = 10
# How long a process waits for another one to finish the migrations.
MIGRATION_WAIT_SECONDS = 120.0
# The settings AsyncPostgresSaver and AsyncPostgresStore expect of their connections.
CONNECTION_KWARGS: Mapping[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
# Advisory lock key held while one process runs the migrations ("lgmemmig" in ASCII).
MIGRATION_LOCK_KEY = 0x6C676D656D6D6967
# pgvector's HNSW index. ef_construction 200 rather than the default 64: a denser graph brought
# recall@10 at 100,000 memories of one user from 0.86 to 1.00 (bench multi_tenant), for a build
# about twice as long. Applies to new databases; an existing index keeps the parameters it was built with.
HNSW_INDEX: Mapping[str, Any] = {"kind": "hnsw", "vector_type": "vector", "m": 16, "ef_construction": 200}
# Full-text (GIN) index of the memory text, for recall's lexical ranking.
TEXT_INDEX = "store_content_text_idx"

PostgresPool = AsyncConnectionPool[AsyncConnection[DictRow]]


class PostgresConfigurationError(RuntimeError):
    """Postgres mode cannot start; the message says what is wrong and what to change."""


def redact(uri: str) -> str:
    """The URI with its password replaced by ``***``, fit for logs and error messages."""
    parts = urlsplit(uri)
    if not parts.password:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def pool_max_size() -> int:
    """Connections per pool: ``$POSTGRES_POOL_MAX_SIZE``, else 10."""
    raw = os.environ.get(POOL_MAX_SIZE_ENV) or str(DEFAULT_POOL_MAX_SIZE)
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if size < 2:
        raise PostgresConfigurationError(f"{POOL_MAX_SIZE_ENV}={raw!r} must be a whole number of at least 2.")
    return size


def store_index_config(embed: Embeddings | None = None) -> PostgresIndexConfig:
    """The pgvector index: the same embeddings, dimensions and fields as the in-memory store, plus HNSW."""
    config = cast(PostgresIndexConfig, dict(index_config(embed)))
    config["ann_index_config"] = cast(Any, dict(HNSW_INDEX))
    config["distance_type"] = "cosine"
    return config


def _describe(uri: str) -> str:
    params = conninfo.conninfo_to_dict(uri)
    host = str(params.get("host") or "localhost")
    where = host if host.startswith("/") else f"{host}:{params.get('port') or 5432}"
    return f"database {params.get('dbname') or '(default)'!r} as user {params.get('user') or '(default)'!r} at {where}"


def _connection_error(uri: str, error: psycopg.Error) -> PostgresConfigurationError:
    reason = " ".join(str(error).split())
    lowered = reason.lower()
    target = f"{_describe(uri)} (POSTGRES_URI={redact(uri)})"
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        advice = "Postgres rejected the user name or password: fix the credentials in POSTGRES_URI."
    elif "database" in lowered and "does not exist" in lowered:
        advice = "The database does not exist: create it, or name an existing one in POSTGRES_URI."
    elif "role" in lowered and "does not exist" in lowered:
        advice = "The user does not exist on that server: fix the user name in POSTGRES_URI."
    else:
        advice = (
            "The server cannot be reached: check the host and port in POSTGRES_URI and that Postgres is "
            "running, or set POSTGRES_URI=embedded to start a local one."
        )
    return PostgresConfigurationError(f"Cannot connect to {target}. {advice} ({reason})")


@asynccontextmanager
async def connect(uri: str) -> AsyncIterator[AsyncConnection[DictRow]]:
    """One connection with the settings the savers expect; connection failures say what is wrong."""
    try:
        conn = await AsyncConnection.connect(
            uri, connect_timeout=CONNECT_TIMEOUT_SECONDS, **cast(dict[str, Any], CONNECTION_KWARGS)
        )
    except psycopg.Error as error:
        raise _connection_error(uri, error) from error
    async with conn:
        yield cast(AsyncConnection[DictRow], conn)


async def _fetch(conn: AsyncConnection[DictRow], sql: str, params: Iterable[Any] = ()) -> DictRow | None:
    cursor = await conn.execute(cast(Any, sql), tuple(params))
    return await cursor.fetchone()


@asynccontextmanager
async def _migration_lock(conn: AsyncConnection[DictRow]) -> AsyncIterator[None]:
    """Hold the migration lock on ``conn``, so that one process at a time runs the migrations.

    We poll ``pg_try_advisory_lock`` rather than wait in ``pg_advisory_lock``: a session
    waiting inside a statement keeps a snapshot open, and the holder's ``CREATE INDEX
    CONCURRENTLY`` waits for every older snapshot, so the two would wait for each other.
    """
    locked = await poll_advisory_lock(
        conn, MIGRATION_LOCK_KEY, timeout=MIGRATION_WAIT_SECONDS, first_delay=0.05, max_delay=1.0
    )
    if not locked:
        raise PostgresConfigurationError(
            f"Another process has held the migration lock for {MIGRATION_WAIT_SECONDS:g} s; "
            "is a migration stuck? Check pg_locks for advisory lock "
            f"{MIGRATION_LOCK_KEY} and restart that process."
        )
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


async def _ensure_pgvector(conn: AsyncConnection[DictRow], uri: str) -> None:
    if await _fetch(conn, "SELECT extversion FROM pg_extension WHERE extname = 'vector'"):
        return
    where = _describe(uri)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.errors.UndefinedFile as error:
        raise PostgresConfigurationError(
            f"The pgvector extension is not available on the Postgres server of {where}: install pgvector "
            "(https://github.com/pgvector/pgvector) on that server, or set POSTGRES_URI=embedded, "
            f"which ships with it. ({' '.join(str(error).split())})"
        ) from error
    except psycopg.errors.InsufficientPrivilege as error:
        raise PostgresConfigurationError(
            f"The pgvector extension is not installed in {where}, and that user may not install it. "
            "Run `CREATE EXTENSION vector;` in that database as a superuser, then start again. "
            f"({' '.join(str(error).split())})"
        ) from error
    except psycopg.Error as error:
        raise PostgresConfigurationError(
            f"The pgvector extension could not be installed in {where}: {' '.join(str(error).split())}"
        ) from error


async def _check_index_dimensions(conn: AsyncConnection[DictRow], uri: str, dims: int) -> None:
    row = await _fetch(
        conn,
        """
        SELECT a.atttypmod AS dims
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.oid = to_regclass('store_vectors') AND a.attname = 'embedding' AND NOT a.attisdropped
        """,
    )
    if row is None or row["dims"] in (None, -1) or int(row["dims"]) == dims:
        return
    raise PostgresConfigurationError(
        f"The memory store in {_describe(uri)} has a vector index of {row['dims']} dimensions, but the "
        f"configured embeddings have {dims} (EMBEDDING_MODEL; `dims` in langgraph.json and "
        "memory/embeddings.py). Use the embeddings the store was built with, or point POSTGRES_URI "
        "at a new database (the memories would have to be embedded again)."
    )


async def prepare_database(uri: str, index: PostgresIndexConfig) -> None:
    """Check the database and run the checkpointer's and the store's migrations, once.

    Safe when several processes start together: they take turns on an advisory lock, and
    whoever comes second finds the migrations done. Raises ``PostgresConfigurationError``
    with what to fix.
    """
    started = time.perf_counter()
    async with connect(uri) as conn, _migration_lock(conn):
        await _ensure_pgvector(conn, uri)
        await _check_index_dimensions(conn, uri, int(index["dims"]))
        await AsyncPostgresSaver(conn).setup()
        await AsyncPostgresStore(conn, index=index).setup()
        # Recall's lexical half (memory.postgres_search) searches this expression.
        await conn.execute(
            cast(Any, f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {TEXT_INDEX} ON store USING gin ({TEXT_VECTOR_SQL})")
        )
    logger.info("Postgres ready at %s (%.0f ms).", redact(uri), (time.perf_counter() - started) * 1000)


@asynccontextmanager
async def open_pool(uri: str, max_size: int | None = None) -> AsyncIterator[PostgresPool]:
    """A connection pool with the settings the savers expect, closed on exit."""
    pool: PostgresPool = AsyncConnectionPool(
        uri,
        min_size=1,
        max_size=max_size or pool_max_size(),
        kwargs=dict(CONNECTION_KWARGS),
        open=False,
        name="memory-service",
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
    except psycopg.Error as error:
        raise _connection_error(uri, error) from error
    try:
        yield pool
    finally:
        await pool.close()


class PostgresCheckpointer(AsyncPostgresSaver):
    """``AsyncPostgresSaver`` plus ``adelete_for_runs``, which ``langgraph dev`` needs.

    When a run replaces a pending one with ``multitask_strategy="rollback"`` (how the agent
    debounces memory runs), the server deletes the replaced run's checkpoints through this
    method; ``AsyncPostgresSaver`` does not implement it, and the server would then fail.
    """

    async def adelete_for_runs(self, run_ids: Iterable[str]) -> None:
        """Delete the checkpoints written by these runs, and their pending writes.

        Channel values they shared with earlier checkpoints stay; values only they wrote
        are left unreferenced, as when a checkpoint is overwritten.
        """
        ids = [str(run_id) for run_id in run_ids]
        if not ids:
            return
        async with self._cursor() as cur, cur.connection.transaction():
            await cur.execute(
                """
                DELETE FROM checkpoint_writes w USING checkpoints c
                WHERE c.metadata->>'run_id' = ANY(%s)
                  AND w.thread_id = c.thread_id
                  AND w.checkpoint_ns = c.checkpoint_ns
                  AND w.checkpoint_id = c.checkpoint_id
                """,
                (ids,),
            )
            await cur.execute("DELETE FROM checkpoints WHERE metadata->>'run_id' = ANY(%s)", (ids,))


@asynccontextmanager
async def postgres_persistence(
    uri: str, *, embeddings: Embeddings | None = None, max_size: int | None = None
) -> AsyncIterator[tuple[PostgresCheckpointer, AsyncPostgresStore]]:
    """A checkpointer and a store on one connection pool, the database checked and migrated."""
    index = store_index_config(embeddings)
    await prepare_database(uri, index)
    async with open_pool(uri, max_size) as pool:
        yield PostgresCheckpointer(pool), AsyncPostgresStore(pool, index=index)
