"""The memory graph: incremental, consolidating, and losing nothing when a run fails."""

import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.store.memory import InMemoryStore

from memory.records import PROFILE_KEY, memory_namespace, memory_text, profile_namespace
from memory_graph import failures
from memory_graph.context import MemoryContext
from memory_graph.graph import builder
from memory_graph.prompts import NEW_MESSAGES_MARKER
from tests.conftest import Script, prompt_text
from tests.support.fakes import tool_call

NS = memory_namespace("ada")


def conversation(turns: int, start: int = 0) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for i in range(start, start + turns):
        messages.append(HumanMessage(f"user message number {i}", id=f"h{i}"))
        messages.append(AIMessage(f"assistant reply number {i}", id=f"a{i}"))
    return messages


async def process(store: InMemoryStore, messages: Sequence[BaseMessage], **context: Any) -> None:
    graph = builder.compile(store=store)
    await graph.ainvoke(
        {"messages": list(messages), "chat_thread_id": "chat"},
        {"recursion_limit": 200},
        context=MemoryContext(user_id="ada", **context),
    )


async def stored_texts(store: InMemoryStore) -> list[str]:
    return sorted(memory_text(item.value) for item in await store.asearch(NS, limit=100))


async def test_extracted_memories_land_in_the_agents_namespace(script: Script, store: InMemoryStore) -> None:
    script.extract = lambda messages: tool_call("Memory", content="User plays chess on Sundays")
    await process(store, conversation(2))
    assert await stored_texts(store) == ["User plays chess on Sundays"]


async def test_only_unprocessed_messages_are_sent_with_a_little_overlap(script: Script, store: InMemoryStore) -> None:
    history = conversation(5)
    await process(store, history)
    await process(store, [*history, *conversation(2, start=5)], overlap_messages=2)
    first, second = (prompt_text(call) for call in script.calls("extract"))
    assert "user message number 0" in first
    assert "user message number 0" not in second
    assert "user message number 4" in second and "assistant reply number 4" in second
    assert "user message number 3" not in second
    assert "user message number 6" in second
    context_part, new_part = second.split(NEW_MESSAGES_MARKER)
    assert "assistant reply number 4" in context_part and "user message number 5" in new_part


async def test_nothing_new_means_no_model_call(script: Script, store: InMemoryStore) -> None:
    history = conversation(3)
    await process(store, history)
    await process(store, history)
    assert len(script.calls("extract")) == 1


async def test_a_long_backlog_is_processed_in_bounded_batches(script: Script, store: InMemoryStore) -> None:
    await process(store, conversation(25), max_messages_per_batch=20, overlap_messages=0)
    prompts = [prompt_text(call) for call in script.calls("extract")]
    assert len(prompts) == 3
    assert all(p.count("user message number") <= 10 for p in prompts)
    assert "user message number 24" in prompts[-1]


async def test_existing_related_memories_are_shown_and_consolidated(script: Script, store: InMemoryStore) -> None:
    paris, cat = str(uuid.uuid4()), str(uuid.uuid4())
    await store.aput(NS, paris, {"content": "User lives in Paris"})
    await store.aput(NS, cat, {"content": "User has a cat"})

    def consolidate(messages: Sequence[BaseMessage]) -> AIMessage:
        move = {
            "json_doc_id": paris,
            "planned_edits": "moved",
            "patches": [{"op": "replace", "path": "/content", "value": "User lives in Berlin"}],
        }
        return AIMessage(
            content="",
            tool_calls=[
                {"name": "PatchDoc", "args": move, "id": "c1"},
                {"name": "RemoveDoc", "args": {"json_doc_id": cat}, "id": "c2"},
                {"name": "Memory", "args": {"content": "User works as a nurse"}, "id": "c3"},
            ],
        )

    script.extract = consolidate
    await process(store, [HumanMessage("I moved to Berlin, my cat lives with my ex now. I'm a nurse.", id="m1")])
    shown = prompt_text(script.calls("extract")[0])
    assert "User lives in Paris" in shown and "User has a cat" in shown
    assert await stored_texts(store) == ["User lives in Berlin", "User works as a nurse"]
    item = await store.aget(NS, paris)
    assert item is not None and memory_text(item.value) == "User lives in Berlin"


async def test_a_namespace_mixing_both_record_shapes_is_read(script: Script, store: InMemoryStore) -> None:
    await store.aput(NS, str(uuid.uuid4()), {"content": "User likes tea"})
    await store.aput(NS, str(uuid.uuid4()), {"kind": "Memory", "content": {"content": "User likes tea a lot"}})
    await process(store, [HumanMessage("I like tea", id="m1")])
    shown = prompt_text(script.calls("extract")[0])
    assert "User likes tea a lot" in shown and "User likes tea'" in shown.replace('"', "'")


async def test_a_failed_run_marks_nothing_processed(script: Script, store: InMemoryStore) -> None:
    def broken(messages: Sequence[BaseMessage]) -> AIMessage:
        raise TimeoutError("model timed out")

    script.extract = broken
    history = conversation(2)
    await process(store, history, retry_delay_seconds=0)
    [(_, failure)] = await failures.all_records(store, "ada")
    assert failure["status"] == "retrying" and "model timed out" in failure["error"]
    script.extract = lambda messages: tool_call("Memory", content="User said hello")
    await process(store, history, retry_delay_seconds=0)
    retried = prompt_text(script.calls("extract")[-1])
    assert "user message number 0" in retried
    assert await stored_texts(store) == ["User said hello"]
    assert await failures.all_records(store, "ada") == []


async def test_profile_is_one_document_updated_in_place(script: Script, store: InMemoryStore) -> None:
    script.profile = lambda messages: tool_call("UserProfile", name="Ada", language="English")
    await process(store, [HumanMessage("Hi, I'm Ada. I speak English.", id="h0")])
    script.profile = lambda messages: AIMessage(
        content="",
        tool_calls=[
            {
                "name": "PatchDoc",
                "args": {
                    "json_doc_id": PROFILE_KEY,
                    "planned_edits": "language",
                    "patches": [{"op": "replace", "path": "/language", "value": "French"}],
                },
                "id": "p1",
            }
        ],
    )
    await process(
        store,
        [
            HumanMessage("Hi, I'm Ada. I speak English.", id="h0"),
            HumanMessage("Please answer in French from now on.", id="h1"),
        ],
    )
    profiles = await store.asearch(profile_namespace("ada"))
    assert len(profiles) == 1
    assert profiles[0].value["name"] == "Ada" and profiles[0].value["language"] == "French"
    assert "English" in prompt_text(script.calls("profile")[-1])


async def test_profile_updates_can_be_turned_off(script: Script, store: InMemoryStore) -> None:
    await process(store, conversation(1), memory={"profile": {"enabled": False}})
    assert script.calls("profile") == []


async def test_a_conversation_whose_cursor_message_vanished_is_processed_again(
    script: Script, store: InMemoryStore
) -> None:
    await process(store, conversation(2))
    await process(store, conversation(2, start=10))
    assert "user message number 10" in prompt_text(script.calls("extract")[-1])


async def test_background_memories_are_dated_by_the_messages_they_came_from(
    script: Script, store: InMemoryStore
) -> None:
    script.extract = lambda messages: tool_call("Memory", content="User went to a support group on 2023-05-07")
    said = HumanMessage(
        "I went to a support group yesterday", id="h1", additional_kwargs={"timestamp": "2023-05-08T13:56:00+00:00"}
    )
    await process(store, [said, AIMessage("That sounds good.", id="a1")])
    assert "[2023-05-08 13:56] I went to a support group yesterday" in prompt_text(script.calls("extract")[0])
    (item,) = await store.asearch(NS)
    assert item.value["stated_at"] == "2023-05-08T13:56:00+00:00"
