"""Recall search on both backends: right for every user among many, exact, lexical + semantic, dated."""

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings
from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph_runtime_inmem.store import BatchedStore

from deployment.postgres import HNSW_INDEX, open_pool, prepare_database
from memory import memory_index, postgres_search
from memory.records import memory_namespace
from memory.search import SIMILARITY_ONLY, RankingWeights, search_memories
from tests.support.fakes import HashedEmbeddings
from tests.support.postgres import TestPostgres

DIMS = 32
StoreFactory = Callable[[Embeddings], Awaitable[BaseStore]]


class RandomEmbeddings(Embeddings):
    """A fixed random unit vector per text: no meaning, so only exact search finds the true nearest."""

    def __init__(self, blur: dict[str, str] | None = None) -> None:
        # Texts that embed as another text would ("blurred": an embedding model that cannot tell them apart).
        self.blur = blur or {}

    def vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(self.blur.get(text, text).encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(DIMS)
        return vector / np.linalg.norm(vector)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vector(text).tolist() for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.vector(text).tolist()


def _index(embeddings: Embeddings) -> dict[str, Any]:
    return {
        "embed": embeddings,
        "dims": DIMS,
        "fields": ["content"],
        "ann_index_config": dict(HNSW_INDEX),
        "distance_type": "cosine",
    }


@pytest.fixture(params=["inmem", "postgres"])
async def make_store(request: pytest.FixtureRequest, test_postgres: TestPostgres) -> AsyncIterator[StoreFactory]:
    """A factory of empty stores of the parametrised backend, with the given embeddings."""
    async with AsyncExitStack() as stack:

        async def make(embeddings: Embeddings) -> BaseStore:
            if request.param == "inmem":
                return InMemoryStore(index={"embed": embeddings, "dims": DIMS, "fields": ["content"]})
            uri = test_postgres.fresh_uri("search")
            index: Any = _index(embeddings)
            await prepare_database(uri, index)
            pool = await stack.enter_async_context(open_pool(uri, max_size=4))
            return AsyncPostgresStore(pool, index=index)

        yield make


def keys(items: Any) -> list[str]:
    return [item.key for item in items]


async def _fill(store: BaseStore, users: int, per_user: int) -> dict[str, list[str]]:
    texts: dict[str, list[str]] = {}
    ops = []
    for u in range(users):
        user = f"user-{u}"
        texts[user] = [f"{user} memory {i}" for i in range(per_user)]
        ops += [PutOp(memory_namespace(user), f"{user}-{i}", {"content": text}) for i, text in enumerate(texts[user])]
    for start in range(0, len(ops), 1000):
        await store.abatch(ops[start : start + 1000])
    if isinstance(store, AsyncPostgresStore):
        async with store.conn.connection() as conn:  # type: ignore[operator]
            await conn.execute("ANALYZE store")
            await conn.execute("ANALYZE store_vectors")
    return texts


def _exact_top(embeddings: RandomEmbeddings, user: str, texts: list[str], query: str, k: int) -> list[str]:
    matrix = np.stack([embeddings.vector(text) for text in texts])
    order = np.argsort(-(matrix @ embeddings.vector(query)), kind="stable")[:k]
    return [f"{user}-{i}" for i in order]


async def test_every_user_among_fifty_gets_their_own_exact_top_ten(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 50 users x 200 memories in one table: the store's own HNSW search (40 candidates from
    # everybody's vectors, then the user filter) leaves a user almost nothing. With a low exact-scan
    # limit, the search goes through the HNSW index first and must fall back rather than come back short.
    embeddings = RandomEmbeddings()
    store = await make_store(embeddings)
    texts = await _fill(store, users=50, per_user=200)
    for exact_scan_limit in (postgres_search.EXACT_SCAN_LIMIT, 100):
        monkeypatch.setattr(postgres_search, "EXACT_SCAN_LIMIT", exact_scan_limit)
        hits = asked = 0
        for u in range(0, 50, 7):
            user = f"user-{u}"
            for q in range(3):
                query = f"question {q} of {user}"
                found = keys(await search_memories(store, memory_namespace(user), query, 10, SIMILARITY_ONLY))
                assert len(found) == 10
                assert all(key.startswith(f"{user}-") for key in found)
                hits += len(set(found) & set(_exact_top(embeddings, user, texts[user], query, 10)))
                asked += 10
        assert hits / asked >= 0.95, f"exact-scan limit {exact_scan_limit}: {hits} of {asked}"


async def test_a_user_with_fewer_memories_than_asked_gets_all_of_them(make_store: StoreFactory) -> None:
    store = await make_store(RandomEmbeddings())
    await _fill(store, users=20, per_user=3)
    found = await search_memories(store, memory_namespace("user-4"), "anything", 10)
    assert sorted(keys(found)) == ["user-4-0", "user-4-1", "user-4-2"]


async def test_a_rare_word_the_embeddings_blur_is_found_by_its_letters(make_store: StoreFactory) -> None:
    # The embedding model sees every flight booking as the same text; only the flight number differs.
    bookings = [f"User booked flight LH {number} to Lisbon" for number in (1834, 1438, 1843, 4318, 3481)]
    embeddings = RandomEmbeddings(blur={text: "a flight booking" for text in bookings})
    embeddings.blur["Which booking was LH 1843?"] = "a flight booking"
    store = await make_store(embeddings)
    namespace = memory_namespace("ada")
    for i, text in enumerate(bookings):
        await store.aput(namespace, f"booking-{i}", {"content": text})
    for i in range(30):
        await store.aput(namespace, f"other-{i}", {"content": f"Unrelated note number {i} about gardening"})
    found = await search_memories(store, namespace, "Which booking was LH 1843?", 1)
    assert keys(found) == ["booking-2"]
    similar_only = await search_memories(store, namespace, "Which booking was LH 1843?", 5, SIMILARITY_ONLY)
    assert set(keys(similar_only)) == {f"booking-{i}" for i in range(5)}


async def test_search_sees_every_update_and_deletion(make_store: StoreFactory) -> None:
    store = await make_store(HashedEmbeddings(dims=DIMS))
    namespace = memory_namespace("ada")
    await store.aput(namespace, "pet", {"content": "Ada has a parrot called Pixel"})
    await store.aput(namespace, "tea", {"content": "Ada drinks green tea"})
    assert keys(await search_memories(store, namespace, "parrot", 1)) == ["pet"]
    await store.aput(namespace, "pet", {"content": "Ada has a tortoise called Shelly"})
    assert keys(await search_memories(store, namespace, "tortoise", 1)) == ["pet"]
    words_only = RankingWeights(similarity=0, recency=0, importance=0)
    scores = {item.key: item.score for item in await search_memories(store, namespace, "parrot Pixel", 2, words_only)}
    assert scores["pet"] == 0  # the old words are no longer indexed
    await store.adelete(namespace, "pet")
    assert keys(await search_memories(store, namespace, "tortoise", 5)) == ["tea"]


async def test_another_users_memories_never_come_back(make_store: StoreFactory) -> None:
    store = await make_store(RandomEmbeddings())
    await store.aput(memory_namespace("bob"), "secret", {"content": "Bob's locker code is 4711"})
    await store.aput(memory_namespace("ada"), "mine", {"content": "Ada likes chess"})
    found = await search_memories(store, memory_namespace("ada"), "locker code 4711", 10)
    assert keys(found) == ["mine"]


async def test_pages_follow_one_another(make_store: StoreFactory) -> None:
    store = await make_store(RandomEmbeddings())
    namespace = memory_namespace("ada")
    for i in range(12):
        await store.aput(namespace, f"m{i}", {"content": f"Ada note {i}"})
    first = keys(await search_memories(store, namespace, "note", 5))
    second = keys(await search_memories(store, namespace, "note", 5, offset=5))
    everything = keys(await search_memories(store, namespace, "note", 10))
    assert first + second == everything


async def test_recency_breaks_a_tie_but_never_outranks_relevance(make_store: StoreFactory) -> None:
    # The embeddings see both homes, and both questions, as the same text; the words differ.
    same = ("User lives in Paris", "User lives in Berlin now", "Where do I live?", "Do I live in Paris?")
    embeddings = RandomEmbeddings(blur=dict.fromkeys(same, "home"))
    store = await make_store(embeddings)
    namespace = memory_namespace("ada")
    old = datetime(2022, 1, 1, tzinfo=UTC).isoformat()
    new = datetime(2026, 11, 1, tzinfo=UTC).isoformat()
    await store.aput(namespace, "paris", {"content": "User lives in Paris", "stated_at": old})
    await store.aput(namespace, "berlin", {"content": "User lives in Berlin now", "stated_at": new})
    await store.aput(namespace, "noise", {"content": "User went to the cinema", "stated_at": new})
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert keys(await search_memories(store, namespace, "Where do I live?", 1, now=now)) == ["berlin"]
    assert keys(await search_memories(store, namespace, "Do I live in Paris?", 1, now=now)) == ["paris"]


async def test_the_in_memory_index_is_rebuilt_from_the_store_after_a_restart() -> None:
    embeddings = RandomEmbeddings()
    store = InMemoryStore(index={"embed": embeddings, "dims": DIMS, "fields": ["content"]})
    namespace = memory_namespace("ada")
    await store.aput(namespace, "a", {"content": "Ada plays the cello"})
    restarted = InMemoryStore(index={"embed": embeddings, "dims": DIMS, "fields": ["content"]})
    restarted._data, restarted._vectors = store._data, store._vectors  # what langgraph dev reloads from disk
    assert keys(await search_memories(restarted, namespace, "cello", 1)) == ["a"]
    await restarted.aput(namespace, "b", {"content": "Ada sings in a choir"})
    assert keys(await search_memories(restarted, namespace, "choir", 1)) == ["b"]


async def test_a_query_without_words_or_results_is_empty(make_store: StoreFactory) -> None:
    store = await make_store(RandomEmbeddings())
    assert await search_memories(store, memory_namespace("nobody"), "anything", 5) == []
    assert await search_memories(store, memory_namespace("nobody"), "   ", 5) == []
    assert await search_memories(store, memory_namespace("nobody"), "x", 0) == []


async def test_the_servers_in_memory_store_is_searched_through_the_index() -> None:
    # langgraph dev hands graphs its in-memory store inside a batching wrapper.
    inner = InMemoryStore(index={"embed": HashedEmbeddings(dims=DIMS), "dims": DIMS, "fields": ["content"]})
    served = BatchedStore(inner)
    await served.aput(memory_namespace("ada"), "m", {"content": "Ada collects stamps"})
    assert keys(await search_memories(served, memory_namespace("ada"), "stamps", 1)) == ["m"]
    assert memory_namespace("ada") in memory_index.index_of(inner).namespaces
