"""Recall: the memories relevant to the latest user message, and the profile, as prompt text."""

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.store.base import BaseStore, SearchItem

from agent.prompts import MEMORY_SECTION
from memory_graph.records import PROFILE_KEY, memory_namespace, memory_text, profile_namespace


def latest_user_text(messages: Sequence[AnyMessage]) -> str:
    """Text of the latest user message: the query recall searches with."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.text
    return ""


def format_memory_section(profile: Mapping[str, Any] | None, memories: Sequence[SearchItem]) -> str:
    """The fenced block appended to the system prompt; empty when nothing is known."""
    profile_lines = [
        f"{field}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
        for field, value in (profile or {}).items()
        if value not in (None, "", [])
    ]
    memory_lines = [f"- [{item.key}] {memory_text(item.value)}" for item in memories]
    if not profile_lines and not memory_lines:
        return ""
    return MEMORY_SECTION.format(
        profile="\n".join(profile_lines) or "(none)", memories="\n".join(memory_lines) or "(none)"
    )


async def recall(store: BaseStore, user_id: str, query: str, limit: int) -> str:
    """Search the user's memories with ``query`` and load their profile, concurrently."""

    async def search() -> list[SearchItem]:
        if limit <= 0 or not query.strip():
            return []
        return await store.asearch(memory_namespace(user_id), query=query, limit=limit)

    memories, profile = await asyncio.gather(search(), store.aget(profile_namespace(user_id), PROFILE_KEY))
    return format_memory_section(profile.value if profile else None, memories)
