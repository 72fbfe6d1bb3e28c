"""On `langgraph dev`: a runaway model stays bounded and never holds up the chat; memory threads stay ours.

One server with auth on and a scripted model that answers every extraction call with a
``PatchDoc`` lacking ``json_doc_id`` (the answer that made one run send 1,001 calls).
"""

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agent.scheduling import memory_thread_id
from tests.e2e.conftest import CONFIG
from tests.support.dev_server import MEMORY_THREAD_SECRET, DevServer
from tests.support.fake_openai import MEMORY_TOOLS, FakeOpenAI, Rule, misbehaving_rules
from tests.support.tokens import bearer, hs256, hs256_env

MAX_CALLS_PER_RUN = 30
GOOD_EXTRACTOR: list[Rule] = [
    {
        "when": {"tool": "Memory", "any_contains": "Lyon"},
        "then": {"tool_calls": [{"name": "Memory", "arguments": {"content": "User moved to Lyon"}}]},
    }
]


@pytest.fixture(scope="module")
def server(fake: FakeOpenAI) -> Iterator[DevServer]:
    with DevServer(CONFIG, env={**fake.env(), **hs256_env()}) as dev_server:
        yield dev_server


def as_user(server: DevServer, user_id: str, *, admin: bool = False) -> httpx.AsyncClient:
    token = hs256(user_id, roles=["admin"] if admin else [])
    return httpx.AsyncClient(base_url=server.url, headers=bearer(token), trust_env=False, timeout=120)


async def chat(client: httpx.AsyncClient, thread_id: str, text: str, context: dict[str, Any]) -> str:
    body = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": text}]}, "context": context}
    response = await client.post(f"/threads/{thread_id}/runs/wait", json=body)
    assert response.status_code == 200 and "__error__" not in response.json(), response.text
    return str(response.json()["messages"][-1]["content"])


async def new_thread(client: httpx.AsyncClient) -> str:
    return str((await client.post("/threads", json={})).raise_for_status().json()["thread_id"])


async def eventually(check: Any, what: str, timeout: float = 90) -> Any:
    """Poll ``check()`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.5)


def extraction_calls(fake: FakeOpenAI, marker: str) -> int:
    return sum(
        1
        for request in fake.requests()
        if set(request["tools"]) & set(MEMORY_TOOLS) and marker in str(request["messages"])
    )


async def test_a_runaway_model_is_bounded_set_aside_and_retried_on_request_while_the_chat_answers(
    server: DevServer, fake: FakeOpenAI
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    fake.set_rules(misbehaving_rules("patch_without_id"))
    async with as_user(server, "admin", admin=True) as admin:
        settings = {"retry_delay_seconds": 1, "batch_attempts": 2}
        created = await admin.post("/assistants", json={"graph_id": "memory_graph", "context": settings})
        memory_assistant = created.raise_for_status().json()["assistant_id"]
    context = {"memory_delay_seconds": 0, "memory_assistant_id": memory_assistant}
    async with as_user(server, user) as me:
        # Something to update, so that extraction takes trustcall's patching path.
        memory = {"namespace": ["memories", user], "key": str(uuid.uuid4()), "value": {"content": "User likes tea"}}
        (await me.put("/store/items", json=memory)).raise_for_status()
        (await me.patch("/me/profile", json={"name": "Ada"})).raise_for_status()

        chat_thread = await new_thread(me)
        assert await chat(me, chat_thread, f"I moved to Lyon ({marker})", context) == "OK"
        other_thread = await new_thread(me)
        answers = [await chat(me, other_thread, f"What is {n} + {n}?", {"background_memory": False}) for n in range(3)]
        assert answers == ["OK"] * 3

        async def set_aside() -> list[dict[str, Any]]:
            items = (await me.get("/me/memory-failures")).raise_for_status().json()["items"]
            return [item for item in items if item["status"] == "set_aside"]

        [failure] = await eventually(set_aside, "setting the batch aside")
        assert failure["chat_thread_id"] == chat_thread and failure["attempts"] == 2
        assert "json_doc_id" in failure["error"]

        memory_thread = memory_thread_id(user, chat_thread, MEMORY_THREAD_SECRET)
        runs = (await me.get(f"/threads/{memory_thread}/runs")).raise_for_status().json()
        assert len(runs) == 2 and all(run["status"] == "success" for run in runs)
        assert extraction_calls(fake, marker) <= MAX_CALLS_PER_RUN * len(runs)
        state = (await me.get(f"/threads/{memory_thread}/state")).raise_for_status().json()
        report = state["values"]["report"]
        assert 0 < report["model_calls"] <= MAX_CALLS_PER_RUN and report["prompt_tokens"] > 0
        # Every call reached the fake at its first try: one request each.
        assert report["requests"] == report["model_calls"]
        logged = f"{report['model_calls']} model calls ({report['requests']} requests)"
        assert f"Memory run for user {user}, conversation {chat_thread}: {logged}" in server.log_text()
        export = (await me.get("/me/export")).raise_for_status().json()
        assert [f["id"] for f in export["memory_failures"]] == [failure["id"]]

        fake.set_rules(GOOD_EXTRACTOR)
        retried = (await me.post(f"/me/memory-failures/{failure['id']}/retry")).raise_for_status().json()
        assert retried["status"] == "retry_requested"

        async def remembered() -> bool:
            items = (await me.get("/me/memories", params={"limit": 100})).raise_for_status().json()["items"]
            return "User moved to Lyon" in [item["content"] for item in items]

        await eventually(remembered, "processing the set-aside batch again")
        assert (await me.get("/me/memory-failures")).json()["items"] == []


async def test_a_memory_thread_occupied_by_another_user_does_not_fail_the_chat(
    server: DevServer, fake: FakeOpenAI
) -> None:
    alice, bob = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
    fake.set_rules(GOOD_EXTRACTOR)
    async with as_user(server, alice) as a, as_user(server, bob) as b:
        chat_thread = await new_thread(a)
        # Bob gets hold of the id (here: from the tests' secret) and creates the thread first.
        occupied = memory_thread_id(alice, chat_thread, MEMORY_THREAD_SECRET)
        (await b.post("/threads", json={"thread_id": occupied})).raise_for_status()

        assert await chat(a, chat_thread, "I moved to Lyon", {"memory_delay_seconds": 0}) == "OK"

        async def remembered() -> bool:
            items = (await a.get("/me/memories")).raise_for_status().json()["items"]
            return "User moved to Lyon" in [item["content"] for item in items]

        await eventually(remembered, "the memory run on a thread of Alice's own")
        assert (await b.get(f"/threads/{occupied}/runs")).json() == []
        fallback = memory_thread_id(alice, chat_thread, MEMORY_THREAD_SECRET, 1)
        assert [run["status"] for run in (await a.get(f"/threads/{fallback}/runs")).json()] == ["success"]
