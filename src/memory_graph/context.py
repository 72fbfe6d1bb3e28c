"""Run configuration of the memory graph, settable per assistant."""

import os

from pydantic import BaseModel, ConfigDict, Field

from memory_graph.memory_types import MemorySettings


def _default_model() -> str:
    return os.environ.get("MEMORY_MODEL") or os.environ.get("CHAT_MODEL") or "openai:gpt-4.1-mini"


class MemoryContext(BaseModel):
    """How the background memory service extracts and consolidates memories.

    Environment variables only supply defaults; what a run or assistant sets wins. The agent
    fills ``user_id``, ``memory``, ``agent_assistant_id`` and ``base_prompt`` when it schedules
    a run, so the chat assistant's memory configuration applies to its background runs.
    """

    model_config = ConfigDict(extra="ignore")

    user_id: str | None = Field(
        default=None,
        description="Whose memories to update. Set by the agent when it schedules a run.",
    )
    model: str = Field(
        default_factory=_default_model,
        description="Extraction model as 'provider:model'. Default: $MEMORY_MODEL, else $CHAT_MODEL, "
        "else openai:gpt-4.1-mini.",
    )
    memory: MemorySettings = Field(
        default_factory=MemorySettings, description="Which memory types to extract, and how."
    )
    agent_assistant_id: str | None = Field(
        default=None, description="The chat assistant whose instructions procedural memory refines."
    )
    base_prompt: str | None = Field(
        default=None, description="The chat assistant's own system prompt: the starting point of refinement."
    )
    overlap_messages: int = Field(
        default=2,
        ge=0,
        le=20,
        description="Already-processed messages shown again before the new ones, for context.",
    )
    max_messages_per_batch: int = Field(
        default=20,
        ge=1,
        le=200,
        description="New messages sent to the model at most in one extraction call; "
        "a longer backlog is processed in several batches.",
    )
    related_memories: int = Field(
        default=10,
        ge=4,
        le=50,
        description="Existing memories most related to the new messages shown to the model "
        "so it updates or deletes them instead of adding duplicates.",
    )
