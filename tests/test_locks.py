"""Concurrent memory runs of one user: one copy of each fact, and no profile update lost."""

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres.aio import AsyncPostgresStore

import memory_graph.graph
from deployment.postgres import open_pool, prepare_database, store_index_config
from memory.locks import lock_key, user_lock
from tests.support.fakes import HashedEmbeddings
from tests.support.memory_burst import FACT, burst, outcome, scripted_model
from tests.support.postgres import TestPostgres

ROOT = Path(__file__).resolve().parents[1]
RUNS = 20


@pytest.fixture
def scripted_extractor(monkeypatch: pytest.MonkeyPatch) -> None:
    model = scripted_model()
    monkeypatch.setattr(memory_graph.graph, "load_chat_model", lambda spec, **client: model)


async def migrated_database(test_postgres: TestPostgres) -> str:
    uri = test_postgres.fresh_uri("locks")
    await prepare_database(uri, store_index_config(HashedEmbeddings()))
    return uri


@pytest.fixture
async def postgres_uri(test_postgres: TestPostgres) -> str:
    return await migrated_database(test_postgres)


@pytest.fixture(params=["inmem", "postgres"])
async def memory_store(request: pytest.FixtureRequest) -> AsyncIterator[BaseStore]:
    if request.param == "inmem":
        yield InMemoryStore(index={"embed": HashedEmbeddings(), "dims": 1536, "fields": ["content"]})
        return
    uri = await migrated_database(request.getfixturevalue("test_postgres"))
    async with open_pool(uri) as pool:
        yield AsyncPostgresStore(pool, index=store_index_config(HashedEmbeddings()))


@pytest.mark.usefixtures("scripted_extractor")
async def test_twenty_concurrent_runs_store_a_fact_once_and_keep_every_profile_update(memory_store: BaseStore) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    await burst(memory_store, user, range(RUNS))
    memories, interests = await outcome(memory_store, user)
    assert memories == [FACT]
    assert interests == sorted(f"hobby-{i}" for i in range(RUNS))


async def test_runs_in_two_processes_are_serialized_by_postgres(postgres_uri: str) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tests.support.memory_burst", postgres_uri, user]
    processes = [
        await asyncio.create_subprocess_exec(*command, str(first), str(RUNS // 2), cwd=ROOT, env=env)
        for first in (0, RUNS // 2)
    ]
    assert [await process.wait() for process in processes] == [0, 0]
    async with open_pool(postgres_uri) as pool:
        store = AsyncPostgresStore(pool, index=store_index_config(HashedEmbeddings()))
        memories, interests = await outcome(store, user)
    assert memories == [FACT]
    assert interests == sorted(f"hobby-{i}" for i in range(RUNS))


async def test_the_lock_is_per_user_and_scope(postgres_uri: str) -> None:
    async with open_pool(postgres_uri) as pool:
        store = AsyncPostgresStore(pool, index=store_index_config(HashedEmbeddings()))
        order: list[str] = []

        async def hold(user: str, scope: str, name: str) -> None:
            async with user_lock(store, user, scope):
                order.append(f"{name} in")
                # Long enough that a lock not waited for is taken while this one is held, even under load.
                await asyncio.sleep(0.5)
                order.append(f"{name} out")

        await asyncio.gather(hold("ada", "profile", "a"), hold("ada", "profile", "b"))
        assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
        order.clear()
        await asyncio.gather(hold("ada", "profile", "a"), hold("ada", "memories", "b"), hold("bob", "profile", "c"))
        # Different scopes and users do not wait for each other: all three are in before any leaves
        # (in whichever order their connections got the lock).
        assert sorted(order[:3]) == ["a in", "b in", "c in"]
    assert lock_key("ada", "profile") != lock_key("ada", "memories") != lock_key("bob", "profile")


async def test_a_lock_held_elsewhere_makes_the_run_wait(postgres_uri: str, test_postgres: TestPostgres) -> None:
    """The advisory lock holds against another session, as another process would be."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(postgres_uri, autocommit=True) as other:
        await other.execute("SELECT pg_advisory_lock(%s)", (lock_key("ada", "profile"),))
        async with open_pool(postgres_uri) as pool:
            store = AsyncPostgresStore(pool, index=store_index_config(HashedEmbeddings()))
            entered = asyncio.Event()

            async def take() -> None:
                async with user_lock(store, "ada", "profile"):
                    entered.set()

            task = asyncio.create_task(take())
            await asyncio.sleep(0.3)
            assert not entered.is_set()
            await other.execute("SELECT pg_advisory_unlock(%s)", (lock_key("ada", "profile"),))
            await asyncio.wait_for(task, 10)
            assert entered.is_set()
