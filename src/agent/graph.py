"""The ``agent`` graph: a chat agent that remembers.

    START -> recall -> call_model -> tools -> call_model ... -> schedule_memory -> END

A hand-written StateGraph rather than ``create_agent``: the model is chosen per run from the
context (so each assistant can pick its own), and is built only when a run needs it, so the
server starts without an API key; ``create_agent`` binds one model when the graph is built.
"""

from datetime import UTC, datetime
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langchain_core.tools import ToolException
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.runtime import Runtime

from agent import scheduling
from agent.context import Context, context_or_default
from agent.recall import latest_user_text, recall
from agent.state import InputState, State
from agent.summarization import fit_history
from agent.tools import TOOLS
from memory.identity import resolve_user_id
from memory.records import MESSAGE_TIME_FIELD, message_time
from memory_graph.models import load_chat_model


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
    """Answer, or call a memory tool, shown a history summarized to fit ``max_prompt_tokens``."""
    context = context_or_default(runtime.context)
    chat_model = load_chat_model(context.model)
    instructions = state.get("instructions") or context.system_prompt
    system = SystemMessage(instructions + state.get("recalled", ""))
    history = await fit_history(
        state["messages"],
        state.get("summary"),
        system=system,
        model=chat_model,
        max_prompt_tokens=context.max_prompt_tokens,
        summary_max_tokens=context.summary_max_tokens,
    )
    response = await chat_model.bind_tools(TOOLS).ainvoke([system, *history.messages])
    if history.summary is None:
        return {"messages": [response]}
    return {"messages": [response], "summary": history.summary}


def route_model_output(state: State) -> Literal["tools", "schedule_memory"]:
    """Run the tools the model called, or end the turn."""
    last = state["messages"][-1]
    if not isinstance(last, AIMessage):
        raise ValueError(f"Expected the model's AIMessage last, got {type(last).__name__}.")
    return "tools" if last.tool_calls else "schedule_memory"


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
builder.add_node("tools", ToolNode(TOOLS, handle_tool_errors=ToolException))
builder.add_node(schedule_memory)
builder.add_edge(START, "recall")
builder.add_edge("recall", "call_model")
builder.add_conditional_edges("call_model", route_model_output)
builder.add_edge("tools", "call_model")
builder.add_edge("schedule_memory", END)

graph = builder.compile()
graph.name = "agent"
