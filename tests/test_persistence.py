"""Persistence: how the mode is chosen, migrations, run cleanup, start-up errors, own process."""

import asyncio
import importlib.util
import json
import logging
import os
import subprocess
import sys
import types
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.base import MIGRATIONS as CHECKPOINT_MIGRATIONS
from langgraph.store.postgres.base import MIGRATIONS as STORE_MIGRATIONS
from langgraph.store.postgres.base import VECTOR_MIGRATIONS

from deployment import embedded_postgres, persistence
from deployment.persistence import InMemoryRunCleanup, Mode, persistence_mode, postgres_graphs
from deployment.postgres import (
    PostgresCheckpointer,
    PostgresConfigurationError,
    _connection_error,
    connect,
    open_pool,
    pool_max_size,
    prepare_database,
    redact,
    store_index_config,
)
from memory.embeddings import EMBEDDING_DIMS
from tests.conftest import Script
from tests.support.fakes import HashedEmbeddings, tool_call
from tests.support.postgres import TestPostgres

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, Mode("memory")),
        ({"POSTGRES_URI": "  "}, Mode("memory")),
        ({"POSTGRES_URI": "embedded"}, Mode("postgres", "embedded")),
        ({"POSTGRES_URI": "postgresql://db/app"}, Mode("postgres", "postgresql://db/app")),
        ({"LANGGRAPH_RUNTIME_EDITION": "inmem", "POSTGRES_URI": "embedded"}, Mode("postgres", "embedded")),
        ({"LANGGRAPH_RUNTIME_EDITION": "postgres"}, Mode("platform")),
    ],
)
def test_the_mode_follows_the_runtime_and_postgres_uri(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: Mode
) -> None:
    monkeypatch.delenv("POSTGRES_URI", raising=False)
    monkeypatch.delenv("LANGGRAPH_RUNTIME_EDITION", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert persistence_mode() == expected


def test_on_the_platform_postgres_uri_is_ignored_and_said_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LANGGRAPH_RUNTIME_EDITION", "postgres")
    monkeypatch.setenv("POSTGRES_URI", "postgresql://db/app")
    with caplog.at_level(logging.WARNING):
        assert persistence_mode() == Mode("platform")
    assert "POSTGRES_URI is ignored on LangGraph Platform" in caplog.text


@pytest.fixture
def fake_runtime(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A stand-in for the server's runtime package and its default persistence."""
    defaults = types.SimpleNamespace(checkpointer=InMemorySaver(), store=object())
    checkpoint = types.ModuleType("langgraph_runtime.checkpoint")
    checkpoint.Checkpointer = lambda *args, **kwargs: defaults.checkpointer  # type: ignore[attr-defined]
    store = types.ModuleType("langgraph_runtime.store")
    store.Store = lambda *args, **kwargs: defaults.store  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langgraph_runtime", types.ModuleType("langgraph_runtime"))
    monkeypatch.setitem(sys.modules, "langgraph_runtime.checkpoint", checkpoint)
    monkeypatch.setitem(sys.modules, "langgraph_runtime.store", store)
    monkeypatch.delenv("POSTGRES_URI", raising=False)
    return defaults


async def test_without_postgres_uri_the_servers_own_persistence_is_used(fake_runtime: types.SimpleNamespace) -> None:
    async with persistence.checkpointer() as saver, persistence.store() as store:
        assert isinstance(saver, InMemoryRunCleanup) and saver.inner is fake_runtime.checkpointer
        assert store is fake_runtime.store


async def test_on_the_platform_its_persistence_is_passed_through_untouched(
    fake_runtime: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGGRAPH_RUNTIME_EDITION", "postgres")
    monkeypatch.setenv("POSTGRES_URI", "postgresql://unused/never")
    async with persistence.checkpointer() as saver, persistence.store() as store:
        assert saver is fake_runtime.checkpointer
        assert store is fake_runtime.store


def test_langgraph_json_points_at_the_persistence_and_matches_its_index() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    for spec in (config["checkpointer"]["path"], config["store"]["path"]):
        path, _, attribute = spec.rpartition(":")
        module_spec = importlib.util.spec_from_file_location("persistence_by_path", ROOT / path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        # Loaded by path and not registered, as the server's store loader does.
        module_spec.loader.exec_module(module)
        assert callable(getattr(module, attribute))
    index = store_index_config()
    assert config["store"]["index"]["dims"] == index["dims"] == EMBEDDING_DIMS
    assert config["store"]["index"]["fields"] == index["fields"]
    assert index["ann_index_config"]["kind"] == "hnsw"


def test_secrets_are_redacted_and_the_pool_size_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert redact("postgresql://app:s3cret@db:5432/app") == "postgresql://app:***@db:5432/app"
    assert redact("postgresql://app@db/app") == "postgresql://app@db/app"
    assert redact("postgresql://postgres:@/postgres?host=/tmp/x") == "postgresql://postgres:@/postgres?host=/tmp/x"
    monkeypatch.setenv("POSTGRES_POOL_MAX_SIZE", "24")
    assert pool_max_size() == 24
    monkeypatch.setenv("POSTGRES_POOL_MAX_SIZE", "one")
    with pytest.raises(PostgresConfigurationError, match="POSTGRES_POOL_MAX_SIZE='one' must be a whole number"):
        pool_max_size()


def test_connection_errors_never_show_the_password() -> None:
    error = _connection_error("postgresql://app:pw@db/app", psycopg.OperationalError("connection refused"))
    assert "cannot be reached" in str(error) and "pw@" not in str(error)


async def test_an_unavailable_pgvector_is_reported_with_what_to_install() -> None:
    """The embedded server always has pgvector, so a server without it is played by a stub."""

    class NoVector:
        async def execute(self, statement: str, params: Any = ()) -> Any:
            if statement.startswith("CREATE EXTENSION"):
                raise psycopg.errors.UndefinedFile('extension "vector" is not available')
            return self

        async def fetchone(self) -> None:
            return None

    from deployment import postgres

    with pytest.raises(PostgresConfigurationError, match=r"not available on the Postgres server.*install pgvector"):
        await postgres._ensure_pgvector(NoVector(), "postgresql://app@db/app")


def _checkpoint_config(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


async def _write_runs(saver: BaseCheckpointSaver[Any], thread_id: str, run_ids: list[str]) -> None:
    config = _checkpoint_config(thread_id)
    for step, run_id in enumerate(run_ids):
        checkpoint = empty_checkpoint()
        config = await saver.aput(config, checkpoint, {"run_id": run_id, "step": step, "source": "loop"}, {})
        await saver.aput_writes(config, [("messages", f"write of {run_id}")], task_id=f"task-{step}")


async def _runs_left(saver: BaseCheckpointSaver[Any], thread_id: str) -> list[str]:
    items = [item async for item in saver.alist(_checkpoint_config(thread_id))]
    return sorted(str(item.metadata.get("run_id")) for item in items)


async def test_in_memory_run_cleanup_deletes_only_those_runs_checkpoints() -> None:
    saver = InMemoryRunCleanup(InMemorySaver())
    await _write_runs(saver, "t1", ["keep", "drop", "drop"])
    await saver.adelete_for_runs(["drop"])
    assert await _runs_left(saver, "t1") == ["keep"]
    assert len(saver.inner.writes) == 1


async def test_the_postgres_checkpointer_deletes_only_those_runs_checkpoints(test_postgres: TestPostgres) -> None:
    uri = test_postgres.fresh_uri("runs")
    await prepare_database(uri, store_index_config(HashedEmbeddings()))
    async with open_pool(uri) as pool:
        saver = PostgresCheckpointer(pool)
        await _write_runs(saver, "t1", ["keep", "drop", "drop"])
        await _write_runs(saver, "t2", ["other"])
        await saver.adelete_for_runs(["drop"])
        assert await _runs_left(saver, "t1") == ["keep"]
        assert await _runs_left(saver, "t2") == ["other"]
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT count(*) AS n FROM checkpoint_writes")
            assert (await cursor.fetchone()) == {"n": 2}


async def _applied_migrations(uri: str) -> dict[str, list[int]]:
    async with connect(uri) as conn:
        applied = {}
        for table in ("checkpoint_migrations", "store_migrations", "vector_migrations"):
            cursor = await conn.execute(f"SELECT v FROM {table} ORDER BY v")
            applied[table] = [row["v"] for row in await cursor.fetchall()]
        return applied


EXPECTED_MIGRATIONS = {
    "checkpoint_migrations": list(range(len(CHECKPOINT_MIGRATIONS))),
    "store_migrations": list(range(len(STORE_MIGRATIONS))),
    "vector_migrations": list(range(len(VECTOR_MIGRATIONS))),
}


async def test_migrations_run_once_when_several_processes_start_together(test_postgres: TestPostgres) -> None:
    uri = test_postgres.fresh_uri("migrations")
    script = (
        "import asyncio, sys\n"
        "from deployment.postgres import prepare_database, store_index_config\n"
        "asyncio.run(prepare_database(sys.argv[1], store_index_config()))\n"
    )
    processes = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", script, uri, cwd=ROOT, env=dict(os.environ))
        for _ in range(2)
    ]
    # Connections of this process join in, as more processes would.
    await asyncio.gather(*(prepare_database(uri, store_index_config(HashedEmbeddings())) for _ in range(3)))
    assert [await process.wait() for process in processes] == [0, 0]
    assert await _applied_migrations(uri) == EXPECTED_MIGRATIONS


async def test_own_process_graphs_keep_the_conversation_and_memories_in_postgres(
    test_postgres: TestPostgres, script: Script
) -> None:
    script.agent = lambda messages: AIMessage(content="Noted.")
    script.extract = lambda messages: tool_call("Memory", content="User is vegetarian")
    uri = test_postgres.fresh_uri("own")
    config: Any = {"configurable": {"thread_id": str(uuid.uuid4())}}
    context = {"user_id": "ada"}
    async with postgres_graphs(uri, embeddings=HashedEmbeddings(), pool_max_size=4) as graphs:
        await graphs.agent.ainvoke({"messages": [("user", "I'm vegetarian.")]}, config, context=context)
    async with postgres_graphs(uri, embeddings=HashedEmbeddings(), pool_max_size=4) as graphs:
        state = await graphs.agent.aget_state(config)
        assert [m.text for m in state.values["messages"]] == ["I'm vegetarian.", "Noted."]
        memories = await graphs.store.asearch(("memories", "ada"), query="diet")
        assert [item.value["content"] for item in memories] == ["User is vegetarian"]


def test_the_embedded_server_stops_with_its_last_user_even_after_a_crashed_one(tmp_path: Path) -> None:
    directory = tmp_path / "pgdata"
    uri = embedded_postgres.acquire(directory)
    try:
        with psycopg.connect(uri) as conn:
            assert conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
        assert embedded_postgres.acquire(directory) == uri
        embedded_postgres.release(directory)
        assert embedded_postgres.is_running(directory)
        # A process that used the server and died without saying so.
        crashed = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        )
        handles = directory / ".handle_pids.json"
        handles.write_text(json.dumps([*json.loads(handles.read_text()), int(crashed.stdout)]))
    finally:
        embedded_postgres.release(directory)
    assert not embedded_postgres.is_running(directory)
