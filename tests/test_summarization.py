"""Short-term memory: long threads are summarized in the prompt, never in the thread."""

import re
import uuid
from collections.abc import Sequence

import pytest
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore
from pydantic import ValidationError

from agent.context import Context
from agent.graph import builder
from agent.summarization import count_tokens as tokens
from agent.summarization import cut_index, fit_history, prompt_limit
from agent.tools import TOOLS
from tests.conftest import Script
from tests.support.fakes import tool_call

BUDGET = 1200
SUMMARY_TOKENS = 200
TURNS = 300
SUMMARY_HEADER = "Summary of the earlier part of this conversation"
FILLER = "and here is some more detail about my day so that every message has a realistic length."


def assert_tool_calls_paired(prompt: Sequence[BaseMessage]) -> None:
    """Every tool result follows its call, and every call is followed by all its results."""
    open_calls: set[str] = set()
    for message in prompt:
        if isinstance(message, ToolMessage):
            assert message.tool_call_id in open_calls, f"result without its call: {message.tool_call_id}"
            open_calls.remove(message.tool_call_id)
        else:
            assert not open_calls, f"call without its results: {open_calls}"
            if isinstance(message, AIMessage):
                open_calls = {call["id"] for call in message.tool_calls if call["id"]}
    assert not open_calls, f"call without its results: {open_calls}"


def parallel_search(*queries: str) -> AIMessage:
    """One AIMessage calling ``search_memory`` once per query, as parallel tool calling does."""
    calls = [tool_call("search_memory", query=query).tool_calls[0] for query in queries]
    return AIMessage(content="", tool_calls=calls)


def chat_agent(messages: Sequence[BaseMessage]) -> AIMessage:
    """Answers each turn; every 10th searches memory once, every 25th twice in parallel."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return AIMessage(content=f"Nothing relevant was saved, {FILLER}")
    match = re.match(r"Turn (\d+):", last.text)
    assert match, f"the latest user message must reach the model verbatim, got {last.text[:80]!r}"
    turn = int(match.group(1))
    if turn % 25 == 7:
        return parallel_search(f"day {turn}", f"week {turn}")
    if turn % 10 == 3:
        return tool_call("search_memory", query=f"day {turn}")
    return AIMessage(content=f"Noted turn {turn}, {FILLER}")


async def test_a_300_turn_thread_stays_under_the_budget(script: Script, store: InMemoryStore) -> None:
    summaries: list[str] = []

    def summarize(messages: Sequence[BaseMessage]) -> AIMessage:
        summaries.append(f"Running summary number {len(summaries) + 1}.")
        return AIMessage(content=summaries[-1])

    script.agent = chat_agent
    script.summarize = summarize
    graph = builder.compile(checkpointer=InMemorySaver(), store=store)
    config = {"configurable": {"thread_id": str(uuid.uuid4())}}
    context = {
        "user_id": "ada",
        "background_memory": False,
        "max_prompt_tokens": BUDGET,
        "summary_max_tokens": SUMMARY_TOKENS,
    }
    inputs = [f"Turn {turn}: I did thing number {turn} today, {FILLER}" for turn in range(1, TURNS + 1)]
    for text in inputs:
        await graph.ainvoke({"messages": [("user", text)]}, config, context=context)

    thread: list[AnyMessage] = (await graph.aget_state(config)).values["messages"]
    assert [m.text for m in thread if isinstance(m, HumanMessage)] == inputs
    assert sum(isinstance(m, ToolMessage) for m in thread) == 30 + 2 * 12

    position = {message.id: i for i, message in enumerate(thread)}
    prompts = script.calls("agent")
    summarized_prompts = 0
    for prompt in prompts:
        assert tokens(prompt, TOOLS) <= BUDGET, "the request, tool schemas included, fits"
        assert_tool_calls_paired(prompt)
        system, *shown = prompt
        history = thread[: position[shown[-1].id] + 1]
        # The scripted model reports no usage: estimates are scaled by 1, less the safety margin.
        if tokens([system, *history], TOOLS) <= prompt_limit(BUDGET, 1.0) and not summarized_prompts:
            assert shown == history
            continue
        summarized_prompts += 1
        assert shown[0].text.startswith(SUMMARY_HEADER)
        assert shown[1:] == history[len(history) - len(shown) + 1 :]
    assert summarized_prompts > len(prompts) * 3 // 4

    summary_prompts = script.calls("summarize")
    assert len(summary_prompts) == len(summaries)
    assert 10 < len(summaries) < TURNS // 5
    transcripts = [prompt[-1].text for prompt in summary_prompts]
    for turn in range(1, TURNS + 1):
        assert sum(f"Turn {turn}:" in transcript for transcript in transcripts) <= 1, "summarized twice"
    for previous, transcript in zip(summaries, transcripts[1:], strict=False):
        assert previous in transcript, "each summary extends the one before"
    assert summaries[-1] in prompts[-1][1].text


async def test_cut_never_separates_parallel_tool_results(script: Script) -> None:
    thread: list[AnyMessage] = []
    for turn in range(8):
        call = parallel_search(f"a{turn}", f"b{turn}")
        thread += [
            HumanMessage(f"Turn {turn}: {FILLER}", id=f"h{turn}"),
            call.model_copy(update={"id": f"c{turn}"}),
            *(
                ToolMessage(f"result {turn}-{n}: {FILLER}", tool_call_id=str(c["id"]), id=f"t{turn}-{n}")
                for n, c in enumerate(call.tool_calls)
            ),
            AIMessage(f"Answer {turn}: {FILLER}", id=f"a{turn}"),
        ]
    total = tokens(thread)
    for keep in range(0, total + 1, 7):
        cut = cut_index(thread, keep)
        assert_tool_calls_paired(thread[cut:])
        assert_tool_calls_paired(thread[:cut])
    system = SystemMessage("You are helpful.")
    for end in range(2, len(thread) + 1):
        history = thread[:end]
        if (isinstance(history[-1], AIMessage) and history[-1].tool_calls) or (
            end < len(thread) and isinstance(thread[end], ToolMessage)
        ):
            continue  # the model is never called between a tool call and its last result
        fitted = await fit_history(
            history, None, system=system, model=script.model, max_prompt_tokens=1000, summary_max_tokens=100
        )
        assert_tool_calls_paired([system, *fitted.messages])
        assert fitted.messages[-1] == history[-1]


async def test_an_overlong_summary_is_cut_to_its_share_of_the_budget(script: Script) -> None:
    script.summarize = lambda messages: AIMessage(content="word " * 5000)
    history: list[AnyMessage] = []
    for turn in range(40):
        history += [HumanMessage(f"Turn {turn}: {FILLER}", id=f"h{turn}"), AIMessage(f"Sure, {FILLER}", id=f"a{turn}")]
    system = SystemMessage("You are helpful.")
    fitted = await fit_history(
        history, None, system=system, model=script.model, max_prompt_tokens=1000, summary_max_tokens=100
    )
    assert fitted.summary is not None and fitted.summary["last_message_id"] in {m.id for m in history}
    assert tokens([fitted.messages[0]]) <= 100
    assert tokens([system, *fitted.messages]) <= 1000
    assert "Use at most 50 words." in script.calls("summarize")[0][-1].text


async def test_the_summary_is_not_streamed_as_the_agents_reply(script: Script, store: InMemoryStore) -> None:
    script.summarize = lambda messages: AIMessage(content="SECRET-SUMMARY")
    earlier = [(role, f"Turn {n}: {FILLER}") for n in range(30) for role in ("user", "assistant")]
    graph = builder.compile(checkpointer=InMemorySaver(), store=store)
    streamed = [
        chunk.text
        async for chunk, _ in graph.astream(
            {"messages": [*earlier, ("user", "Turn 30: and now?")]},
            {"configurable": {"thread_id": "t"}},
            context={"background_memory": False, "max_prompt_tokens": 1000, "summary_max_tokens": 100},
            stream_mode="messages",
        )
    ]
    assert script.calls("summarize") and "OK" in streamed
    assert not any("SECRET-SUMMARY" in text for text in streamed)


def test_the_summary_must_leave_room_for_messages() -> None:
    with pytest.raises(ValidationError, match="summary_max_tokens"):
        Context(max_prompt_tokens=1000, summary_max_tokens=400)
    with pytest.raises(ValidationError, match="max_prompt_tokens"):
        Context(max_prompt_tokens=100)
