"""Postgres mode on `langgraph dev`: restarts lose nothing, bad settings stop the start-up."""

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent.scheduling import memory_thread_id
from deployment import embedded_postgres
from deployment.postgres import connect
from tests.e2e.conftest import CONFIG, chat, extraction_requests, settled_memory_runs
from tests.support.dev_server import MEMORY_THREAD_SECRET, DevServer, DevServerError
from tests.support.fake_openai import FakeOpenAI, flatten_content
from tests.support.fakes import HashedEmbeddings
from tests.support.postgres import TestPostgres

ROOT = Path(__file__).resolve().parents[2]
FACT = "User is training for a marathon"


async def thread_snapshot(client: LangGraphClient, thread_id: str) -> tuple[list[Any], list[str | None]]:
    """The thread's messages and the ids of all its checkpoints."""
    state = await client.threads.get_state(thread_id)
    history = await client.threads.get_history(thread_id, limit=100)
    return state["values"]["messages"], [entry["checkpoint"]["checkpoint_id"] for entry in history]


async def test_a_restart_in_the_middle_of_a_conversation_loses_nothing_and_the_memory_run_happens(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    data_dir = tmp_path / "pgdata"
    env = {**fake_openai.env(), "POSTGRES_URI": "embedded", "EMBEDDED_POSTGRES_DIR": str(data_dir)}
    user = f"user-{uuid.uuid4().hex[:8]}"
    with DevServer(CONFIG, env=env, workdir=tmp_path / "server") as server:
        client = get_client(url=server.url, api_key=None)
        thread = (await client.threads.create())["thread_id"]
        await chat(client, thread, f"Please remember that I prefer aisle seats, {user}", {"user_id": user})
        # The last turn before the stop leaves a memory run pending (due in 8 s).
        await chat(client, thread, f"I'm training for a marathon, {user}", {"user_id": user, "memory_delay_seconds": 8})
        # Another conversation's run is due much later: the next turn will have to cover it.
        other = (await client.threads.create())["thread_id"]
        await chat(
            client, other, f"First message of the other thread, {user}", {"user_id": user, "memory_delay_seconds": 3600}
        )
        before = {t: await thread_snapshot(client, t) for t in (thread, other)}
        memories_before = (await client.store.search_items(("memories", user)))["items"]
        assert [m["value"]["content"] for m in memories_before] == [
            f"Please remember that User prefers aisle seats, {user}"
        ]
        assert extraction_requests(fake_openai, user) == []

        server.stop()
        # The embedded PostgreSQL stopped with the server.
        assert not embedded_postgres.is_running(data_dir)
        server.start()

        client = get_client(url=server.url, api_key=None)
        for thread_id, snapshot in before.items():
            assert (await client.threads.get(thread_id))["thread_id"] == thread_id
            assert await thread_snapshot(client, thread_id) == snapshot
        assert (await client.store.search_items(("memories", user)))["items"] == memories_before

        # The run that was pending at the stop is executed after the restart.
        runs = await settled_memory_runs(client, user, thread)
        assert [run["status"] for run in runs] == ["success"]
        stored = await client.store.search_items(("memories", user), query="marathon")
        assert FACT in [item["value"]["content"] for item in stored["items"]]
        extracted = "\n".join(
            flatten_content(m["content"]) for m in extraction_requests(fake_openai, user)[0]["messages"]
        )
        assert "aisle seats" in extracted and "training for a marathon" in extracted

        # The other conversation's far-off run is replaced by the next turn's, which covers both turns.
        pending = await client.runs.list(memory_thread_id(user, other, MEMORY_THREAD_SECRET))
        assert [run["status"] for run in pending] == ["pending"]
        await chat(
            client, other, f"Second message of the other thread, {user}", {"user_id": user, "memory_delay_seconds": 1}
        )
        await asyncio.sleep(1)
        await settled_memory_runs(client, user, other)
        request = extraction_requests(fake_openai, f"Second message of the other thread, {user}")[-1]
        covered = [flatten_content(m["content"]) for m in request["messages"]]
        assert any("First message of the other thread" in text for text in covered)
        assert any("Second message of the other thread" in text for text in covered)

        # The conversation itself goes on where it stopped.
        values = await chat(client, thread, "And what about the train?", {"user_id": user, "background_memory": False})
        assert len(values["messages"]) == len(before[thread][0]) + 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _unreachable(pg: TestPostgres) -> str:
    return f"postgresql://postgres:secret@127.0.0.1:{_closed_port()}/postgres"


def _wrong_password(pg: TestPostgres) -> str:
    role = f"pw_{uuid.uuid4().hex[:8]}"
    pg.create_role(role, password="the-right-one")
    pg.require_password(role)
    return pg.uri("postgres", user=role, password="a-wrong-one")


def _without_pgvector(pg: TestPostgres) -> str:
    role = f"app_{uuid.uuid4().hex[:8]}"
    pg.create_role(role)
    return pg.uri(pg.create_database("novector"), user=role)


def _other_dimensions(pg: TestPostgres) -> str:
    uri = pg.fresh_uri("dims")

    async def build_store_with_8_dimensions() -> None:
        async with connect(uri) as conn:
            index = {"embed": HashedEmbeddings(8), "dims": 8, "fields": ["content"]}
            await AsyncPostgresStore(conn, index=index).setup()

    asyncio.run(build_store_with_8_dimensions())
    return uri


@pytest.mark.parametrize(
    ("make_uri", "message"),
    [
        (_unreachable, "The server cannot be reached: check the host and port in POSTGRES_URI"),
        (_wrong_password, "Postgres rejected the user name or password"),
        (_without_pgvector, "The pgvector extension is not installed in database 'novector_"),
        (_other_dimensions, "has a vector index of 8 dimensions, but the configured embeddings have 1536"),
    ],
    ids=["unreachable-host", "wrong-password", "missing-pgvector", "dimension-mismatch"],
)
def test_bad_postgres_settings_stop_the_start_up_with_a_clear_message(
    test_postgres: TestPostgres, make_uri: Callable[[TestPostgres], str], message: str
) -> None:
    uri = make_uri(test_postgres)
    with pytest.raises(DevServerError) as failure, DevServer(CONFIG, env={"POSTGRES_URI": uri}):
        pass
    log = str(failure.value)
    assert "PostgresConfigurationError" in log
    assert message in log
    assert "a-wrong-one" not in log and "secret@" not in log


def test_the_example_script_keeps_the_conversation_across_runs(
    test_postgres: TestPostgres, fake_openai: FakeOpenAI
) -> None:
    env = {**os.environ, **fake_openai.env(), "POSTGRES_URI": test_postgres.fresh_uri("example")}
    outputs = [
        subprocess.run(
            [sys.executable, "examples/postgres_own_process.py"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        for _ in range(2)
    ]
    assert [result.returncode for result in outputs] == [0, 0], outputs[-1].stderr
    first, second = (result.stdout for result in outputs)
    assert "had 0 messages" in first and "now has 4 messages" in first
    assert "had 4 messages" in second and "now has 8 messages" in second
    assert "Memory " in second and "vegetarian" in second
