"""Recall: what the agent is shown about the user before it answers.

Each turn, concurrently: the profile, the facts most relevant to the latest user message
(``memory.search``: similarity and BM25 fused, each fact shown with the date it was stated),
similar past episodes (as few-shot examples, only above a similarity floor), the records of
custom memory types, and the learned instructions (procedural memory), each only if the
assistant keeps that type.
"""

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.store.base import BaseStore, Item, SearchItem

from agent.context import Context
from agent.prompts import EPISODE_TEMPLATE, EPISODES_SECTION, MEMORY_SECTION
from memory.records import (
    PROFILE_KEY,
    custom_namespace,
    episode_namespace,
    instructions_namespace,
    memory_namespace,
    memory_text,
    profile_namespace,
    stated_at,
)
from memory.search import RankingWeights, search_memories
from memory.write_guard import fact_terms
from memory_graph.kinds import render_data

# Cosine similarity below which a past episode is not shown as an example: an unrelated one
# (e.g. a packing list for "What is the capital of Peru?") would mislead more than help.
EPISODE_MIN_SIMILARITY = 0.3


@dataclass(frozen=True)
class Recalled:
    """What one turn recalled: the text appended to the system prompt, and learned instructions."""

    section: str = ""
    instructions: str | None = None


def latest_user_text(messages: Sequence[AnyMessage]) -> str:
    """Text of the latest user message: the query recall searches with."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.text
    return ""


def _profile_lines(profile: Mapping[str, Any] | None) -> list[str]:
    return [
        f"{field}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
        for field, value in (profile or {}).items()
        if value not in (None, "", [])
    ]


def _dated(item: Item) -> str:
    """The memory's text after the day it was stated (or saved), so "when did I ..." can be answered."""
    moment = stated_at(item.value) or item.created_at
    day = f"[{moment.date().isoformat()}] " if moment else ""
    return day + memory_text(item.value)


def format_memory_section(
    profile: Mapping[str, Any] | None,
    memories: Sequence[SearchItem],
    episodes: Sequence[Item] = (),
    custom: Mapping[str, Sequence[Item]] | None = None,
) -> str:
    """The fenced blocks appended to the system prompt; empty when nothing is known."""
    blocks = []
    if profile_lines := _profile_lines(profile):
        blocks.append("<profile>\n" + "\n".join(profile_lines) + "\n</profile>")
    if memories:
        lines = [f"- [{item.key}] {_dated(item)}" for item in memories]
        blocks.append("<memories>\n" + "\n".join(lines) + "\n</memories>")
    for name, items in (custom or {}).items():
        if items:
            lines = [f"- [{item.key}] {render_data(item.value.get('data', {}))}" for item in items]
            blocks.append(f'<records type="{name}">\n' + "\n".join(lines) + "\n</records>")
    section = MEMORY_SECTION.format(blocks="\n".join(blocks)) if blocks else ""
    if episodes:
        examples = "\n".join(EPISODE_TEMPLATE.format(**item.value["episode"]) for item in episodes)
        section += EPISODES_SECTION.format(episodes=examples)
    return section


async def distinct_memories(
    store: BaseStore, namespace: tuple[str, ...], query: str, limit: int, ranking: RankingWeights
) -> list[SearchItem]:
    """The best ``limit`` memories, one per fact: copies stored before the write guard never fill the slots."""
    if limit <= 0:
        return []
    # Every candidate is ranked anyway, so reading them all costs nothing more.
    found = await search_memories(store, namespace, query, max(limit, ranking.candidates), ranking)
    seen: set[frozenset[str]] = set()
    distinct = []
    for item in found:
        terms = fact_terms(memory_text(item.value))
        if terms not in seen:
            seen.add(terms)
            distinct.append(item)
    return distinct[:limit]


async def recall(
    store: BaseStore, user_id: str, query: str, context: Context, assistant_id: str | None = None
) -> Recalled:
    """Read everything the assistant's memory settings ask for, concurrently."""
    settings = context.memory

    async def search(namespace: tuple[str, ...], limit: int, min_similarity: float | None = None) -> list[SearchItem]:
        if limit <= 0 or not query.strip():
            return []
        items = await store.asearch(namespace, query=query, limit=limit)
        return [item for item in items if min_similarity is None or (item.score or 0.0) >= min_similarity]

    async def document(namespace: tuple[str, ...], key: str, enabled: bool) -> Item | None:
        return await store.aget(namespace, key) if enabled else None

    async def custom_records(name: str, mode: str, limit: int) -> list[Item]:
        namespace = custom_namespace(user_id, name)
        if mode == "patch":
            item = await store.aget(namespace, name)
            return [item] if item else []
        return list(await search(namespace, limit))

    fixed = asyncio.gather(
        document(profile_namespace(user_id), PROFILE_KEY, settings.profile.enabled),
        distinct_memories(store, memory_namespace(user_id), query, context.recall_limit, context.ranking),
        search(
            episode_namespace(user_id),
            settings.episodic.recall_limit if settings.episodic.enabled else 0,
            EPISODE_MIN_SIMILARITY,
        ),
        document(
            instructions_namespace(user_id),
            settings.procedural.instructions_key(assistant_id),
            settings.procedural.enabled,
        ),
    )
    customs = asyncio.gather(*(custom_records(t.name, t.mode, t.recall_limit) for t in settings.custom_types))
    (profile, memories, episodes, instructions), custom = await asyncio.gather(fixed, customs)
    section = format_memory_section(
        profile.value if profile else None,
        memories,
        episodes,
        {t.name: records for t, records in zip(settings.custom_types, custom, strict=True)},
    )
    return Recalled(section, instructions.value.get("prompt") if instructions else None)
