"""After each turn: the memory run is scheduled on a server, or run in-process without one."""

import logging
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore
from langgraph_sdk.errors import APIStatusError

import agent.scheduling
from agent.context import Context
from agent.graph import builder
from agent.scheduling import memory_run_request, memory_thread_id
from memory.records import memory_namespace, memory_text
from tests.conftest import Script
from tests.support.fakes import tool_call


class RecordingRuns:
    def __init__(self, refuse: Callable[[dict[str, Any]], Exception | None] = lambda request: None) -> None:
        self.created: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []
        self.refuse = refuse

    async def create(self, **kwargs: Any) -> dict[str, Any]:
        error = self.refuse(kwargs)
        if error is not None:
            self.refused.append(kwargs)
            raise error
        self.created.append(kwargs)
        return {"run_id": str(uuid.uuid4())}


class RecordingClient:
    def __init__(self, refuse: Callable[[dict[str, Any]], Exception | None] = lambda request: None) -> None:
        self.runs = RecordingRuns(refuse)


def api_error(status: int) -> APIStatusError:
    request = httpx.Request("POST", "http://server/threads/t/runs")
    return APIStatusError("refused", response=httpx.Response(status, request=request), body=None)


SERVER_CONFIG = {"configurable": {"thread_id": "chat-1", "langgraph_request_id": "req-1"}}


def test_memory_run_request_debounces_on_a_dedicated_thread() -> None:
    context = Context(memory_delay_seconds=0, memory_assistant_id="mem", memory={"episodic": {"enabled": True}})
    thread_id = memory_thread_id("ada", "chat-1", "secret")
    request = memory_run_request(thread_id, "ada", "chat-1", context, "chat-assistant")
    assert request["thread_id"] == thread_id != "chat-1"
    assert request["assistant_id"] == "mem"
    assert request["after_seconds"] == 0
    assert request["multitask_strategy"] == "rollback"
    assert request["if_not_exists"] == "create"
    assert request["input"] == {"chat_thread_id": "chat-1"}
    assert request["context"]["user_id"] == "ada"
    assert request["context"]["agent_assistant_id"] == "chat-assistant"
    assert request["context"]["memory"]["episodic"]["enabled"] is True
    assert request["context"]["base_prompt"] == context.system_prompt


def test_memory_threads_are_per_user_and_conversation_and_need_the_secret() -> None:
    ids = {memory_thread_id(u, t, "secret") for u in ("ada", "bob") for t in ("c1", "c2")}
    assert len(ids) == 4
    assert memory_thread_id("ada", "c1", "secret") == memory_thread_id("ada", "c1", "secret")
    assert memory_thread_id("ada", "c1", "another secret") != memory_thread_id("ada", "c1", "secret")
    assert memory_thread_id("ada", "c1", "secret", 1) != memory_thread_id("ada", "c1", "secret")
    assert uuid.UUID(memory_thread_id("ada", "c1", "secret")).version == 4


async def test_without_a_configured_secret_one_is_created_once_and_kept_out_of_users_reach(
    store: InMemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(agent.scheduling.SECRET_ENV, raising=False)
    first = await agent.scheduling.thread_secret(store)
    assert len(first) >= 32
    assert await agent.scheduling.thread_secret(InMemoryStore()) != first
    again = InMemoryStore()
    for item in await store.asearch(("memory_service",)):
        await again.aput(item.namespace, item.key, item.value)
    assert await agent.scheduling.thread_secret(again) == first, "a restart keeps the secret"
    assert [len(item.namespace) for item in await store.asearch(())] == [1]


async def test_on_a_server_each_turn_schedules_a_remote_run(
    script: Script, store: InMemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = RecordingClient()
    monkeypatch.setattr(agent.scheduling, "get_client", lambda: client)
    monkeypatch.setenv(agent.scheduling.SECRET_ENV, "secret")
    graph = builder.compile(checkpointer=InMemorySaver(), store=store)
    context = {"user_id": "ada", "memory_delay_seconds": 7}
    for text in ("one", "two"):
        await graph.ainvoke({"messages": [("user", text)]}, SERVER_CONFIG, context=context)
    assert [r["thread_id"] for r in client.runs.created] == [memory_thread_id("ada", "chat-1", "secret")] * 2
    assert all(r["after_seconds"] == 7 for r in client.runs.created)
    assert script.calls("extract") == []


async def test_an_unusable_memory_thread_is_replaced_by_the_next_one(
    script: Script, store: InMemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    occupied = memory_thread_id("ada", "chat-1", "secret")
    client = RecordingClient(lambda request: api_error(404) if request["thread_id"] == occupied else None)
    monkeypatch.setattr(agent.scheduling, "get_client", lambda: client)
    monkeypatch.setenv(agent.scheduling.SECRET_ENV, "secret")
    graph = builder.compile(checkpointer=InMemorySaver(), store=store)
    for text in ("one", "two"):
        result = await graph.ainvoke({"messages": [("user", text)]}, SERVER_CONFIG, context={"user_id": "ada"})
        assert result["messages"][-1].content == "OK"
    fallback = memory_thread_id("ada", "chat-1", "secret", 1)
    assert [r["thread_id"] for r in client.runs.created] == [fallback, fallback]


@pytest.mark.parametrize("failure", [api_error(500), httpx.ConnectError("server gone"), api_error(403)])
async def test_a_failure_to_schedule_is_logged_and_the_chat_turn_still_answers(
    script: Script,
    store: InMemoryStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: Exception,
) -> None:
    client = RecordingClient(lambda request: failure)
    monkeypatch.setattr(agent.scheduling, "get_client", lambda: client)
    monkeypatch.setenv(agent.scheduling.SECRET_ENV, "secret")
    script.agent = lambda messages: AIMessage(content="Here is my answer.")
    graph = builder.compile(checkpointer=InMemorySaver(), store=store)
    with caplog.at_level(logging.WARNING, logger="agent.scheduling"):
        result = await graph.ainvoke({"messages": [("user", "hi")]}, SERVER_CONFIG, context={"user_id": "ada"})
    assert result["messages"][-1].content == "Here is my answer."
    assert client.runs.created == [] and client.runs.refused
    assert any("memory run" in record.message for record in caplog.records if record.levelno >= logging.ERROR)


async def test_background_memory_off_schedules_nothing(
    script: Script, store: InMemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = RecordingClient()
    monkeypatch.setattr(agent.scheduling, "get_client", lambda: client)
    graph = builder.compile(checkpointer=InMemorySaver(), store=store)
    config = {"configurable": {"thread_id": "c", "langgraph_request_id": "r"}}
    await graph.ainvoke({"messages": [("user", "hi")]}, config, context={"background_memory": False})
    assert client.runs.created == []


async def test_without_a_server_memory_runs_in_process_and_says_so_once(
    script: Script, store: InMemoryStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent.scheduling, "_logged_local_choice", False)
    script.extract = lambda messages: tool_call("Memory", content="User is learning Rust")
    graph = builder.compile(checkpointer=InMemorySaver(), store=store)
    with caplog.at_level(logging.INFO, logger="agent.scheduling"):
        for text in ("I'm learning Rust", "It is fun"):
            await graph.ainvoke(
                {"messages": [("user", text)]},
                {"configurable": {"thread_id": "c"}},
                context={"user_id": "ada"},
            )
    stored = [memory_text(i.value) for i in await store.asearch(memory_namespace("ada"))]
    assert "User is learning Rust" in stored
    notices = [r.message for r in caplog.records if "No LangGraph server" in r.message]
    assert notices == ["No LangGraph server: background memory runs in-process after each turn."]


async def test_without_a_server_memory_can_be_skipped(
    script: Script, store: InMemoryStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent.scheduling, "_logged_local_choice", False)
    script.agent = lambda messages: AIMessage(content="hi")
    graph = builder.compile(checkpointer=InMemorySaver(), store=store)
    with caplog.at_level(logging.INFO, logger="agent.scheduling"):
        await graph.ainvoke(
            {"messages": [("user", "hello")]},
            {"configurable": {"thread_id": "c"}},
            context={"user_id": "ada", "memory_without_server": "skip"},
        )
    assert script.calls("extract") == []
    assert any("skipped" in r.message for r in caplog.records)
