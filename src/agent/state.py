"""State of the agent."""

from typing import Annotated, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages


class ConversationSummary(TypedDict):
    """Running summary of the older messages, which the prompt shows instead of them.

    Plain strings rather than langmem's RunningSummary dataclass: checkpoints deserialize
    unregistered classes only with a warning (to be blocked), and the API returns state as JSON.
    """

    text: str
    last_message_id: str
    """Id of the newest message the summary covers; the prompt shows the messages after it."""


class InputState(TypedDict):
    """What a caller sends: new messages for the conversation."""

    messages: Annotated[list[AnyMessage], add_messages]


class State(InputState, total=False):
    """The conversation plus what was recalled for the current turn."""

    recalled: str
    """Memory section for the system prompt, recalled at the start of the turn."""
    instructions: str | None
    """Instructions learned for this user (procedural memory), replacing the system prompt."""
    summary: ConversationSummary
    """Summary of the messages too old to fit the prompt (see agent.summarization)."""
    token_ratio: float
    """Highest ratio of a prompt's real tokens (the model's usage data) to its estimate in this thread.

    Later estimates are scaled by it so that prompts fit ``max_prompt_tokens`` as the model counts.
    """
