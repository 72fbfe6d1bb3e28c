"""The ``agent`` graph: a chat agent that remembers.

    START -> recall -> call_model -> skip_repeated_calls -> tools -> call_model ... -> schedule_memory -> END

A turn is bounded: after ``max_tool_rounds`` rounds of tool calls the model is asked once more,
without tools, to answer; a tool call repeating one already made in the turn is answered
without running it again (``skip_repeated_calls``), so the model cannot loop on one call.

A hand-written StateGraph rather than ``create_agent``: the model is chosen per run from the
context (so each assistant can pick its own), and is built only when a run needs it, so the
server starts without an API key; ``create_agent`` binds one model when the graph is built.
"""

import json
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.tools import ToolException
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.runtime import Runtime
from langgraph.types import Send

from agent import scheduling
from agent.context import Context, context_or_default
from agent.prompts import REPEATED_CALL_ANSWER, REPEATED_IN_BATCH_ANSWER, TOOL_LIMIT_NOTE, TOOL_LIMIT_REPLY
from agent.recall import latest_user_text, recall
from agent.state import InputState, State
from agent.summarization import count_tokens, fit_history
from agent.tools import TOOLS
from memory.identity import resolve_user_id
from memory.records import MESSAGE_TIME_FIELD, message_time
from memory_graph.models import load_chat_model

logger = logging.getLogger(__name__)

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
_CONTEXT_OVERFLOW = re.compile(r"context[ _](length|size|window)|prompt is too long", re.IGNORECASE)


async def recall_memories(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Bring the memories relevant to the latest user message, and the profile, into the turn."""
    context = context_or_default(runtime.context)
    if runtime.store is None:
        return {"recalled": "", "instructions": None}
    config = get_config()
    user_id = resolve_user_id(context.user_id, config)
    query = latest_user_text(state["messages"])
    assistant_id = (config.get("configurable") or {}).get("assistant_id")
    recalled = await recall(runtime.store, user_id, query, context, assistant_id)
    return {"recalled": recalled.section, "instructions": recalled.instructions, "messages": _timestamped(state)}


def _timestamped(state: State) -> list[AnyMessage]:
    """The turn's new user messages with the time they arrived, unless the caller gave one.

    A memory records when it was stated; the hot-path tools and the memory graph read that
    time from the source message (``memory.records.message_time``). Same ids: replaced in place.
    """
    now = datetime.now(UTC).isoformat()
    stamped: list[AnyMessage] = []
    for message in reversed(state["messages"]):
        if not isinstance(message, HumanMessage):
            break
        if message_time(message) is None:
            extra = {**message.additional_kwargs, MESSAGE_TIME_FIELD: now}
            stamped.append(message.model_copy(update={"additional_kwargs": extra}))
    return stamped[::-1]


async def call_model(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Answer, or call a memory tool, shown a history summarized to fit ``max_prompt_tokens``.

    Once the turn has had ``max_tool_rounds`` rounds of tool calls, the model is called once
    more with tools forbidden and a note asking it to answer; any tool call it still makes is
    dropped, so the turn ends with this reply. The real size of each prompt, from the model's
    usage data, raises the thread's ``token_ratio`` for later estimates.
    """
    context = context_or_default(runtime.context)
    chat_model = load_chat_model(context.model)
    instructions = state.get("instructions") or context.system_prompt
    system = SystemMessage(instructions + state.get("recalled", ""))
    rounds = tool_rounds(state["messages"])
    at_limit = rounds >= context.max_tool_rounds
    closing: list[BaseMessage] = [HumanMessage(TOOL_LIMIT_NOTE.format(rounds=rounds))] if at_limit else []
    model = _with_tools(chat_model, context.model, allow_calls=not at_limit)
    token_ratio = state.get("token_ratio", 1.0)

    for attempt in range(MAX_OVERFLOW_RETRIES + 1):
        history = await fit_history(
            state["messages"],
            state.get("summary"),
            system=system,
            model=chat_model,
            max_prompt_tokens=context.max_prompt_tokens,
            summary_max_tokens=context.summary_max_tokens,
            tools=TOOLS,
            token_ratio=token_ratio,
            closing=closing,
        )
        prompt = [system, *history.messages, *closing]
        try:
            response: AIMessage = await model.ainvoke(prompt)
            break
        except Exception as error:
            if attempt == MAX_OVERFLOW_RETRIES or not _CONTEXT_OVERFLOW.search(str(error)):
                raise
            token_ratio = max(token_ratio, 1.0) * OVERFLOW_RATIO_STEP
            logger.warning("Prompt over the model context (%s); refitting for ratio %.2f.", error, token_ratio)

    if at_limit:
        response = _without_tool_calls(response)
    update: dict[str, Any] = {"messages": [response]}
    if history.summary is not None:
        update["summary"] = history.summary
    measured = _measured_token_ratio(response, prompt, context.max_prompt_tokens)
    learned = max(state.get("token_ratio", 1.0), measured if measured is not None else token_ratio)
    if learned != state.get("token_ratio", 1.0):
        update["token_ratio"] = learned
    return update


def current_turn(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """The messages after the latest user message: the model's calls and the tools' results this turn."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return list(messages[index + 1 :])
    return list(messages)


def tool_rounds(messages: Sequence[AnyMessage]) -> int:
    """How many times the model called tools in the current turn."""
    return sum(1 for message in current_turn(messages) if isinstance(message, AIMessage) and message.tool_calls)


def _with_tools(chat_model: BaseChatModel, spec: str, *, allow_calls: bool) -> Any:
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


def _without_tool_calls(response: AIMessage) -> AIMessage:
    """The reply with any tool call dropped (a model may ignore ``tool_choice``), never empty."""
    if not response.tool_calls and not response.invalid_tool_calls and response.text.strip():
        return response
    return AIMessage(
        content=response.text.strip() or TOOL_LIMIT_REPLY,
        id=response.id,
        response_metadata=response.response_metadata,
        usage_metadata=response.usage_metadata,
    )


def _measured_token_ratio(response: AIMessage, prompt: Sequence[BaseMessage], max_prompt_tokens: int) -> float | None:
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


def route_model_output(state: State) -> Literal["skip_repeated_calls", "schedule_memory"]:
    """Run the tools the model called, or end the turn."""
    last = state["messages"][-1]
    if not isinstance(last, AIMessage):
        raise ValueError(f"Expected the model's AIMessage last, got {type(last).__name__}.")
    return "skip_repeated_calls" if last.tool_calls else "schedule_memory"


def skip_repeated_calls(state: State) -> dict[str, Any]:
    """Answer each tool call that repeats one made earlier in the turn, instead of running it again.

    A repeat has the same tool name and arguments. Its answer gives the earlier result and asks
    the model to answer the user: a small model otherwise saves the same memory again and again.
    """
    *earlier, last = current_turn(state["messages"])
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
    return {"messages": answers} if answers else {}


def _call_key(call: ToolCall) -> tuple[str, str]:
    """What makes two tool calls the same: the tool and its arguments, in any order."""
    return call["name"], json.dumps(call["args"], sort_keys=True, default=str)


def route_tool_calls(state: State) -> list[Send] | Literal["call_model"]:
    """Run the tool calls not answered as repeats, or let the model read the answers."""
    messages = state["messages"]
    position = max(i for i, message in enumerate(messages) if isinstance(message, AIMessage))
    caller = messages[position]
    assert isinstance(caller, AIMessage)
    answered = {message.tool_call_id for message in messages[position + 1 :] if isinstance(message, ToolMessage)}
    pending = [call for call in caller.tool_calls if call["id"] not in answered]
    # A list of tool calls is what ToolNode runs when sent one (as create_agent does).
    return [Send("tools", pending)] if pending else "call_model"


async def schedule_memory(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Hand the conversation to the memory graph (debounced on a server)."""
    context = context_or_default(runtime.context)
    if not context.background_memory:
        return {}
    config = get_config()
    configurable = config.get("configurable") or {}
    user_id = resolve_user_id(context.user_id, config)
    chat_thread_id = str(configurable.get("thread_id") or "default")
    assistant_id = configurable.get("assistant_id")
    if scheduling.is_server_run(config):
        await scheduling.schedule_remote(user_id, chat_thread_id, context, assistant_id)
    else:
        await scheduling.run_in_process(
            runtime.store, user_id, chat_thread_id, state["messages"], context, assistant_id
        )
    return {}


builder = StateGraph(State, input_schema=InputState, context_schema=Context)
builder.add_node("recall", recall_memories)
builder.add_node(call_model)
builder.add_node(skip_repeated_calls)
builder.add_node("tools", ToolNode(TOOLS, handle_tool_errors=ToolException))
builder.add_node(schedule_memory)
builder.add_edge(START, "recall")
builder.add_edge("recall", "call_model")
builder.add_conditional_edges("call_model", route_model_output)
# The destinations are named for Studio's drawing: a Send does not say where it goes until run.
builder.add_conditional_edges("skip_repeated_calls", route_tool_calls, ["tools", "call_model"])
builder.add_edge("tools", "call_model")
builder.add_edge("schedule_memory", END)

graph = builder.compile()
graph.name = "agent"
