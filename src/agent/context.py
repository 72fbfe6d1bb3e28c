"""Run configuration of the agent, settable per assistant through the assistants API."""

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.prompts import SYSTEM_PROMPT
from memory_graph.memory_types import MemorySettings


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


class Context(BaseModel):
    """Settings of one agent run. Environment variables only supply defaults."""

    model_config = ConfigDict(extra="ignore")

    user_id: str | None = Field(
        default=None,
        description="Whose memories to use. Default: $DEFAULT_USER_ID, else 'local-user'.",
    )
    model: str = Field(
        default_factory=lambda: os.environ.get("CHAT_MODEL") or "openai:gpt-4.1-mini",
        description="Chat model as 'provider:model'. Default: $CHAT_MODEL, else openai:gpt-4.1-mini.",
    )
    system_prompt: str = Field(default=SYSTEM_PROMPT, description="The agent's instructions.")
    recall_limit: int = Field(
        default=5,
        ge=0,
        le=50,
        description="Memories most relevant to the latest user message put in the prompt (0: none).",
    )
    background_memory: bool = Field(
        default=True,
        description="After each turn, schedule the memory graph to extract memories from it.",
    )
    memory_delay_seconds: int = Field(
        default_factory=lambda: int(_env_float("MEMORY_DELAY_SECONDS", 30)),
        ge=0,
        le=86400,
        description="How long the conversation must stay quiet before memories are extracted; "
        "a new turn within it replaces the pending run. Default: $MEMORY_DELAY_SECONDS, else 30.",
    )
    memory_assistant_id: str = Field(
        default="memory_graph",
        description="Assistant (or graph id) that runs background memory extraction.",
    )
    memory: MemorySettings = Field(
        default_factory=MemorySettings,
        description="Which memory types this assistant keeps (profile, semantic, episodic, procedural, "
        "custom) and how; recalled here and passed to the memory graph it schedules.",
    )
    memory_without_server: Literal["in_process", "skip"] = Field(
        default="in_process",
        description="Outside a LangGraph server: run memory extraction in-process after the turn, or skip it.",
    )


def context_or_default(context: Context | None) -> Context:
    """The run's context, or the defaults when the graph was invoked without one."""
    return context if context is not None else Context()
