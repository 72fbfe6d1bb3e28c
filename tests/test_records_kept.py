"""No record is lost: untouched records survive later runs, whichever assistant runs them."""

import re
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.store.memory import InMemoryStore

from memory.history import history
from memory.records import PROFILE_KEY, custom_namespace, profile_namespace
from memory_graph.context import MemoryContext
from memory_graph.graph import builder
from tests.conftest import Script, prompt_text
from tests.support.fakes import tool_call

RECIPES = {
    "name": "recipes",
    "json_schema": {
        "type": "object",
        "description": "A dish the user cooked.",
        "properties": {"dish": {"type": "string"}},
        "required": ["dish"],
    },
}
COOKED = re.compile(r"I cooked ([a-z ]+)")
PET_PROFILE = {
    "profile": {
        "json_schema": {
            "title": "PetProfile",
            "type": "object",
            "properties": {"favorite_food": {"type": "string"}, "pet_name": {"type": "string"}},
        }
    }
}


async def process(store: InMemoryStore, messages: Sequence[BaseMessage], **context: Any) -> None:
    graph = builder.compile(store=store)
    await graph.ainvoke(
        {"messages": list(messages), "chat_thread_id": "chat"},
        context=MemoryContext.model_validate({"user_id": "ada", **context}),
    )


def patch(*operations: dict[str, Any]) -> AIMessage:
    args = {"json_doc_id": PROFILE_KEY, "planned_edits": "update", "patches": list(operations)}
    return AIMessage(content="", tool_calls=[{"name": "PatchDoc", "args": args, "id": "p1"}])


async def test_an_insert_mode_record_survives_a_run_that_adds_another(script: Script, store: InMemoryStore) -> None:
    # The model records the dish of the latest message.
    script.by_tool["recipes"] = lambda m: tool_call("recipes", dish=COOKED.findall(prompt_text(m))[-1])
    memory = {"custom_types": [RECIPES]}
    first = HumanMessage("I cooked green curry", id="h1")
    await process(store, [first], memory=memory)
    await process(store, [first, HumanMessage("I cooked mushroom risotto", id="h2")], memory=memory)
    records = await store.asearch(custom_namespace("ada", "recipes"))
    assert sorted(record.value["data"]["dish"] for record in records) == ["green curry", "mushroom risotto"]
    curry = next(record for record in records if record.value["data"]["dish"] == "green curry")
    assert [entry["action"] for entry in await history(store, "ada", curry.key)] == ["create"]


async def test_profile_fields_of_one_assistant_survive_another_assistants_runs(
    script: Script, store: InMemoryStore
) -> None:
    script.by_tool["PetProfile"] = lambda m: tool_call("PetProfile", favorite_food="curry", pet_name="Rex")
    conversation: list[BaseMessage] = [HumanMessage("I love curry; my dog is Rex", id="h1")]
    await process(store, conversation, memory=PET_PROFILE)

    script.profile = lambda m: tool_call("UserProfile", name="Ada", timezone="Europe/Paris")
    conversation.append(HumanMessage("I am Ada, in Paris", id="h2"))
    await process(store, conversation)
    profile = await store.aget(profile_namespace("ada"), PROFILE_KEY)
    assert profile is not None
    assert profile.value["favorite_food"] == "curry" and profile.value["pet_name"] == "Rex"
    assert profile.value["name"] == "Ada" and profile.value["timezone"] == "Europe/Paris"

    script.by_tool["PatchDoc"] = lambda m: patch({"op": "replace", "path": "/favorite_food", "value": "risotto"})
    conversation.append(HumanMessage("Actually I prefer risotto now", id="h3"))
    await process(store, conversation, memory=PET_PROFILE)
    profile = await store.aget(profile_namespace("ada"), PROFILE_KEY)
    assert profile is not None
    assert profile.value["favorite_food"] == "risotto" and profile.value["pet_name"] == "Rex"
    assert profile.value["name"] == "Ada" and profile.value["timezone"] == "Europe/Paris"
