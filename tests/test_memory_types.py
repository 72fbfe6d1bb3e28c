"""Memory types per assistant: what is extracted, where it is stored, how it comes back."""

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore
from pydantic import ValidationError

from agent.graph import builder as agent_builder
from memory.history import history
from memory.records import (
    PROFILE_KEY,
    custom_namespace,
    episode_namespace,
    instructions_namespace,
    memory_namespace,
    profile_namespace,
)
from memory_graph.context import MemoryContext
from memory_graph.graph import builder as memory_builder
from tests.conftest import Script, prompt_text
from tests.support.fakes import tool_call

EPISODIC = {"episodic": {"enabled": True}}
PROCEDURAL = {"procedural": {"enabled": True}}
RECIPES = {
    "name": "recipes",
    "json_schema": {
        "type": "object",
        "description": "A dish the user cooked or wants to cook.",
        "properties": {"dish": {"type": "string"}, "spicy": {"type": "boolean"}},
        "required": ["dish"],
    },
}


async def process(store: InMemoryStore, messages: Sequence[BaseMessage], **context: Any) -> None:
    graph = memory_builder.compile(store=store)
    await graph.ainvoke(
        {"messages": list(messages), "chat_thread_id": "chat"},
        context=MemoryContext.model_validate({"user_id": "ada", **context}),
    )


async def chat(store: InMemoryStore, text: str, thread: str = "t", **context: Any) -> dict[str, Any]:
    graph = agent_builder.compile(checkpointer=InMemorySaver(), store=store)
    return await graph.ainvoke(
        {"messages": [("user", text)]},
        {"configurable": {"thread_id": thread, "assistant_id": context.pop("assistant_id", "a1")}},
        context={"user_id": "ada", "background_memory": False, **context},
    )


def system_prompt(script: Script) -> str:
    return prompt_text(script.calls("agent")[-1][:1])


async def test_triples_are_stored_with_their_structure_and_recalled_as_text(
    script: Script, store: InMemoryStore
) -> None:
    script.extract = lambda m: tool_call("Triple", subject="User", predicate="lives in", object="Berlin")
    await process(store, [HumanMessage("I live in Berlin", id="h1")], memory={"semantic": {"format": "triple"}})
    [item] = await store.asearch(memory_namespace("ada"))
    assert item.value["content"] == "User lives in Berlin"
    assert item.value["triple"] == {"subject": "User", "predicate": "lives in", "object": "Berlin", "context": None}
    await chat(store, "Where do I live?")
    assert "User lives in Berlin" in system_prompt(script)


async def test_episodes_are_recalled_as_examples_only_by_assistants_that_keep_them(
    script: Script, store: InMemoryStore
) -> None:
    script.episode = lambda m: tool_call(
        "Episode",
        observation="User asked how to fix a flaky pytest test",
        thoughts="Flakiness usually comes from shared state",
        action="Suggested isolating fixtures",
        result="The test passed reliably",
    )
    await process(store, [HumanMessage("my pytest test is flaky", id="h1")], memory=EPISODIC)
    [episode] = await store.asearch(episode_namespace("ada"))
    assert episode.value["content"] == "User asked how to fix a flaky pytest test"

    await chat(store, "another flaky pytest test, help", memory=EPISODIC)
    with_episodes = system_prompt(script)
    assert "<examples>" in with_episodes and "Action: Suggested isolating fixtures" in with_episodes
    await chat(store, "another flaky pytest test, help")
    assert "isolating fixtures" not in system_prompt(script)


async def test_an_unrelated_episode_is_not_shown_as_an_example(script: Script, store: InMemoryStore) -> None:
    episode = {
        "observation": "User needed a packing list for a ski trip",
        "thoughts": "Cold weather",
        "action": "Listed layers",
        "result": "User was warm",
    }
    await store.aput(episode_namespace("ada"), "ski", {"content": episode["observation"], "episode": episode})
    await chat(store, "What is the capital of Peru?", memory=EPISODIC)
    assert "<examples>" not in system_prompt(script)
    await chat(store, "Can you make me a packing list for a ski trip?", memory=EPISODIC)
    assert "Action: Listed layers" in system_prompt(script)


async def test_custom_types_are_extracted_stored_and_recalled(script: Script, store: InMemoryStore) -> None:
    script.by_tool["recipes"] = lambda m: tool_call("recipes", dish="green curry", spicy=True)
    await process(store, [HumanMessage("I cooked a spicy green curry", id="h1")], memory={"custom_types": [RECIPES]})
    [record] = await store.asearch(custom_namespace("ada", "recipes"))
    assert record.value["data"] == {"dish": "green curry", "spicy": True}
    await chat(store, "what curry did I cook?", memory={"custom_types": [RECIPES]})
    assert '<records type="recipes">' in system_prompt(script) and "dish: green curry" in system_prompt(script)
    await chat(store, "what curry did I cook?")
    assert "green curry" not in system_prompt(script)


async def test_a_custom_type_in_patch_mode_is_one_document(script: Script, store: InMemoryStore) -> None:
    goals = {
        "name": "goals",
        "mode": "patch",
        "json_schema": {"type": "object", "properties": {"weekly_km": {"type": "integer"}}},
    }
    script.by_tool["goals"] = lambda m: tool_call("goals", weekly_km=20)
    await process(store, [HumanMessage("I want to run 20 km a week", id="h1")], memory={"custom_types": [goals]})
    script.profile = lambda m: (
        AIMessage(
            content="",
            tool_calls=[
                {
                    "name": "PatchDoc",
                    "args": {
                        "json_doc_id": "goals",
                        "planned_edits": "more",
                        "patches": [{"op": "replace", "path": "/weekly_km", "value": 30}],
                    },
                    "id": "p1",
                }
            ],
        )
        if "goals" in prompt_text(m)
        else AIMessage(content="")
    )
    messages = [HumanMessage("I want to run 20 km a week", id="h1"), HumanMessage("make it 30", id="h2")]
    await process(store, messages, memory={"custom_types": [goals]})
    docs = await store.asearch(custom_namespace("ada", "goals"))
    assert [(d.key, d.value["data"]) for d in docs] == [("goals", {"weekly_km": 30})]


@pytest.mark.parametrize(
    ("custom_type", "message"),
    [
        ({"name": "x", "json_schema": {"type": "object", "properties": {"a": {"type": "nope"}}}}, "not a valid"),
        ({"name": "x", "json_schema": {"type": "string"}}, "must be an object schema"),
        ({"name": "Bad Name", "json_schema": RECIPES["json_schema"]}, "must match"),
        ({"name": "profile", "json_schema": RECIPES["json_schema"]}, "must match"),
    ],
)
async def test_an_invalid_custom_type_fails_the_first_run_clearly(
    store: InMemoryStore, custom_type: dict[str, Any], message: str
) -> None:
    graph = agent_builder.compile(checkpointer=InMemorySaver(), store=store)
    with pytest.raises(ValidationError, match=message):
        await graph.ainvoke(
            {"messages": [("user", "hi")]},
            {"configurable": {"thread_id": "t"}},
            context={"memory": {"custom_types": [custom_type]}},
        )


async def test_a_configured_profile_schema_is_used(script: Script, store: InMemoryStore) -> None:
    schema = {
        "title": "TravelProfile",
        "type": "object",
        "properties": {"home_airport": {"type": "string"}, "seat": {"type": "string"}},
    }
    script.by_tool["TravelProfile"] = lambda m: tool_call("TravelProfile", home_airport="TXL", seat="aisle")
    await process(
        store, [HumanMessage("I fly from TXL, aisle please", id="h1")], memory={"profile": {"json_schema": schema}}
    )
    profile = await store.aget(profile_namespace("ada"), PROFILE_KEY)
    assert profile is not None and profile.value == {"home_airport": "TXL", "seat": "aisle"}
    await chat(store, "book me a flight")
    assert "home_airport: TXL" in system_prompt(script)


def optimizer_answer(new_prompt: str) -> Any:
    return lambda messages: tool_call("GeneralResponse", logic="feedback", update_prompt=True, new_prompt=new_prompt)


async def test_procedural_memory_learns_from_feedback_per_assistant_and_can_be_restored(
    script: Script, store: InMemoryStore
) -> None:
    script.optimize = optimizer_answer("You are a helpful assistant. Never use bullet points.")
    conversation = [HumanMessage("stop using bullet points", id="h1"), AIMessage("Understood.", id="a1")]
    await process(
        store, conversation, memory=PROCEDURAL, agent_assistant_id="a1", base_prompt="You are a helpful assistant."
    )
    assert "stop using bullet points" in prompt_text(script.calls("optimize")[-1])

    await chat(store, "hello", memory=PROCEDURAL, assistant_id="a1")
    assert system_prompt(script).startswith("You are a helpful assistant. Never use bullet points.")
    await chat(store, "hello", memory=PROCEDURAL, assistant_id="a2", system_prompt="You are assistant two.")
    assert system_prompt(script).startswith("You are assistant two.")

    await store.adelete(instructions_namespace("ada"), "a1")
    await chat(store, "hello", memory=PROCEDURAL, assistant_id="a1", system_prompt="Original prompt.")
    assert system_prompt(script).startswith("Original prompt.")


async def test_a_feedback_input_refines_instructions_without_new_messages(script: Script, store: InMemoryStore) -> None:
    conversation = [HumanMessage("summarize this", id="h1"), AIMessage("- a\n- b", id="a1")]
    context = {"memory": PROCEDURAL, "agent_assistant_id": "a1", "base_prompt": "Be helpful."}
    await process(store, conversation, **context)
    script.optimize = optimizer_answer("Be helpful. Answer in prose.")
    graph = memory_builder.compile(store=store)
    await graph.ainvoke(
        {"messages": conversation, "chat_thread_id": "chat", "feedback": {"score": 0.1, "comment": "no lists"}},
        context=MemoryContext.model_validate({"user_id": "ada", **context}),
    )
    assert "score: 0.1; no lists" in prompt_text(script.calls("optimize")[-1])
    learned = await store.aget(instructions_namespace("ada"), "a1")
    assert learned is not None and learned.value["prompt"] == "Be helpful. Answer in prose."
    assert learned.value["base_prompt"] == "Be helpful."
    [entry] = await history(store, "ada", "a1")
    assert entry["source"] == "feedback"


async def test_every_change_leaves_history_with_provenance(script: Script, store: InMemoryStore) -> None:
    script.agent = lambda m: (
        AIMessage(content="ok")
        if m[-1].type == "tool"
        else tool_call("manage_memory", action="create", content="User owns a bike")
    )
    await chat(store, "remember I own a bike", thread="hot")
    [item] = await store.asearch(memory_namespace("ada"))
    script.extract = lambda m: AIMessage(
        content="",
        tool_calls=[
            {
                "name": "PatchDoc",
                "args": {
                    "json_doc_id": item.key,
                    "planned_edits": "e-bike",
                    "patches": [{"op": "replace", "path": "/content", "value": "User owns an e-bike"}],
                },
                "id": "c1",
            }
        ],
    )
    await process(store, [HumanMessage("it is an e-bike now, my bike", id="h9")])
    entries = await history(store, "ada", item.key)
    assert [(e["action"], e["source"]) for e in entries] == [("create", "hot_path"), ("update", "background")]
    assert entries[0]["thread_id"] == "hot" and entries[0]["after"]["content"] == "User owns a bike"
    assert entries[0]["after"]["stated_at"]
    assert entries[1]["thread_id"] == "chat" and entries[1]["message_ids"] == ["h9"]
    assert entries[1]["before"]["content"] == "User owns a bike"
    assert entries[1]["after"]["content"] == "User owns an e-bike"
    unknown = str(uuid.uuid4())
    assert await history(store, "ada", unknown) == []
