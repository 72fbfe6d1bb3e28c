"""Recall search: the one code path behind the agent's recall, its search tool and ``GET /me/memories?query=``.

Two rankings find candidates in one namespace: vector similarity (the store's embeddings) and
BM25 over the words (``memory.lexical``), each taking its top ``candidates`` memories. Their
union is scored by

    similarity * (cosine scaled to 0..1 across the candidates)
    + lexical * (BM25 / the best BM25 among the candidates)
    + recency * 0.5 ** (age_days / recency_half_life_days)
    + importance * (importance - 0.5)

and the best ``limit`` are returned. Age counts from when the memory was stated
(``stated_at``), else from its last update. Recency and importance only break near-ties:
their default weights are small next to the two rankings', so an old memory that matches the
query well is never pushed out by a recent one that matches it less (that is what lost recall
before: a recency weight of 0.3 outweighed similarity gaps of 0.1).

The defaults come from LoCoMo (``python -m bench --only locomo_recall --data PATH``): every
turn of real conversations stored as a memory, every question of categories 1-4 asked.

Backends: the in-memory store is searched exactly through ``memory.memory_index``; Postgres
through ``memory.postgres_search``; any other store through its own ``asearch`` (similarity
candidates only, BM25 computed over them).
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import BaseStore, SearchItem
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres.aio import AsyncPostgresStore
from pydantic import BaseModel, ConfigDict, Field

from memory import lexical, memory_index, postgres_search
from memory.lexical import BM25Parameters
from memory.memory_index import Candidates
from memory.records import stated_at

IMPORTANCE_FIELD = "importance"
NEUTRAL_IMPORTANCE = 0.5
_SECONDS_PER_DAY = 86_400.0


class RankingWeights(BaseModel):
    """How recall ranks one namespace's memories for a query. Defaults chosen on LoCoMo."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    similarity: float = Field(
        default=0.6, ge=0.0, le=100.0, description="Weight of embedding similarity (scaled 0..1 across candidates)."
    )
    lexical: float = Field(
        default=0.4,
        ge=0.0,
        le=100.0,
        description="Weight of BM25 word matching (scaled 0..1 across candidates): finds names, numbers, rare words.",
    )
    recency: float = Field(
        default=0.05,
        ge=0.0,
        le=100.0,
        description="Weight of recency, 0.5 ** (age_days / recency_half_life_days), age from when the memory was "
        "stated. Small by default: it breaks near-ties (a newer version of a fact) without outranking relevance.",
    )
    importance: float = Field(
        default=0.05,
        ge=0.0,
        le=100.0,
        description="Weight of the memory's 'importance' (0 to 1, missing counts as 0.5), centred on 0.5.",
    )
    recency_half_life_days: float = Field(
        default=90.0, gt=0.0, le=36_500.0, description="Age in days at which the recency term halves."
    )
    candidates: int = Field(
        default=50,
        ge=1,
        le=500,
        description="Memories each ranking (similarity, BM25) contributes before the combined scoring.",
    )
    bm25: BM25Parameters = Field(default_factory=BM25Parameters, description="BM25 k1 and b.")


SIMILARITY_ONLY = RankingWeights(similarity=1.0, lexical=0.0, recency=0.0, importance=0.0)


def _importance(value: Any) -> float:
    """The memory's importance in [0, 1]; missing or out-of-range values count as neutral (0.5)."""
    raw = value.get(IMPORTANCE_FIELD) if isinstance(value, dict) else None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return NEUTRAL_IMPORTANCE
    return float(raw) if 0.0 <= raw <= 1.0 else NEUTRAL_IMPORTANCE


def _recency(moment: datetime, half_life_days: float, now: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    age_days = max(0.0, (now - moment).total_seconds() / _SECONDS_PER_DAY)
    return math.pow(0.5, age_days / half_life_days)


def rank(found: Candidates, weights: RankingWeights, now: datetime) -> list[SearchItem]:
    """The candidates ordered by the combined score (highest first), which becomes each item's ``score``."""
    if not found.items:
        return []
    keys = list(found.items)
    similarities = [found.similarity.get(key, 0.0) for key in keys]
    low, high = min(similarities), max(similarities)
    best_lexical = max((found.lexical.get(key, 0.0) for key in keys), default=0.0)
    scored = []
    for key, similarity in zip(keys, similarities, strict=True):
        item = found.items[key]
        score = (
            weights.similarity * ((similarity - low) / (high - low) if high > low else 1.0)
            + weights.lexical * (found.lexical.get(key, 0.0) / best_lexical if best_lexical > 0 else 0.0)
            + weights.recency * _recency(stated_at(item.value) or item.updated_at, weights.recency_half_life_days, now)
            + weights.importance * (_importance(item.value) - NEUTRAL_IMPORTANCE)
        )
        scored.append((score, similarity, key))
    scored.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    return [
        SearchItem(
            namespace=found.items[key].namespace,
            key=key,
            value=found.items[key].value,
            created_at=found.items[key].created_at,
            updated_at=found.items[key].updated_at,
            score=score,
        )
        for score, _, key in scored
    ]


def _backend(store: BaseStore) -> BaseStore:
    """The store that holds the data: the server's wrappers keep theirs in ``_store``."""
    seen = 0
    while not isinstance(store, InMemoryStore | AsyncPostgresStore) and hasattr(store, "_store") and seen < 5:
        store = store._store
        seen += 1
    return store


async def _query_vector(store: InMemoryStore | AsyncPostgresStore, query: str) -> list[float] | None:
    embeddings = getattr(store, "embeddings", None)
    if embeddings is None or not store.index_config:
        return None
    vector: list[float] = await embeddings.aembed_query(query)
    return vector


async def _generic_candidates(
    store: BaseStore, namespace: tuple[str, ...], query: str, pool: int, parameters: lexical.BM25Parameters
) -> Candidates:
    """For stores we cannot search ourselves: their similarity search, BM25 over what it returned."""
    items = await store.asearch(namespace, query=query, limit=pool)
    counts = {item.key: lexical.term_counts(str(item.value.get("content", ""))) for item in items}
    frequencies: dict[str, int] = {}
    for terms in counts.values():
        for term in terms:
            frequencies[term] = frequencies.get(term, 0) + 1
    query_terms = lexical.terms(query)
    average = sum(sum(terms.values()) for terms in counts.values()) / len(counts) if counts else 1.0
    found = Candidates()
    for item in items:
        found.items[item.key] = item
        found.similarity[item.key] = item.score or 0.0
        terms = counts[item.key]
        found.lexical[item.key] = lexical.bm25(
            terms, sum(terms.values()), query_terms, frequencies, len(items), average, parameters
        )
    return found


async def search_memories(
    store: BaseStore,
    namespace: tuple[str, ...],
    query: str,
    limit: int,
    weights: RankingWeights | None = None,
    *,
    offset: int = 0,
    now: datetime | None = None,
) -> list[SearchItem]:
    """The ``limit`` best memories for ``query`` in ``namespace`` (after skipping ``offset``), best first.

    ``now`` (default: the current time) is there for reproducible evaluations.
    """
    weights = weights or RankingWeights()
    if limit <= 0 or not query.strip():
        return []
    found = await find_candidates(store, namespace, query, max(weights.candidates, limit + offset), weights)
    ranked = rank(found, weights, now or datetime.now(UTC))
    return ranked[offset : offset + limit]


async def find_candidates(
    store: BaseStore, namespace: tuple[str, ...], query: str, pool: int, weights: RankingWeights | None = None
) -> Candidates:
    """Each ranking's top ``pool`` memories for ``query``, with their raw cosine similarity and BM25 score."""
    weights = weights or RankingWeights()
    backend = _backend(store)
    if isinstance(backend, InMemoryStore):
        vector = await _query_vector(backend, query)
        index = memory_index.index_of(backend)
        return await asyncio.to_thread(index.candidates, namespace, vector, lexical.terms(query), pool, weights.bm25)
    if isinstance(backend, AsyncPostgresStore):
        vector = await _query_vector(backend, query)
        return await postgres_search.candidates(
            backend, namespace, query, vector, pool, weights.bm25, with_words=weights.lexical > 0
        )
    return await _generic_candidates(store, namespace, query, pool, weights.bm25)


async def cosine_similarity(store: BaseStore, first: str, second: str) -> float | None:
    """Cosine similarity of two texts under the store's embeddings (None when the store has none)."""
    backend = _backend(store)
    embeddings = getattr(backend, "embeddings", None)
    if not isinstance(backend, InMemoryStore | AsyncPostgresStore) or embeddings is None or not backend.index_config:
        return None
    a, b = await embeddings.aembed_documents([first, second])
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0
