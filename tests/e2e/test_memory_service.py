"""The memory service end to end: agent and memory_graph on `langgraph dev`, driven by the SDK."""

import asyncio
import uuid

import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError

from agent.scheduling import memory_thread_id
from tests.e2e.conftest import agent_prompts, chat, extraction_requests, settled_memory_runs
from tests.support.dev_server import MEMORY_THREAD_SECRET
from tests.support.fake_openai import FakeOpenAI


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def test_a_memory_saved_on_the_hot_path_is_recalled_in_another_thread(
    client: LangGraphClient, fake_openai: FakeOpenAI
) -> None:
    user = new_user()
    context = {"user_id": user, "background_memory": False}
    thread_a = (await client.threads.create())["thread_id"]
    values = await chat(client, thread_a, "Please remember that I prefer window seats", context)
    kinds = [m["type"] for m in values["messages"]]
    assert kinds == ["human", "ai", "tool", "ai"]
    assert values["messages"][2]["content"].startswith("created memory")

    stored = await client.store.search_items(("memories", user))
    # Stored about the user, in the third person, whatever person the model wrote.
    assert [item["value"]["content"] for item in stored["items"]] == ["Please remember that User prefers window seats"]

    thread_b = (await client.threads.create())["thread_id"]
    await chat(client, thread_b, "Which seat should I book? (seat question)", context)
    prompt = agent_prompts(fake_openai, "seat question")[-1]
    assert "User prefers window seats" in prompt
    assert "data about the user" in prompt


async def test_a_burst_of_turns_yields_one_memory_run_after_the_chat(
    client: LangGraphClient, fake_openai: FakeOpenAI
) -> None:
    user = new_user()
    context = {"user_id": user, "memory_delay_seconds": 3}
    thread = (await client.threads.create())["thread_id"]
    for text in (f"I run every day, {user}", "I'm training for a marathon", "It is in April"):
        await chat(client, thread, text, context)
    # Every chat turn has returned, and no memory work has started: the turn never waits for it.
    assert extraction_requests(fake_openai, user) == []

    runs = await settled_memory_runs(client, user, thread)
    assert [run["status"] for run in runs] == ["success"]
    assert len(extraction_requests(fake_openai, user)) == 1
    stored = await client.store.search_items(("memories", user), query="marathon")
    assert [item["value"]["content"] for item in stored["items"]] == ["User is training for a marathon"]

    # The next run reads only what is new, plus a little context.
    await chat(client, thread, f"Also I swim, {user} marathon", context)
    await asyncio.sleep(1)
    await settled_memory_runs(client, user, thread)
    followup = extraction_requests(fake_openai, user)[-1]
    text = "\n".join(str(m["content"]) for m in followup["messages"])
    assert "I run every day" not in text and "Also I swim" in text


async def test_another_user_sees_none_of_it(client: LangGraphClient, fake_openai: FakeOpenAI) -> None:
    owner, other = new_user(), new_user()
    await chat(
        client,
        (await client.threads.create())["thread_id"],
        "remember my locker code is 4417",
        {"user_id": owner, "background_memory": False},
    )
    await chat(
        client,
        (await client.threads.create())["thread_id"],
        "What is my locker code? (other user)",
        {"user_id": other, "background_memory": False},
    )
    prompt = agent_prompts(fake_openai, "(other user)")[-1]
    assert "4417" not in prompt
    assert (await client.store.search_items(("memories", other)))["items"] == []


async def test_an_assistant_created_through_the_sdk_applies_its_settings(
    client: LangGraphClient, fake_openai: FakeOpenAI
) -> None:
    user = new_user()
    thread = (await client.threads.create())["thread_id"]
    await chat(client, thread, "remember I am allergic to peanuts", {"user_id": user, "background_memory": False})
    pirate = await client.assistants.create(
        graph_id="agent",
        context={"system_prompt": "You are a pirate.", "recall_limit": 0, "background_memory": False},
    )
    other_thread = (await client.threads.create())["thread_id"]
    await chat(client, other_thread, "peanuts? (pirate)", {"user_id": user}, assistant=pirate["assistant_id"])
    prompt = agent_prompts(fake_openai, "(pirate)")[-1]
    assert prompt.startswith("You are a pirate.")
    assert "allergic" not in prompt
    with pytest.raises(NotFoundError):
        await client.runs.list(memory_thread_id(user, other_thread, MEMORY_THREAD_SECRET))


async def test_a_streamed_turn_answers(client: LangGraphClient, fake_openai: FakeOpenAI) -> None:
    thread = (await client.threads.create())["thread_id"]
    chunks = []
    async for part in client.runs.stream(
        thread,
        "agent",
        input={"messages": [{"role": "user", "content": "hello (streamed)"}]},
        context={"user_id": new_user(), "background_memory": False},
        stream_mode="messages-tuple",
    ):
        if part.event == "messages":
            chunks.append(part.data[0].get("content", ""))
    assert "".join(chunks) == "OK"
    assert any(r["stream"] for r in fake_openai.requests() if "manage_memory" in r["tools"])
