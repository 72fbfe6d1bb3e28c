"""Run configuration of the agent, settable per assistant through the assistants API."""

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.prompts import SYSTEM_PROMPT
from memory.search import RankingWeights
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
    max_prompt_tokens: int = Field(
        default=8000,
        ge=1000,
        description="Token budget of each prompt to the chat model (system prompt, recalled memories, summary, "
        "recent messages and tool schemas). Estimated at about 4 characters a token, scaled by the highest "
        "real/estimated ratio the model's usage data reported in the thread, with a 10% margin. Older messages "
        "beyond it are summarized in the prompt only; the thread keeps them all. Set it to the model's context "
        "size less room for the reply.",
    )
    max_tool_rounds: int = Field(
        default=6,
        ge=1,
        description="Most times the model may call memory tools in one turn (from the user's message to the reply). "
        "At the limit it is asked once more, without tools, to answer with what it has. A call repeating one "
        "already made in the turn (same tool and arguments) is not run again: the model is told to answer.",
    )
    summary_max_tokens: int = Field(
        default=512,
        ge=64,
        description="Part of max_prompt_tokens kept for the summary of older messages (at most a quarter of "
        "it); a longer summary is cut.",
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
    ranking: RankingWeights = Field(
        default_factory=RankingWeights,
        description="How recalled facts are ranked: similarity and BM25 word matching fused, recency and importance "
        "as tie-breakers.",
    )
    memory_without_server: Literal["in_process", "skip"] = Field(
        default="in_process",
        description="Outside a LangGraph server: run memory extraction in-process after the turn, or skip it.",
    )

    @model_validator(mode="after")
    def _summary_leaves_room_for_messages(self) -> "Context":
        """A summary taking most of the budget would leave no room for the recent messages."""
        if self.summary_max_tokens * 4 > self.max_prompt_tokens:
            raise ValueError(
                f"summary_max_tokens ({self.summary_max_tokens}) must be at most a quarter of "
                f"max_prompt_tokens ({self.max_prompt_tokens})."
            )
        return self


def context_or_default(context: Context | None) -> Context:
    """The run's context, or the defaults when the graph was invoked without one."""
    return context if context is not None else Context()
