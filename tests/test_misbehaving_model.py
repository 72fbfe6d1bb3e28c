"""A model that misbehaves costs a bounded number of calls, loses nothing, and never holds up the chat.

The memory graph talks to the scripted OpenAI-compatible server through the real ``openai``
client, so its own retries (429 and 5xx, timeouts) are part of what is tested.
"""

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from agent.graph import builder as agent_builder
from memory.records import PROFILE_KEY, memory_namespace, profile_namespace
from memory_graph import failures
from memory_graph.context import MemoryContext
from memory_graph.cursor import load_processed_count
from memory_graph.graph import builder
from tests.support.fake_openai import MISBEHAVIOURS, FakeOpenAI, misbehaving_rules

CONVERSATION: list[BaseMessage] = [
    HumanMessage("My name is Ada and I moved to Lyon", id="h1"),
    AIMessage("Nice to meet you, Ada.", id="a1"),
]
# langchain-openai caches its async HTTP clients across calls, so all tests share one event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")
MAX_CALLS_PER_RUN = 30
# Short waits so that the hanging and failing modes finish quickly.
FAST = {"model_timeout_seconds": 1, "model_max_retries": 1, "retry_delay_seconds": 0}


async def seed(store: InMemoryStore) -> None:
    """A memory and a profile, so that extraction goes through trustcall's update path."""
    await store.aput(memory_namespace("ada"), "11111111-1111-4111-8111-111111111111", {"content": "User likes tea"})
    await store.aput(profile_namespace("ada"), PROFILE_KEY, {"name": "Ada"}, index=False)


async def memory_run(store: InMemoryStore, **context: Any) -> dict[str, Any]:
    graph = builder.compile(store=store)
    return await graph.ainvoke(
        {"messages": CONVERSATION, "chat_thread_id": "chat"},
        context=MemoryContext.model_validate({"user_id": "ada", "model": "openai:fake-memory", **FAST, **context}),
    )


async def chat_turn(store: InMemoryStore) -> str:
    graph = agent_builder.compile(checkpointer=InMemorySaver(), store=store)
    result = await graph.ainvoke(
        {"messages": [("user", "What is the capital of France?")]},
        {"configurable": {"thread_id": "other-chat"}},
        context={"user_id": "ada", "model": "openai:fake-chat", "background_memory": False},
    )
    return str(result["messages"][-1].content)


async def texts(store: InMemoryStore) -> list[str]:
    return sorted(item.value["content"] for item in await store.asearch(memory_namespace("ada"), limit=100))


@pytest.mark.parametrize("mode", sorted(MISBEHAVIOURS))
async def test_a_misbehaving_model_is_bounded_and_its_batch_is_set_aside(
    openai: FakeOpenAI, store: InMemoryStore, mode: str
) -> None:
    await seed(store)
    openai.set_rules(misbehaving_rules(mode))
    for attempt in (1, 2, 3):
        sent_before = len(openai.requests())
        if attempt == 1:
            report, answer = await asyncio.gather(memory_run(store), chat_turn(store))
            assert answer == "OK"
        else:
            report = await memory_run(store)
        assert len(openai.requests()) - sent_before <= MAX_CALLS_PER_RUN
        assert report["report"]["model_calls"] <= MAX_CALLS_PER_RUN
        [(_, failure)] = await failures.all_records(store, "ada")
        assert failure["attempts"] == attempt and failure["error"]
        processed = await load_processed_count(store, "ada", "chat", CONVERSATION)
        if attempt < 3:
            assert failure["status"] == "retrying" and processed == 0
    assert failure["status"] == "set_aside" and processed == len(CONVERSATION)
    assert (failure["chat_thread_id"], failure["first_message_id"], failure["last_message_id"]) == ("chat", "h1", "a1")
    assert await texts(store) == ["User likes tea"]
    profile = await store.aget(profile_namespace("ada"), PROFILE_KEY)
    assert profile is not None and profile.value == {"name": "Ada"}


async def test_a_runaway_model_makes_at_most_thirty_calls_in_a_run(openai: FakeOpenAI, store: InMemoryStore) -> None:
    await seed(store)
    openai.set_rules(misbehaving_rules("patch_without_id"))
    result = await memory_run(store, retry_delay_seconds=3600)
    requests = openai.requests()
    assert len(requests) <= MAX_CALLS_PER_RUN
    assert max(len(request["messages"]) for request in requests) <= MAX_CALLS_PER_RUN
    assert "PatchDoc call without json_doc_id" in result["report"]["stopped"]
    again = await memory_run(store, retry_delay_seconds=3600)
    assert len(openai.requests()) == len(requests), "a batch waiting for its retry is not tried again early"
    assert "tried again after" in again["report"]["stopped"]


async def test_provider_errors_are_retried_by_the_client_and_never_sent_back_to_the_model(
    openai: FakeOpenAI, store: InMemoryStore
) -> None:
    await seed(store)
    openai.set_rules(
        [
            *misbehaving_rules("rate_limited", times=1),
            {
                "when": {"tool": "Memory"},
                "then": {"tool_calls": [{"name": "Memory", "arguments": {"content": "User moved to Lyon"}}]},
            },
        ]
    )
    result = await memory_run(store)
    assert result["report"]["stopped"] is None
    assert await texts(store) == ["User likes tea", "User moved to Lyon"]
    assert await failures.all_records(store, "ada") == []
    prompts = [str(message.get("content")) for request in openai.requests() for message in request["messages"]]
    assert not any("Fix the validation error" in prompt for prompt in prompts)


async def test_the_budget_stops_a_run_cleanly(openai: FakeOpenAI, store: InMemoryStore) -> None:
    await seed(store)
    openai.set_rules(misbehaving_rules("patch_without_id"))
    result = await memory_run(store, max_model_calls=4)
    assert len(openai.requests()) <= 4
    [(_, failure)] = await failures.all_records(store, "ada")
    assert "budget" in failure["error"] and "max_model_calls" in failure["error"]
    assert await load_processed_count(store, "ada", "chat", CONVERSATION) == 0
    assert result["report"]["model_calls"] == 4


async def test_a_set_aside_batch_is_processed_again_on_request(openai: FakeOpenAI, store: InMemoryStore) -> None:
    openai.set_rules(misbehaving_rules("server_error"))
    for _ in range(3):
        await memory_run(store)
    [(key, failure)] = await failures.all_records(store, "ada")
    assert failure["status"] == "set_aside"

    openai.set_rules(
        [
            {
                "when": {"tool": "Memory"},
                "then": {"tool_calls": [{"name": "Memory", "arguments": {"content": "User moved to Lyon"}}]},
            }
        ]
    )
    await memory_run(store)
    assert await texts(store) == [], "a set-aside batch waits for its owner"
    requested = await failures.request_retry(store, "ada", key)
    assert requested is not None and requested["status"] == "retry_requested"
    result = await memory_run(store)
    assert await texts(store) == ["User moved to Lyon"]
    assert await failures.all_records(store, "ada") == []
    assert result["report"]["batches_processed"] == 1


async def test_every_first_extraction_must_answer_with_a_tool_call(openai: FakeOpenAI, store: InMemoryStore) -> None:
    """llama.cpp answers a free-form tool call that does not parse with a 500; a forced one parses."""
    openai.set_rules(
        [
            {
                "when": {"tool": "Memory"},
                "then": {"tool_calls": [{"name": "Memory", "arguments": {"content": "User is called Ada"}}]},
            },
            {"when": {"tool": "UserProfile"}, "then": {"tool_calls": [{"name": "NothingToSave", "arguments": {}}]}},
        ]
    )
    await memory_run(store)
    extractions = [request for request in openai.requests() if request.get("tools")]
    assert len(extractions) == 2
    assert [request.get("tool_choice") for request in extractions] == ["required", "required"]
    assert await texts(store) == ["User is called Ada"]


async def test_a_first_answer_that_fails_its_schema_is_a_failed_batch_not_a_crash(
    openai: FakeOpenAI, store: InMemoryStore
) -> None:
    openai.set_rules([{"when": {"tool": "Memory"}, "then": {"tool_calls": [{"name": "Memory", "arguments": {}}]}}])
    result = await memory_run(store)
    assert "did not match the memory schema" in result["report"]["stopped"]
    [(_, failure)] = await failures.all_records(store, "ada")
    assert failure["status"] == "retrying"
