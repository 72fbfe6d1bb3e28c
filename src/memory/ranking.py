"""Rank recalled memories by similarity, recency and importance combined.

langmem's search tool hands the query straight to ``store.asearch``, so memories come back
ordered by embedding similarity alone. That ordering cannot tell a fact from the fact that
replaced it: "User's home city is Paris" (written a year ago) and "User moved, so User's home
city is now Berlin" (written last week) are about equally similar to "What is my home city?",
and the older, shorter sentence often wins. Chit-chat that happens to share the query's words
("User asked which city is best for a weekend away") crowds out real facts the same way.

``ranked_search`` over-fetches similarity candidates and re-orders them by

    similarity_weight * similarity
    + recency_weight * 0.5 ** (age_days / half_life_days)
    + importance_weight * importance

so that, among memories relevant to the query, newer and more important ones come first.
Similarity still selects the candidates: recency and importance only re-order what the
semantic index found, they never bring in an unrelated memory.

The defaults come from a grid search on the offline retrieval sets of ``tests/retrieval_set.py``
(``python -m bench --only recall_quality`` prints it): the newer fact must win first, then
recall@5, then MRR@5. There is a trade-off: the recency weight that lets a wordier update beat
the statement it replaced also lets recent, loosely related memories push out old facts that
still hold; less recency recalls more but serves a superseded fact more often.
"""

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import BaseStore, SearchItem
from pydantic import BaseModel, ConfigDict, Field

IMPORTANCE_FIELD = "importance"
NEUTRAL_IMPORTANCE = 0.5
_SECONDS_PER_DAY = 86_400.0


class RankingWeights(BaseModel):
    """How recalled memories are ordered. Only the ratios of the three weights matter.

    The defaults (1 / 0.3 / 0.3, half-life 90 days, 3 candidates per result) are the grid
    search's pick: on its tuning sets the newest version of an updated fact won every time.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    similarity: float = Field(
        default=1.0,
        ge=0.0,
        le=100.0,
        description="Weight of the store's similarity score (cosine similarity for the in-memory store).",
    )
    recency: float = Field(
        default=0.3,
        ge=0.0,
        le=100.0,
        description="Weight of recency, 0.5 ** (age_days / recency_half_life_days): 1 for a memory "
        "updated just now, 0.5 one half-life ago. What lets a newer fact outrank the one it replaced.",
    )
    importance: float = Field(
        default=0.3,
        ge=0.0,
        le=100.0,
        description="Weight of the memory's 'importance' field (0 to 1; missing or invalid counts as 0.5). "
        "What keeps chit-chat below facts that matter.",
    )
    recency_half_life_days: float = Field(
        default=90.0,
        gt=0.0,
        le=36_500.0,
        description="Age, in days since the memory was last updated, at which its recency term halves.",
    )
    candidates: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Similarity candidates fetched per requested memory before re-ranking "
        "(1: re-order only the top results by similarity).",
    )


def importance_of(item: SearchItem) -> float:
    """The memory's importance in [0, 1]; missing or invalid values count as neutral (0.5).

    Memories written by langmem's manage tool on the hot path carry no importance at all, so
    treating "unknown" as the middle of the scale neither buries nor promotes them. A value
    outside [0, 1] (another scale, a bug) is treated as unknown rather than clamped, so that a
    stray 7 does not outrank every real fact.
    """
    value: Any = item.value.get(IMPORTANCE_FIELD) if isinstance(item.value, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return NEUTRAL_IMPORTANCE
    number = float(value)
    return number if 0.0 <= number <= 1.0 else NEUTRAL_IMPORTANCE


def recency_of(item: SearchItem, half_life_days: float, now: datetime) -> float:
    """``0.5 ** (age_days / half_life_days)``, where age counts from the item's ``updated_at``.

    A timestamp in the future counts as age 0; a naive timestamp is read as UTC.
    """
    updated_at = item.updated_at
    if updated_at.tzinfo is None:
        updated_at = updated_at.replace(tzinfo=UTC)
    age_days = max(0.0, (now - updated_at).total_seconds() / _SECONDS_PER_DAY)
    return math.pow(0.5, age_days / half_life_days)


def combined_score(item: SearchItem, weights: RankingWeights, now: datetime) -> float:
    """The score ``rank`` orders by; an item without a similarity score counts as similarity 0."""
    similarity = item.score if item.score is not None else 0.0
    return (
        weights.similarity * similarity
        + weights.recency * recency_of(item, weights.recency_half_life_days, now)
        + weights.importance * importance_of(item)
    )


def rank(items: Sequence[SearchItem], weights: RankingWeights, now: datetime | None = None) -> list[SearchItem]:
    """``items`` ordered by ``combined_score``, highest first; ties keep their input order.

    Returns the same item objects, unmodified: ``score`` stays the store's similarity, so a
    caller can still show or threshold it. Use ``combined_score`` for the ranking score.
    ``now`` defaults to the current time (UTC).
    """
    moment = now if now is not None else datetime.now(UTC)
    scores = [combined_score(item, weights, moment) for item in items]
    order = sorted(range(len(items)), key=lambda index: scores[index], reverse=True)
    return [items[index] for index in order]


async def ranked_search(
    store: BaseStore,
    namespace: tuple[str, ...],
    query: str,
    limit: int,
    weights: RankingWeights,
    *,
    now: datetime | None = None,
) -> list[SearchItem]:
    """The ``limit`` best memories for ``query`` in ``namespace``, by ``rank``.

    One search fetches ``limit * weights.candidates`` memories by similarity; ``rank`` then
    re-orders them and the first ``limit`` are kept. A memory outside that candidate pool is
    never returned, however recent or important. ``now`` (default: the current time) is there
    for reproducible evaluations.
    """
    if limit <= 0:
        return []
    candidates = await store.asearch(namespace, query=query, limit=limit * weights.candidates)
    return rank(candidates, weights, now)[:limit]
