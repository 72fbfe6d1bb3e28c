"""A chat turn always ends with a reply: tool rounds are bounded and prompts fit as the model counts."""

import math
import uuid
from collections.abc import Sequence
from itertools import count
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from agent.graph import builder
from agent.tools import TOOLS
from memory.records import memory_namespace, memory_text
from tests.conftest import Script
from tests.support.fakes import tool_call
from tests.test_summarization import FILLER, assert_tool_calls_paired

NS = memory_namespace("ada")


def estimated_tokens(messages: Sequence[BaseMessage]) -> int:
    """The request's tokens as langchain estimates them (4 characters a token), tool schemas included."""
    return count_tokens_approximately(messages, tools=list(TOOLS))


NO_BACKGROUND = {"user_id": "ada", "background_memory": False}
RUNAWAY_STEPS = 100
"""Graph steps after which a turn is taken for a runaway (a bounded one takes about 3 a tool round)."""


class Chat:
    """One thread of the agent, compiled with a checkpointer and the test's store."""

    def __init__(self, store: InMemoryStore, **context: Any) -> None:
        self.graph = builder.compile(checkpointer=InMemorySaver(), store=store)
        # LangGraph's default limit is about 10,000 steps: a runaway turn would take minutes to fail.
        self.config = {"configurable": {"thread_id": str(uuid.uuid4())}, "recursion_limit": RUNAWAY_STEPS}
        self.context = {**NO_BACKGROUND, **context}

    async def say(self, *messages: tuple[str, str]) -> list[Any]:
        """Send the user's message(s); the thread's messages after the turn."""
        result = await self.graph.ainvoke({"messages": list(messages)}, self.config, context=self.context)
        thread: list[Any] = result["messages"]
        return thread


def reply_of(thread: list[Any]) -> AIMessage:
    """The turn's reply: an AIMessage that calls no tool."""
    reply = thread[-1]
    assert isinstance(reply, AIMessage) and not reply.tool_calls and reply.text.strip()
    return reply


def turn_of(thread: list[Any]) -> list[Any]:
    """The messages after the user's latest message."""
    start = max(i for i, message in enumerate(thread) if isinstance(message, HumanMessage))
    return thread[start + 1 :]


async def test_a_model_repeating_one_update_forever_gets_a_reply_and_the_update_runs_once(
    script: Script, store: InMemoryStore
) -> None:
    key = str(uuid.uuid4())
    await store.aput(NS, key, {"content": "Lives in Lisbon"})
    script.agent = lambda messages: tool_call("manage_memory", action="update", id=key, content="Lives in Porto")

    thread = await Chat(store).say(("user", "I moved to Porto last week."))

    reply_of(thread)
    assert len(script.calls("agent")) <= 6 + 1
    updates = [m for m in turn_of(thread) if isinstance(m, ToolMessage) and m.text.startswith("updated memory")]
    assert len(updates) == 1
    item = await store.aget(NS, key)
    assert item is not None and memory_text(item.value) == "Lives in Porto"
    assert_tool_calls_paired(thread)


async def test_a_model_saving_new_memories_forever_is_stopped_at_max_tool_rounds(
    script: Script, store: InMemoryStore
) -> None:
    invented = count(1)
    user_text = "Hi, I am Ada."

    def inventive(messages: Sequence[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, HumanMessage) and last.text != user_text:  # the agent's note: answer now
            return AIMessage(content="Nice to meet you, Ada.")
        return tool_call("manage_memory", action="create", content=f"Invented fact number {next(invented)}")

    script.agent = inventive
    chat = Chat(store, max_tool_rounds=3)
    thread = await chat.say(("user", user_text))

    assert reply_of(thread).text == "Nice to meet you, Ada."
    assert len(script.calls("agent")) == 3 + 1
    assert len(await store.asearch(NS, limit=100)) == 3

    # The limit is per turn: the next turn may use the tools again.
    script.agent = lambda messages: (
        AIMessage(content="Saved.") if isinstance(messages[-1], ToolMessage) else tool_call("search_memory", query="x")
    )
    thread = await chat.say(("user", "What do you know about me?"))
    assert reply_of(thread).text == "Saved."
    assert [type(m).__name__ for m in turn_of(thread)] == ["AIMessage", "ToolMessage", "AIMessage"]


async def test_a_repeated_call_in_a_mixed_batch_is_not_run_again(script: Script, store: InMemoryStore) -> None:
    tea = tool_call("manage_memory", action="create", content="Likes tea").tool_calls[0]
    cello = tool_call("manage_memory", action="create", content="Plays the cello").tool_calls[0]
    rounds = iter(
        [
            AIMessage(content="", tool_calls=[tea]),
            # The same call again, a new one, and the new one twice in the same batch.
            AIMessage(content="", tool_calls=[{**tea, "id": "again"}, cello, {**cello, "id": "twice"}]),
            AIMessage(content="Noted both."),
        ]
    )
    script.agent = lambda messages: next(rounds)

    thread = await Chat(store).say(("user", "I like tea and play the cello."))

    assert reply_of(thread).text == "Noted both."
    saved = sorted(memory_text(item.value) for item in await store.asearch(NS, limit=100))
    assert saved == ["Likes tea", "Plays the cello"]
    assert_tool_calls_paired(thread)


async def test_prompts_fit_the_budget_as_the_model_counts_them(script: Script, store: InMemoryStore) -> None:
    """A model whose tokenizer counts 1.3x the estimate: once it reports usage, prompts shrink to fit."""
    budget = 1500

    def real_tokens(messages: Sequence[BaseMessage]) -> int:
        return math.ceil(1.3 * estimated_tokens(messages))

    def answer(messages: Sequence[BaseMessage]) -> AIMessage:
        real = real_tokens(messages)
        usage = {"input_tokens": real, "output_tokens": 20, "total_tokens": real + 20}
        return AIMessage(content=f"Noted, {FILLER}", usage_metadata=usage)

    script.agent = answer
    chat = Chat(store, max_prompt_tokens=budget, summary_max_tokens=200)
    for turn in range(40):
        reply_of(await chat.say(("user", f"Turn {turn}: {FILLER}")))

    prompts = script.calls("agent")
    assert script.calls("summarize"), "the thread outgrew the budget"
    assert all(real_tokens(prompt) <= budget for prompt in prompts)


async def test_a_thread_whose_prompt_overflowed_recovers(script: Script, store: InMemoryStore) -> None:
    """A model with a 2,000-token context that counts 1.6x the estimate and reports no usage."""
    context_size = 2000

    def answer(messages: Sequence[BaseMessage]) -> AIMessage:
        real = math.ceil(1.6 * estimated_tokens(messages))
        if real > context_size:
            raise ValueError(f"request ({real} tokens) exceeds the available context size ({context_size} tokens)")
        return AIMessage(content="Here is my answer.")

    script.agent = answer
    chat = Chat(store, max_prompt_tokens=context_size, summary_max_tokens=200)
    earlier = [(role, f"Turn {n}: {FILLER}") for n in range(20) for role in ("user", "assistant")]
    assert reply_of(await chat.say(*earlier, ("user", "And now?"))).text == "Here is my answer."
    assert reply_of(await chat.say(("user", "And then?"))).text == "Here is my answer."
