"""Hot-path memory tools, driven through the agent the way a model would call them."""

import uuid
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from agent.graph import builder
from memory.records import MAX_MEMORY_CHARS, memory_namespace, memory_text
from tests.conftest import Script
from tests.support.fakes import tool_call

NS = memory_namespace("ada")


async def turn_with_tool_call(script: Script, store: InMemoryStore, name: str, **args: Any) -> list[Any]:
    """One turn in which the model calls one tool, then answers after seeing the result."""
    script.agent = lambda messages: (
        AIMessage(content="Understood.") if messages[-1].type == "tool" else tool_call(name, **args)
    )
    graph = builder.compile(checkpointer=InMemorySaver(), store=store)
    result = await graph.ainvoke(
        {"messages": [("user", "hello")]},
        {"configurable": {"thread_id": str(uuid.uuid4())}},
        context={"user_id": "ada", "background_memory": False},
    )
    messages: list[Any] = result["messages"]
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert messages[-1].content == "Understood."
    return messages


async def test_create_stores_the_memory_in_the_users_namespace(script: Script, store: InMemoryStore) -> None:
    messages = await turn_with_tool_call(script, store, "manage_memory", action="create", content="Likes tea")
    items = await store.asearch(NS)
    assert [memory_text(i.value) for i in items] == ["Likes tea"]
    assert items[0].key in messages[2].content
    assert await store.asearch(memory_namespace("someone-else")) == []


async def test_update_and_delete_change_an_existing_memory(script: Script, store: InMemoryStore) -> None:
    key = str(uuid.uuid4())
    await store.aput(NS, key, {"content": "Lives in Paris"})
    await turn_with_tool_call(script, store, "manage_memory", action="update", id=key, content="Lives in Berlin")
    item = await store.aget(NS, key)
    assert item is not None and memory_text(item.value) == "Lives in Berlin"
    await turn_with_tool_call(script, store, "manage_memory", action="delete", id=key)
    assert await store.aget(NS, key) is None


@pytest.mark.parametrize("action", ["update", "delete"])
async def test_unknown_id_is_an_error_the_model_can_act_on(script: Script, store: InMemoryStore, action: str) -> None:
    unknown = str(uuid.uuid4())
    messages = await turn_with_tool_call(script, store, "manage_memory", action=action, id=unknown, content="x")
    result: ToolMessage = messages[2]
    assert result.status == "error"
    assert f"No memory has id {unknown}" in result.text and "search_memory" in result.text
    assert await store.asearch(NS) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"action": "update", "id": "not-a-uuid", "content": "x"}, "is not a memory id"),
        ({"action": "create", "content": "x" * (MAX_MEMORY_CHARS + 1)}, f"the limit is {MAX_MEMORY_CHARS}"),
        ({"action": "create", "content": "  "}, "pass its text as `content`"),
        ({"action": "create", "id": str(uuid.uuid4()), "content": "x"}, "Do not pass an `id`"),
        ({"action": "explode", "content": "x"}, "action"),
        ({"content": ["not", "a", "string"]}, "content"),
    ],
)
async def test_bad_arguments_come_back_as_tool_errors(
    script: Script, store: InMemoryStore, args: dict[str, Any], expected: str
) -> None:
    messages = await turn_with_tool_call(script, store, "manage_memory", **args)
    assert messages[2].status == "error"
    assert expected in messages[2].text
    assert await store.asearch(NS) == []


async def test_search_finds_the_users_memories_only(script: Script, store: InMemoryStore) -> None:
    await store.aput(NS, str(uuid.uuid4()), {"content": "Ada plays the cello"})
    await store.aput(memory_namespace("bob"), str(uuid.uuid4()), {"content": "Bob plays the cello"})
    messages = await turn_with_tool_call(script, store, "search_memory", query="cello")
    assert "Ada plays the cello" in messages[2].text
    assert "Bob" not in messages[2].text


async def test_search_limits_are_enforced(script: Script, store: InMemoryStore) -> None:
    messages = await turn_with_tool_call(script, store, "search_memory", query="cello", limit=500)
    assert messages[2].status == "error" and "`limit` must be between" in messages[2].text
