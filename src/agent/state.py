"""State of the agent."""

from typing import Annotated, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages


class InputState(TypedDict):
    """What a caller sends: new messages for the conversation."""

    messages: Annotated[list[AnyMessage], add_messages]


class State(InputState, total=False):
    """The conversation plus what was recalled for the current turn."""

    recalled: str
    """Memory section for the system prompt, recalled at the start of the turn."""
    instructions: str | None
    """Instructions learned for this user (procedural memory), replacing the system prompt."""
