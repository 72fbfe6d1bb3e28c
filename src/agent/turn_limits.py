"""What bounds one chat turn: tool rounds, repeated calls, and prompts that fit the model's real context.

A small real model repeated one ``manage_memory`` update 61 times in a turn (62 model calls,
518 s) and pushed its prompt past its 8,192-token context while the character-based estimate
still read 6.7k. These helpers are what ``agent.graph`` uses so that a turn always ends with a
reply: rounds are counted per turn, repeats are answered without running them, and the prompt
estimate learns the model's real token count from its usage data.
"""

import json
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import ToolCall

from agent.prompts import REPEATED_CALL_ANSWER, REPEATED_IN_BATCH_ANSWER, TOOL_LIMIT_REPLY
from agent.summarization import count_tokens
from agent.tools import TOOLS

OVERFLOW_RATIO_STEP = 1.5
"""How much a prompt the model rejected as too long raises the thread's token ratio before retrying.

Usage data comes only with an answer, so a prompt that overflows before any (a thread older than
this bound, or a first call) teaches nothing else; 1.5 fits the worst ratios measured (~1.2)
with room for the safety margin, in one retry.
"""
MAX_OVERFLOW_RETRIES = 2
MEASURED_PROMPT_SHARE = 0.5
"""Share of ``max_prompt_tokens`` a prompt must reach for its usage data to set the token ratio."""

# How providers word a prompt longer than the context: OpenAI and vLLM ("maximum context length"),
# llama.cpp ("exceeds the available context size", exceed_context_size_error), Anthropic
# ("prompt is too long").
CONTEXT_OVERFLOW = re.compile(r"context[ _](length|size|window)|prompt is too long", re.IGNORECASE)


def current_turn(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """The messages after the latest user message: the model's calls and the tools' results this turn."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return list(messages[index + 1 :])
    return list(messages)


def tool_rounds(messages: Sequence[AnyMessage]) -> int:
    """How many times the model called tools in the current turn."""
    return sum(1 for message in current_turn(messages) if isinstance(message, AIMessage) and message.tool_calls)


def with_tools(chat_model: BaseChatModel, spec: str, *, allow_calls: bool) -> Any:
    """The model offered the memory tools, free to call them or (``allow_calls=False``) not.

    Tools are forbidden by ``tool_choice`` rather than left out: the history holds tool calls,
    which some providers (Anthropic) accept only in a request that declares the tools, and the
    prompt stays the one the model was counted and cached on. langchain-anthropic reads a bare
    "none" as a tool's name, so it is given the API's own form.
    """
    if allow_calls:
        return chat_model.bind_tools(TOOLS)
    no_calls: dict[str, Any] = {"tool_choice": {"type": "none"} if spec.startswith("anthropic:") else "none"}
    return chat_model.bind_tools(TOOLS, **no_calls)


def without_tool_calls(response: AIMessage) -> AIMessage:
    """The reply with any tool call dropped (a model may ignore ``tool_choice``), never empty."""
    if not response.tool_calls and not response.invalid_tool_calls and response.text.strip():
        return response
    return AIMessage(
        content=response.text.strip() or TOOL_LIMIT_REPLY,
        id=response.id,
        response_metadata=response.response_metadata,
        usage_metadata=response.usage_metadata,
    )


def measured_token_ratio(response: AIMessage, prompt: Sequence[BaseMessage], max_prompt_tokens: int) -> float | None:
    """Real/estimated tokens of ``prompt``, when the model reported how many it read.

    Only a prompt of at least ``MEASURED_PROMPT_SHARE`` of the budget is measured: a short one's
    ratio is swollen by what the chat template adds (a first turn measured 1.6 where a full
    prompt measured 1.2), and the highest ratio is kept.
    """
    usage = response.usage_metadata
    real = usage.get("input_tokens") if usage else None
    estimated = count_tokens(prompt, TOOLS)
    if not real or estimated < max_prompt_tokens * MEASURED_PROMPT_SHARE:
        return None
    return real / estimated


def repeated_call_answers(messages: Sequence[AnyMessage]) -> list[ToolMessage]:
    """Answers to the latest tool calls that repeat one made earlier in the turn (or in the same batch).

    A repeat has the same tool name and arguments. Its answer gives the earlier result and asks
    the model to answer the user: a small model otherwise saves the same memory again and again.
    """
    *earlier, last = current_turn(messages)
    if not isinstance(last, AIMessage):
        raise ValueError(f"Expected the model's AIMessage last, got {type(last).__name__}.")
    results = {message.tool_call_id: message for message in earlier if isinstance(message, ToolMessage)}
    made = {
        _call_key(call): call for message in earlier if isinstance(message, AIMessage) for call in message.tool_calls
    }
    in_batch: dict[tuple[str, str], ToolCall] = {}
    answers: list[ToolMessage] = []
    for call in last.tool_calls:
        key = _call_key(call)
        if key in made:
            result = results.get(str(made[key]["id"]))
            text = REPEATED_CALL_ANSWER.format(name=call["name"], result=result.text if result else "(none)")
        elif key in in_batch:
            text = REPEATED_IN_BATCH_ANSWER.format(call_id=in_batch[key]["id"])
        else:
            in_batch[key] = call
            continue
        answers.append(ToolMessage(text, tool_call_id=str(call["id"]), name=call["name"]))
    return answers


def _call_key(call: ToolCall) -> tuple[str, str]:
    """What makes two tool calls the same: the tool and its arguments, in any order."""
    return call["name"], json.dumps(call["args"], sort_keys=True, default=str)
