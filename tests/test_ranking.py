"""Ranking recalled memories: a newer fact beats the one it replaced, importance beats chit-chat."""

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langgraph.store.base import SearchItem
from langgraph.store.memory import InMemoryStore
from pydantic import ValidationError

from memory.ranking import RankingWeights, combined_score, rank, ranked_search
from memory.records import memory_namespace, memory_record
from tests.retrieval_set import DEFAULT_SEED, EvalMemory, build_retrieval_set, load_into_store, newer_wins, score
from tests.support.fakes import HashedEmbeddings

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
NS = memory_namespace("ada")
SIMILARITY_ONLY = RankingWeights(similarity=1, recency=0, importance=0)


def hashed_store() -> InMemoryStore:
    return InMemoryStore(index={"embed": HashedEmbeddings(), "dims": 1536, "fields": ["content"]})


def memory(key: str, score: float | None, age_days: float, **value: Any) -> SearchItem:
    updated_at = NOW - timedelta(days=age_days)
    return SearchItem(NS, key, memory_record(f"memory {key}", **value), updated_at, updated_at, score)


def keys(items: list[SearchItem]) -> list[str]:
    return [item.key for item in items]


def test_newer_fact_outranks_the_older_one_of_equal_similarity() -> None:
    paris = memory("paris", 0.6, age_days=300, importance=0.7)
    berlin = memory("berlin", 0.6, age_days=5, importance=0.7)
    assert keys(rank([paris, berlin], RankingWeights(), NOW)) == ["berlin", "paris"]


def test_importance_breaks_ties() -> None:
    chit_chat = memory("chit_chat", 0.5, age_days=10, importance=0.1)
    allergy = memory("allergy", 0.5, age_days=10, importance=0.95)
    assert keys(rank([chit_chat, allergy], RankingWeights(), NOW)) == ["allergy", "chit_chat"]


def test_similarity_only_weights_reproduce_the_similarity_order() -> None:
    rng = random.Random(7)
    items = [memory(f"m{i}", rng.random(), age_days=rng.uniform(0, 700), importance=rng.random()) for i in range(30)]
    expected = keys(sorted(items, key=lambda item: item.score or 0.0, reverse=True))
    assert keys(rank(items, SIMILARITY_ONLY, NOW)) == expected


async def test_similarity_only_ranked_search_returns_what_the_store_returns() -> None:
    store = hashed_store()
    retrieval_set = build_retrieval_set()
    await load_into_store(store, NS, retrieval_set.memories)
    for query in retrieval_set.queries[:10]:
        plain = await store.asearch(NS, query=query.text, limit=5)
        ranked = await ranked_search(store, NS, query.text, 5, SIMILARITY_ONLY)
        assert keys(ranked) == keys(plain), query.text


@pytest.mark.parametrize("importance", ["missing", None, "high", True, 7, -0.2, math.nan, [0.9]])
def test_missing_or_invalid_importance_counts_as_neutral(importance: Any) -> None:
    value = {} if importance == "missing" else {"importance": importance}
    unknown = memory("unknown", 0.5, age_days=10, **value)
    neutral = memory("neutral", 0.5, age_days=10, importance=0.5)
    weights = RankingWeights()
    assert combined_score(unknown, weights, NOW) == combined_score(neutral, weights, NOW)
    low = memory("low", 0.5, age_days=10, importance=0.4)
    high = memory("high", 0.5, age_days=10, importance=0.6)
    assert keys(rank([low, unknown, high], weights, NOW)) == ["high", "unknown", "low"]


def test_rank_returns_the_same_items_untouched() -> None:
    old = memory("old", 0.7, age_days=400, importance=0.2)
    new = memory("new", 0.6, age_days=1, importance=0.9)
    unscored = memory("unscored", None, age_days=1, importance=0.9)
    items = [old, unscored, new]

    ranked = rank(items, RankingWeights(), NOW)

    assert keys(ranked) == ["new", "old", "unscored"]
    assert ranked[0] is new and new.score == 0.6 and old.score == 0.7 and unscored.score is None
    assert items == [old, unscored, new]


def test_ties_keep_the_input_order() -> None:
    items = [memory(f"m{i}", 0.5, age_days=10, importance=0.5) for i in range(5)]
    assert keys(rank(items, RankingWeights(), NOW)) == keys(items)


@pytest.mark.parametrize(
    "field, value",
    [
        ("similarity", -0.1),
        ("recency", -1),
        ("importance", math.inf),
        ("recency_half_life_days", 0),
        ("candidates", 0),
        ("unknown_field", 1),
    ],
)
def test_weights_out_of_range_are_rejected(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        RankingWeights(**{field: value})


async def test_ranked_search_finds_an_update_that_similarity_alone_puts_second() -> None:
    store = hashed_store()
    memories = [
        EvalMemory("paris", "User's home city is Paris.", 0.7, 300, "superseded"),
        EvalMemory("berlin", "User moved recently, so User's home city is now Berlin.", 0.7, 5, "fact"),
    ]
    await load_into_store(store, NS, memories, NOW)

    assert keys(await store.asearch(NS, query="What is my home city?", limit=1)) == ["paris"]
    assert keys(await ranked_search(store, NS, "What is my home city?", 1, RankingWeights(), now=NOW)) == ["berlin"]
    one_candidate = RankingWeights(candidates=1)
    assert keys(await ranked_search(store, NS, "What is my home city?", 1, one_candidate, now=NOW)) == ["paris"]
    assert await ranked_search(store, NS, "What is my home city?", 0, RankingWeights()) == []


async def test_the_retrieval_set_is_large_deterministic_and_backdated() -> None:
    retrieval_set = build_retrieval_set()
    assert retrieval_set == build_retrieval_set(DEFAULT_SEED)
    assert len(retrieval_set.memories) >= 200 and len(retrieval_set.queries) >= 50
    assert sum(query.updated for query in retrieval_set.queries) >= 15
    ids = {m.id for m in retrieval_set.memories}
    assert all(set(q.answers) | set(q.superseded) <= ids for q in retrieval_set.queries)
    assert any(m.importance is None for m in retrieval_set.memories)

    store = hashed_store()
    await load_into_store(store, NS, retrieval_set.memories, NOW)
    oldest = max(retrieval_set.memories, key=lambda m: m.age_days)
    [found] = [item for item in await store.asearch(NS, query=oldest.text, limit=3) if item.key == oldest.id]
    assert found.updated_at == NOW - timedelta(days=oldest.age_days)


async def test_default_ranking_beats_similarity_on_the_retrieval_set() -> None:
    retrieval_set = build_retrieval_set()
    store = hashed_store()
    await load_into_store(store, NS, retrieval_set.memories, NOW)
    plain: dict[str, list[str]] = {}
    ranked: dict[str, list[str]] = {}
    for query in retrieval_set.queries:
        plain[query.id] = keys(await store.asearch(NS, query=query.text, limit=5))
        ranked[query.id] = keys(await ranked_search(store, NS, query.text, 5, RankingWeights(), now=NOW))

    assert score(retrieval_set.queries, ranked, 5).recall > score(retrieval_set.queries, plain, 5).recall
    stale = [
        f"{query.text!r}: got {[retrieval_set.text_of(key) for key in ranked[query.id]]}"
        for query in retrieval_set.queries
        if query.updated and not newer_wins(ranked[query.id], query)
    ]
    assert not stale, "The superseded fact won (or the newest was not returned):\n" + "\n".join(stale)
