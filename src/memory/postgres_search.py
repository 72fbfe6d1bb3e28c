"""Search candidates from Postgres: pgvector similarity and full-text BM25, right for one user among many.

``AsyncPostgresStore.asearch`` orders the shared ``store_vectors`` table by distance and filters
by namespace afterwards. With many users in the table, pgvector's HNSW scan (``hnsw.ef_search``
= 40 candidates, taken from everybody's vectors) leaves a user few or none of their own:
100 users x 1,000 memories gave 6% of the requested results. So we choose the scan per search:

* **Exact** when the namespace holds at most ``EXACT_SCAN_LIMIT`` vectors: the user's rows are
  read through the primary key (``prefix`` first) and sorted by distance. Always right, and
  cheap at that size whatever the table holds.
* **HNSW** above it, with a larger candidate list (``HNSW_EF_SEARCH``; pgvector >= 0.8 also
  continues the scan until the filter is satisfied, ``hnsw.iterative_scan``). If the index
  still returns fewer rows than asked for, the search falls back to the exact scan, so a
  user's results never come back short on any pgvector version.

The lexical half is PostgreSQL full-text search with the ``english`` configuration (a GIN
index on the memory text, created by ``deployment.postgres``), scored with BM25 from each
term's document frequency in the user's namespace: terms found in more than
``LEXICAL_CANDIDATE_LIMIT`` memories are too common to select candidates, but still score.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from langgraph.store.base import Item
from langgraph.store.postgres.aio import AsyncPostgresStore
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from memory import lexical
from memory.memory_index import Candidates, Namespace

EXACT_SCAN_LIMIT = 20_000
HNSW_EF_SEARCH = 400
LEXICAL_CANDIDATE_LIMIT = 1_000
TEXT_SEARCH_CONFIG = "english"
# The indexed expression; the GIN index of ``deployment.postgres`` is built on exactly this.
TEXT_VECTOR_SQL = "to_tsvector('english', COALESCE(value->>'content', ''))"
_ITERATIVE_SCAN_VERSION = (0, 8)
# pgvector refuses a larger hnsw.ef_search; a deeper page is completed by the exact fallback.
_MAX_EF_SEARCH = 1_000


@asynccontextmanager
async def _connection(store: AsyncPostgresStore) -> AsyncIterator[AsyncConnection[DictRow]]:
    conn: Any = store.conn
    if isinstance(conn, AsyncConnectionPool):
        async with conn.connection() as pooled:
            yield cast(AsyncConnection[DictRow], pooled)
    else:
        async with store.lock:
            yield cast(AsyncConnection[DictRow], conn)


def _namespace_text(namespace: Namespace) -> str:
    return ".".join(namespace)


def _vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(value)) for value in vector) + "]"


async def _rows(conn: AsyncConnection[DictRow], sql: str, params: Sequence[Any] | dict[str, Any]) -> list[DictRow]:
    # Never prepared: a prepared statement may switch to a generic plan, blind to which user and
    # which words it is asked about (e.g. computing every row's text vector instead of using the index).
    cursor = await conn.execute(cast(Any, sql), params, prepare=False)
    return await cursor.fetchall()


# Per database (connection string): pgvector's version, and the namespaces found above
# EXACT_SCAN_LIMIT with when to count them again. Both change rarely; counting a large user's
# rows costs more than the HNSW search itself, and a stale answer is still right (see below).
_PGVECTOR_VERSIONS: dict[str, tuple[int, ...]] = {}
_LARGE_UNTIL: dict[tuple[str, str, int], float] = {}
_LARGE_RECHECK_SECONDS = 60.0


async def _pgvector_version(conn: AsyncConnection[DictRow]) -> tuple[int, ...]:
    database = conn.info.dsn
    if database not in _PGVECTOR_VERSIONS:
        rows = await _rows(conn, "SELECT extversion FROM pg_extension WHERE extname = 'vector'", ())
        raw = str(rows[0]["extversion"]) if rows else "0"
        _PGVECTOR_VERSIONS[database] = tuple(int(part) for part in raw.split(".") if part.isdigit())
    return _PGVECTOR_VERSIONS[database]


async def _is_large(conn: AsyncConnection[DictRow], prefix: str) -> bool:
    """Whether the namespace holds more than ``EXACT_SCAN_LIMIT`` vectors (a large one is recounted each minute).

    A namespace that has just shrunk may take the HNSW path for up to a minute, which falls back
    to the exact scan when short, so results stay right either way.
    """
    entry = (conn.info.dsn, prefix, EXACT_SCAN_LIMIT)
    if _LARGE_UNTIL.get(entry, 0.0) > time.monotonic():
        return True
    counted = await _rows(
        conn,
        "SELECT count(*) AS n FROM (SELECT 1 FROM store_vectors WHERE prefix = %s LIMIT %s) mine",
        (prefix, EXACT_SCAN_LIMIT + 1),
    )
    large = int(counted[0]["n"]) > EXACT_SCAN_LIMIT
    if large:
        _LARGE_UNTIL[entry] = time.monotonic() + _LARGE_RECHECK_SECONDS
    else:
        _LARGE_UNTIL.pop(entry, None)
    return large


# The nearest rows come back with the memories themselves, saving the fetch's round trip.
_WITH_MEMORIES = """
    SELECT n.key, n.distance, s.value, s.created_at, s.updated_at FROM ({nearest}) n
    JOIN store s ON s.prefix = %(prefix)s AND s.key = n.key
"""


async def _exact_nearest(conn: AsyncConnection[DictRow], prefix: str, vector: str, limit: int) -> list[DictRow]:
    # Ordering by "distance + 0" rather than the distance itself keeps the planner from walking the
    # HNSW index over everybody's rows: the user's rows are read and sorted, exactly.
    nearest = """
        SELECT key, (embedding <=> %(vector)s::vector) + 0 AS distance FROM store_vectors
        WHERE prefix = %(prefix)s ORDER BY 2 LIMIT %(limit)s
    """
    return await _rows(
        conn, _WITH_MEMORIES.format(nearest=nearest), {"prefix": prefix, "vector": vector, "limit": limit}
    )


async def _indexed_nearest(conn: AsyncConnection[DictRow], prefix: str, vector: str, limit: int) -> list[DictRow]:
    async with conn.transaction():
        ef_search = min(max(HNSW_EF_SEARCH, limit), _MAX_EF_SEARCH)
        await conn.execute(cast(Any, f"SET LOCAL hnsw.ef_search = {ef_search}"))
        if await _pgvector_version(conn) >= _ITERATIVE_SCAN_VERSION:
            # Keep walking the graph until enough rows pass the user filter (pgvector >= 0.8 only).
            await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        nearest = """
            SELECT key, embedding <=> %(vector)s::vector AS distance FROM store_vectors
            WHERE prefix = %(prefix)s ORDER BY embedding <=> %(vector)s::vector LIMIT %(limit)s
        """
        return await _rows(
            conn, _WITH_MEMORIES.format(nearest=nearest), {"prefix": prefix, "vector": vector, "limit": limit}
        )


async def nearest(conn: AsyncConnection[DictRow], prefix: str, vector: str, limit: int) -> list[DictRow]:
    """The memories of the ``limit`` vectors nearest to ``vector`` in the namespace, nearest first, never short.

    Each row: key, distance, value, created_at, updated_at; one per memory.
    """
    if not await _is_large(conn, prefix):
        rows = await _exact_nearest(conn, prefix, vector, limit)
    else:
        rows = await _indexed_nearest(conn, prefix, vector, limit)
        if len({row["key"] for row in rows}) < limit:
            rows = await _exact_nearest(conn, prefix, vector, limit)
    by_key: dict[str, DictRow] = {}
    for row in sorted(rows, key=lambda row: float(row["distance"])):
        by_key.setdefault(str(row["key"]), row)
    return list(by_key.values())[:limit]


def _tsquery(lexemes: Sequence[str]) -> str:
    """``'a' | 'b'``: the lexemes as a tsquery that matches any of them, quoted."""
    return " | ".join("'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'" for lexeme in lexemes)


async def lexical_scores(
    conn: AsyncConnection[DictRow], prefix: str, query: str, parameters: lexical.BM25Parameters
) -> dict[str, float]:
    """BM25 of the memories that share a selective term with the query, by key."""
    frequencies = await _rows(
        conn,
        f"""
        SELECT q.lexeme, (
            SELECT count(*) FROM (
                SELECT 1 FROM store WHERE prefix = %(prefix)s
                AND {TEXT_VECTOR_SQL} @@ quote_literal(q.lexeme)::tsquery LIMIT %(cap)s
            ) hits
        ) AS df
        FROM unnest(to_tsvector('{TEXT_SEARCH_CONFIG}', %(query)s)) AS q
        """,
        {"prefix": prefix, "query": query, "cap": LEXICAL_CANDIDATE_LIMIT + 1},
    )
    document_frequency = {str(row["lexeme"]): int(row["df"]) for row in frequencies if int(row["df"]) > 0}
    selective = [lexeme for lexeme, df in document_frequency.items() if df <= LEXICAL_CANDIDATE_LIMIT]
    if not selective:
        return {}
    counted = await _rows(conn, "SELECT count(*) AS n FROM store WHERE prefix = %s", (prefix,))
    documents = int(counted[0]["n"])
    rows = await _rows(
        conn,
        f"""
        SELECT c.key, t.lexeme, coalesce(array_length(t.positions, 1), 1) AS tf, c.length
        FROM (
            SELECT key, tsv, (SELECT coalesce(sum(coalesce(array_length(u.positions, 1), 1)), 0)
                              FROM unnest(tsv) u) AS length
            FROM (SELECT key, {TEXT_VECTOR_SQL} AS tsv FROM store
                  WHERE prefix = %(prefix)s AND {TEXT_VECTOR_SQL} @@ %(tsquery)s::tsquery
                  LIMIT %(cap)s) matched
        ) c, unnest(c.tsv) t
        WHERE t.lexeme = ANY(%(lexemes)s)
        """,
        {
            "prefix": prefix,
            "tsquery": _tsquery(selective),
            "cap": LEXICAL_CANDIDATE_LIMIT,
            "lexemes": list(document_frequency),
        },
    )
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    lengths: dict[str, int] = {}
    for row in rows:
        counts[str(row["key"])][str(row["lexeme"])] = int(row["tf"])
        lengths[str(row["key"])] = int(row["length"])
    average = sum(lengths.values()) / len(lengths) if lengths else 1.0
    query_lexemes = list(document_frequency)
    return {
        key: lexical.bm25(terms, lengths[key], query_lexemes, document_frequency, documents, average, parameters)
        for key, terms in counts.items()
    }


async def candidates(
    store: AsyncPostgresStore,
    namespace: Namespace,
    query: str,
    query_vector: Sequence[float] | None,
    pool: int,
    parameters: lexical.BM25Parameters,
    *,
    with_words: bool = True,
) -> Candidates:
    """The ``pool`` nearest memories and (``with_words``) the ``pool`` best by BM25, each with both scores."""
    prefix = _namespace_text(namespace)
    vector = _vector_literal(query_vector) if query_vector is not None else None

    async def nearest_memories() -> list[DictRow]:
        if vector is None:
            return []
        async with _connection(store) as conn:
            return await nearest(conn, prefix, vector, pool)

    async def words() -> dict[str, float]:
        if not with_words:
            return {}
        async with _connection(store) as conn:
            return await lexical_scores(conn, prefix, query, parameters)

    if isinstance(store.conn, AsyncConnectionPool):
        # Two pooled connections: the two rankings are searched at the same time.
        nearest_rows, bm25 = await asyncio.gather(nearest_memories(), words())
    else:
        nearest_rows, bm25 = await nearest_memories(), await words()
    rows = [{**row, "similarity": 1 - float(row["distance"])} for row in nearest_rows]
    best_lexical = sorted(bm25, key=lambda key: bm25[key], reverse=True)[:pool]
    seen = {str(row["key"]) for row in rows}
    only_lexical = [key for key in best_lexical if key not in seen]
    if only_lexical:
        async with _connection(store) as conn:
            rows += await _rows(
                conn,
                """
                SELECT s.key, s.value, s.created_at, s.updated_at,
                       max(1 - (sv.embedding <=> %(vector)s::vector)) AS similarity
                FROM store s LEFT JOIN store_vectors sv ON sv.prefix = s.prefix AND sv.key = s.key
                WHERE s.prefix = %(prefix)s AND s.key = ANY(%(keys)s)
                GROUP BY s.prefix, s.key
                """,
                {"prefix": prefix, "vector": vector, "keys": only_lexical},
            )
    found = Candidates()
    for row in rows:
        key = str(row["key"])
        found.items[key] = Item(
            value=row["value"],
            key=key,
            namespace=namespace,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
        found.similarity[key] = float(row["similarity"]) if row["similarity"] is not None else 0.0
        found.lexical[key] = bm25.get(key, 0.0)
    return found
