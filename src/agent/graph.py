"""The ``agent`` graph: a chat agent that remembers.

    START -> recall -> call_model -> skip_repeated_calls -> tools -> call_model ... -> schedule_memory -> END

A turn is bounded: after ``max_tool_rounds`` rounds of tool calls the model is asked once more,
without tools, to answer; a tool call repeating one already made in the turn is answered
without running it again (``skip_repeated_calls``), so the model cannot loop on one call.

A hand-written StateGraph rather than ``create_agent``: the model is chosen per run from the
context (so each assistant can pick its own), and is built only when a run needs it, so the
server starts without an API key; ``create_agent`` binds one model when the graph is built.
"""

import logging
from datetime import UTC, datetime
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import ToolException
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.runtime import Runtime
from langgraph.types import Send

from agent import scheduling, turn_limits
from agent.context import Context, context_or_default
from agent.prompts import TOOL_LIMIT_NOTE
from agent.recall import latest_user_text, recall
from agent.state import InputState, State
from agent.summarization import fit_history
from agent.tools import TOOLS
from memory.identity import resolve_user_id
from memory.records import MESSAGE_TIME_FIELD, message_time
from memory_graph.models import load_chat_model

logger = logging.getLogger(__name__)


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
    rounds = turn_limits.tool_rounds(state["messages"])
    at_limit = rounds >= context.max_tool_rounds
    closing: list[BaseMessage] = [HumanMessage(TOOL_LIMIT_NOTE.format(rounds=rounds))] if at_limit else []
    model = turn_limits.with_tools(chat_model, context.model, allow_calls=not at_limit)
    token_ratio = state.get("token_ratio", 1.0)

    for attempt in range(turn_limits.MAX_OVERFLOW_RETRIES + 1):
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
            if attempt == turn_limits.MAX_OVERFLOW_RETRIES or not turn_limits.CONTEXT_OVERFLOW.search(str(error)):
                raise
            token_ratio = max(token_ratio, 1.0) * turn_limits.OVERFLOW_RATIO_STEP
            logger.warning("Prompt over the model context (%s); refitting for ratio %.2f.", error, token_ratio)

    if at_limit:
        response = turn_limits.without_tool_calls(response)
    update: dict[str, Any] = {"messages": [response]}
    if history.summary is not None:
        update["summary"] = history.summary
    measured = turn_limits.measured_token_ratio(response, prompt, context.max_prompt_tokens)
    learned = max(state.get("token_ratio", 1.0), measured if measured is not None else token_ratio)
    if learned != state.get("token_ratio", 1.0):
        update["token_ratio"] = learned
    return update


def route_model_output(state: State) -> Literal["skip_repeated_calls", "schedule_memory"]:
    """Run the tools the model called, or end the turn."""
    last = state["messages"][-1]
    if not isinstance(last, AIMessage):
        raise ValueError(f"Expected the model's AIMessage last, got {type(last).__name__}.")
    return "skip_repeated_calls" if last.tool_calls else "schedule_memory"


def skip_repeated_calls(state: State) -> dict[str, Any]:
    """Answer each tool call that repeats one made earlier in the turn, instead of running it again."""
    answers = turn_limits.repeated_call_answers(state["messages"])
    return {"messages": answers} if answers else {}


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
