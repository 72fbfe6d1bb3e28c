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
        description="New messages sent to the model at most in one extraction call, counting only those "
        "it is shown (user messages and the assistant's text, not its tool calls and their results); "
        "a longer backlog is processed in several batches.",
    )
    related_memories: int = Field(
        default=10,
        ge=4,
        le=50,
        description="Existing memories most related to the new messages shown to the model "
        "so it updates or deletes them instead of adding duplicates.",
    )
    max_model_calls: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Model calls one memory run may make at most; over it, the run stops the batch "
        "it is on and leaves it for a later run. A call the model client retries counts once here "
        "(it sends at most 1 + `model_max_retries` requests; the run's report counts them as `requests`).",
    )
    max_prompt_tokens: int = Field(
        default=2_000_000,
        ge=1_000,
        le=100_000_000,
        description="Prompt tokens one memory run may send at most (as the provider reports them); "
        "over it, the run stops like over `max_model_calls`.",
    )
    extraction_attempts: int = Field(
        default=3,
        ge=1,
        le=5,
        description="Attempts the extractor gets to turn the model's answer into valid memories "
        "(trustcall's `max_attempts`); its step limit follows from it.",
    )
    model_timeout_seconds: float = Field(
        default=60,
        gt=0,
        le=600,
        description="Seconds the extraction model may take to answer one request (the client's read "
        "timeout: an answer that is not streamed arrives all at once) before the request is abandoned "
        "and retried. A slow local server (llama.cpp, Ollama) needs more: 300, say.",
    )
    model_max_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Retries of a request the provider refused with 429 or 5xx, or that timed out, "
        "by the model client (exponential backoff with jitter; honours Retry-After). Against a slow "
        "local server a retry redoes all the work of the request it replaces: 1, say.",
    )
    batch_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Runs that may fail on one batch of messages before it is set aside "
        "(recorded, visible under /me/memory-failures, retryable) and later messages go ahead.",
    )
    retry_delay_seconds: float = Field(
        default=30,
        ge=0,
        le=86_400,
        description="Wait before a failed batch is tried again; doubled after each further failure.",
    )
