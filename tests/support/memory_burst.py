"""Many memory-graph runs of one user at once, with a model that behaves like a careful extractor.

Each run processes its own conversation, ``"My new hobby is hobby-<i>. I am training for a
marathon."``. The scripted model stores the marathon fact unless it is among the existing
memories it is shown, and adds ``hobby-<i>`` to the profile's interests (creating the
profile if there is none). Without serialization, concurrent runs read the same state and
store the fact several times, or overwrite each other's profile.

Also runnable in another process, against a Postgres database, for the cross-process case::

    python -m tests.support.memory_burst POSTGRES_URI USER_ID FIRST COUNT
"""

import asyncio
import re
import sys
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.store.base import BaseStore

import memory_graph.graph
from memory.records import PROFILE_KEY, memory_namespace, memory_text, profile_namespace
from memory_graph.context import MemoryContext
from tests.support.fakes import HashedEmbeddings, ScriptedChatModel, tool_call

FACT = "User is training for a marathon"
_HOBBY = re.compile(r"My new hobby is (hobby-\d+)")


def _respond(messages: Sequence[BaseMessage], tools: list[str]) -> AIMessage:
    text = "\n".join(message.text for message in messages)
    if "Memory" in tools:
        return AIMessage(content="") if FACT in text else tool_call("Memory", content=FACT)
    match = _HOBBY.search(text)
    if match is None:
        return AIMessage(content="")
    if "UserProfile" in tools:
        return tool_call("UserProfile", interests=[match.group(1)])
    if "PatchDoc" in tools:
        patch = {"op": "add", "path": "/interests/-", "value": match.group(1)}
        return tool_call("PatchDoc", json_doc_id=PROFILE_KEY, planned_edits="add a hobby", patches=[patch])
    return AIMessage(content="")


def scripted_model() -> ScriptedChatModel:
    """The scripted extractor described in the module docstring."""
    return ScriptedChatModel(respond=_respond)


async def burst(store: BaseStore, user_id: str, indices: Sequence[int]) -> None:
    """Run the memory graph once per index, all at the same time."""
    graph = memory_graph.graph.builder.compile(store=store)

    async def one(index: int) -> None:
        message = HumanMessage(f"My new hobby is hobby-{index}. I am training for a marathon.", id=f"m{index}")
        await graph.ainvoke(
            {"messages": [message], "chat_thread_id": f"chat-{index}"}, context=MemoryContext(user_id=user_id)
        )

    await asyncio.gather(*(one(index) for index in indices))


async def outcome(store: BaseStore, user_id: str) -> tuple[list[str], list[str]]:
    """The stored memory texts and the profile's interests, sorted."""
    memories = await store.asearch(memory_namespace(user_id), limit=100)
    profile = await store.aget(profile_namespace(user_id), PROFILE_KEY)
    interests: list[Any] = profile.value.get("interests", []) if profile else []
    return sorted(memory_text(item.value) for item in memories), sorted(map(str, interests))


async def _main(uri: str, user_id: str, first: int, count: int) -> None:
    from langgraph.store.postgres.aio import AsyncPostgresStore

    from deployment.postgres import open_pool, store_index_config

    model = scripted_model()
    memory_graph.graph.load_chat_model = lambda spec, **client: model  # type: ignore[assignment]
    async with open_pool(uri) as pool:
        store = AsyncPostgresStore(pool, index=store_index_config(HashedEmbeddings()))
        await burst(store, user_id, range(first, first + count))


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
