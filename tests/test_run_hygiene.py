"""A memory run reads past the agent's tool traffic, dates memories by the user's words, and counts every request.

The batching tests use the in-process scripted model; the request counts need the real
``openai`` client (whose retries they count), so those talk to the scripted OpenAI server.
"""

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.store.memory import InMemoryStore

from memory.records import memory_namespace, memory_text
from memory_graph.context import MemoryContext
from memory_graph.cursor import load_processed_count
from memory_graph.graph import builder
from tests.conftest import Script, prompt_text
from tests.support.fake_openai import FakeOpenAI, Rule
from tests.support.fakes import tool_call

NS = memory_namespace("ada")
SAVED = "Memory created: User moved to Lyon"


def tool_round(n: int) -> list[BaseMessage]:
    """One of the agent's memory operations: its ``manage_memory`` call and the tool's result."""
    call_id = f"call_{n}"
    call = {"name": "manage_memory", "args": {"content": "User moved to Lyon", "action": "create"}, "id": call_id}
    return [
        AIMessage("", tool_calls=[call], id=f"call-{n}"),
        ToolMessage(SAVED, tool_call_id=call_id, id=f"result-{n}"),
    ]


def tool_traffic(rounds: int, start: int = 0) -> list[BaseMessage]:
    return [message for n in range(start, start + rounds) for message in tool_round(n)]


async def process(store: InMemoryStore, messages: Sequence[BaseMessage], **context: Any) -> dict[str, Any]:
    graph = builder.compile(store=store)
    result = await graph.ainvoke(
        {"messages": list(messages), "chat_thread_id": "chat"},
        {"recursion_limit": 200},
        context=MemoryContext.model_validate({"user_id": "ada", **context}),
    )
    report: dict[str, Any] = result["report"]
    return report


async def test_a_runaway_turns_tool_traffic_is_one_batch_without_the_tool_calls(
    script: Script, store: InMemoryStore
) -> None:
    said = "I moved to Lyon last week"
    conversation = [
        HumanMessage(said, id="h1"),
        *tool_traffic(60),
        AIMessage("Noted: you live in Lyon now.", id="a1"),
    ]
    report = await process(store, conversation, max_messages_per_batch=20)
    [prompt] = [prompt_text(call) for call in script.calls("extract")]
    assert said in prompt and "Noted: you live in Lyon now." in prompt
    assert "manage_memory" not in prompt and SAVED not in prompt
    assert report["batches_processed"] == 1
    assert await load_processed_count(store, "ada", "chat", conversation) == len(conversation)


async def test_an_answer_with_text_and_tool_calls_is_shown_as_its_text(script: Script, store: InMemoryStore) -> None:
    answer, result = tool_round(0)
    conversation = [
        HumanMessage("I moved to Lyon last week", id="h1"),
        answer.model_copy(update={"content": "Let me remember that."}),
        result,
    ]
    await process(store, conversation)
    [prompt] = [prompt_text(call) for call in script.calls("extract")]
    assert "Let me remember that." in prompt
    assert "manage_memory" not in prompt and SAVED not in prompt


async def test_new_tool_traffic_alone_makes_no_model_call_and_counts_as_processed(
    script: Script, store: InMemoryStore
) -> None:
    chat = [HumanMessage("I moved to Lyon last week", id="h1"), AIMessage("Noted.", id="a1")]
    await process(store, chat)
    with_tools = [*chat, *tool_traffic(3)]
    report = await process(store, with_tools)
    assert len(script.calls("extract")) == 1
    assert report["model_calls"] == 0
    assert await load_processed_count(store, "ada", "chat", with_tools) == len(with_tools)

    await process(store, [*with_tools, HumanMessage("I adopted a cat", id="h2")], overlap_messages=0)
    latest = prompt_text(script.calls("extract")[-1])
    assert "I adopted a cat" in latest and "Lyon" not in latest


async def test_a_memory_from_the_assistants_words_is_dated_by_the_users_earlier_message(
    script: Script, store: InMemoryStore
) -> None:
    conversation = [
        HumanMessage("Hi", id="h0", additional_kwargs={"timestamp": "2023-05-08T13:50:00+00:00"}),
        AIMessage("Hello!", id="a0"),
        HumanMessage(
            "I went to a support group yesterday", id="h1", additional_kwargs={"timestamp": "2023-05-08T13:56:00+00:00"}
        ),
        AIMessage("That sounds good.", id="a1"),
    ]
    await process(store, conversation)
    script.extract = lambda messages: tool_call("Memory", content="User went to a support group on 2023-05-07")
    later = [*conversation, *tool_traffic(1), AIMessage("I noted your support group of 2023-05-07.", id="a2")]
    await process(store, later, overlap_messages=0)
    (item,) = await store.asearch(NS)
    assert item.value["stated_at"] == "2023-05-08T13:56:00+00:00"


CONTENT = "User moved to Lyon"
EXTRACT: Rule = {
    "when": {"tool": "Memory"},
    "then": {"tool_calls": [{"name": "Memory", "arguments": {"content": CONTENT}}]},
}


async def fact_run(store: InMemoryStore, **context: Any) -> dict[str, Any]:
    """One memory run of a one-turn conversation, facts only, against the fake server."""
    conversation = [HumanMessage("I moved to Lyon", id=f"h-{uuid.uuid4().hex[:8]}"), AIMessage("Noted.", id="a1")]
    settings = {"model": "openai:fake-memory", "memory": {"profile": {"enabled": False}}, "retry_delay_seconds": 0}
    return await process(store, conversation, **settings, **context)


async def stored(store: InMemoryStore) -> list[str]:
    return sorted(memory_text(item.value) for item in await store.asearch(NS, limit=100))


async def test_the_report_counts_a_retried_call_once_and_every_request_it_sent(
    openai: FakeOpenAI, store: InMemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    openai.set_rules([{"when": {"tool": "Memory"}, "then": {"error": 500}, "times": 1}, EXTRACT])
    with caplog.at_level(logging.INFO, logger="memory_graph.graph"):
        report = await fact_run(store, model_max_retries=1)
    assert (report["model_calls"], report["requests"]) == (1, 2)
    assert len(openai.requests()) == 2
    assert "1 model calls (2 requests)" in caplog.text
    assert await stored(store) == [CONTENT]


async def test_an_answer_after_the_timeout_is_asked_again_and_stored_once(
    openai: FakeOpenAI, store: InMemoryStore
) -> None:
    late: Rule = {"when": EXTRACT["when"], "then": {**EXTRACT["then"], "hang": 3}, "times": 1}
    openai.set_rules([late, EXTRACT])
    report = await fact_run(store, model_timeout_seconds=1, model_max_retries=1)
    assert (report["model_calls"], report["requests"]) == (1, 2)
    assert report["stopped"] is None
    assert await stored(store) == [CONTENT]
