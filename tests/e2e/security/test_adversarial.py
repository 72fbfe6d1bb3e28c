"""User B tries to read or change user A's data through every surface; every attempt must fail.

User A (alice) chats, so she has a chat thread, runs, hot-path and background memories, a
memory thread with runs, a pending memory run and a profile, all marked with ``SECRET``.
User B (bob) holds a valid token of his own and knows every id of A's (as if guessed or
leaked). Each attempt is recorded in a ledger; an attempt *leaks* when B's request that had
to be refused succeeded, when ``SECRET`` appears in what B received or in a prompt of B's
runs, or when A's data changed. The suite asserts zero leaks and reports the count.
"""

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest

from agent.scheduling import memory_thread_id
from tests.e2e.security.conftest import RULES, SECRET, SUMMARIES, http_client, token
from tests.support.dev_server import MEMORY_THREAD_SECRET, DevServer
from tests.support.fake_openai import FakeOpenAI, Rule, ToolCallSpec, flatten_content

A, B = "alice", "bob"


def refused(response: httpx.Response) -> bool:
    """A 4xx (or 501), or a stream whose only event is the refusal (streams answer 200 before checking)."""
    if not response.is_success:
        # 501: the operation does not exist on this deployment (e.g. thread storage with a custom checkpointer).
        return 400 <= response.status_code < 500 or response.status_code == 501
    events = [line for line in response.text.splitlines() if line.startswith("event:")]
    return (
        response.headers.get("content-type", "").startswith("text/event-stream")
        and events == ["event: error"]
        and "404" in response.text
    )


@dataclass
class Attempt:
    surface: str
    description: str
    status: int
    problem: str | None


@dataclass
class Ledger:
    """Every attempt of B's, and whether it leaked."""

    attempts: list[Attempt] = field(default_factory=list)

    def record(
        self, surface: str, description: str, response: httpx.Response, expect: Literal["refused", "own"]
    ) -> httpx.Response:
        """``refused``: B must get a 4xx. ``own``: B may get 2xx, with nothing of A's in it."""
        problem = None
        if response.status_code >= 500 and response.status_code != 501:
            problem = f"server error {response.status_code}: {response.text[:300]}"
        elif expect == "refused" and not refused(response):
            problem = f"succeeded with {response.status_code}: {response.text[:300]}"
        elif SECRET in response.text:
            problem = f"A's data in the response: {response.text[:300]}"
        self.attempts.append(Attempt(surface, description, response.status_code, problem))
        return response

    def check(self, surface: str, description: str, problem: str | None) -> None:
        """An attempt judged by the caller (what a model saw, what changed afterwards)."""
        self.attempts.append(Attempt(surface, description, 0, problem))

    @property
    def leaks(self) -> list[Attempt]:
        return [attempt for attempt in self.attempts if attempt.problem]


@dataclass
class Victim:
    """A's ids, and a snapshot of her data to compare against after the attacks."""

    chat_thread: str
    chat_run: str
    memory_thread: str
    memory_run: str
    pending_thread: str
    memory_id: str
    snapshot: dict[str, Any]


async def chat(client: httpx.AsyncClient, thread_id: str, text: str, **payload: Any) -> httpx.Response:
    body = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": text}]}, **payload}
    return await client.post(f"/threads/{thread_id}/runs/wait", json=body)


async def settle(client: httpx.AsyncClient, thread_id: str) -> list[dict[str, Any]]:
    """The thread's runs once none is running any more (pending runs with a long delay stay pending)."""
    for _ in range(120):
        runs: list[dict[str, Any]] = (await client.get(f"/threads/{thread_id}/runs")).raise_for_status().json()
        if (
            runs
            and not any(run["status"] == "running" for run in runs)
            and any(run["status"] != "pending" for run in runs)
        ):
            return runs
        await asyncio.sleep(0.5)
    raise AssertionError(f"runs on {thread_id} did not settle: {runs}")


async def snapshot(alice: httpx.AsyncClient, victim_ids: dict[str, str]) -> dict[str, Any]:
    """Everything of A's an attack could change, as A sees it."""
    memories = (await alice.get("/me/memories", params={"limit": 100})).raise_for_status().json()["items"]
    profile = (await alice.get("/me/profile")).raise_for_status().json()["profile"]
    state = (await alice.get(f"/threads/{victim_ids['chat_thread']}/state")).raise_for_status().json()
    thread = (await alice.get(f"/threads/{victim_ids['chat_thread']}")).raise_for_status().json()
    runs = {}
    for name in ("chat_thread", "memory_thread", "pending_thread"):
        listed = (await alice.get(f"/threads/{victim_ids[name]}/runs")).raise_for_status().json()
        runs[name] = sorted((run["run_id"], run["status"]) for run in listed)
    return {
        "memories": sorted((m["id"], m["content"], m["updated_at"]) for m in memories),
        "profile": profile,
        "messages": [(m["type"], flatten_content(m["content"])) for m in state["values"]["messages"]],
        "thread_metadata": thread["metadata"],
        "runs": runs,
    }


async def prepare_victim(server: DevServer) -> Victim:
    async with http_client(server, token(A)) as alice:
        chat_thread = (await alice.post("/threads", json={})).raise_for_status().json()["thread_id"]
        reply = await chat(
            alice, chat_thread, f"Please remember my locker code is {SECRET}", context={"memory_delay_seconds": 1}
        )
        assert reply.status_code == 200 and "__error__" not in reply.json(), reply.text
        memory_thread = memory_thread_id(A, chat_thread, MEMORY_THREAD_SECRET)
        memory_runs = await settle(alice, memory_thread)
        assert [run["status"] for run in memory_runs] == ["success"], memory_runs
        (await alice.patch("/me/profile", json={"name": f"Alice {SECRET}"})).raise_for_status()

        pending_thread = (await alice.post("/threads", json={})).raise_for_status().json()["thread_id"]
        reply = await chat(
            alice, pending_thread, f"More about my locker {SECRET}", context={"memory_delay_seconds": 3600}
        )
        assert reply.status_code == 200, reply.text
        pending = (await alice.get(f"/threads/{memory_thread_id(A, pending_thread, MEMORY_THREAD_SECRET)}/runs")).json()
        assert [run["status"] for run in pending] == ["pending"], pending

        memories = (await alice.get("/me/memories")).raise_for_status().json()["items"]
        assert len(memories) == 2 and all(SECRET in m["content"] for m in memories), memories
        ids = {
            "chat_thread": chat_thread,
            "memory_thread": memory_thread,
            "pending_thread": memory_thread_id(A, pending_thread, MEMORY_THREAD_SECRET),
        }
        chat_runs = (await alice.get(f"/threads/{chat_thread}/runs")).json()
        return Victim(
            chat_thread=chat_thread,
            chat_run=chat_runs[0]["run_id"],
            memory_thread=memory_thread,
            memory_run=memory_runs[0]["run_id"],
            pending_thread=ids["pending_thread"],
            memory_id=memories[0]["id"],
            snapshot=await snapshot(alice, ids),
        )


@pytest.fixture(scope="module")
def victim(secure_server: DevServer) -> Victim:
    return asyncio.run(prepare_victim(secure_server))


@pytest.fixture(scope="module")
def ledger() -> Iterator[Ledger]:
    book = Ledger()
    yield book
    surfaces = Counter(attempt.surface for attempt in book.attempts)
    line = (
        f"adversarial suite: {len(book.attempts)} attempts by user B on user A's data "
        f"({', '.join(f'{surface} {count}' for surface, count in surfaces.items())}), {len(book.leaks)} leaks"
    )
    SUMMARIES.append(line)
    assert not book.leaks, line


async def assert_victim_untouched(server: DevServer, victim: Victim, ledger: Ledger, surface: str) -> None:
    ids = {
        "chat_thread": victim.chat_thread,
        "memory_thread": victim.memory_thread,
        "pending_thread": victim.pending_thread,
    }
    async with http_client(server, token(A)) as alice:
        now = await snapshot(alice, ids)
    changed = [key for key in victim.snapshot if victim.snapshot[key] != now[key]]
    ledger.check(surface, "A's memories, profile, thread, runs unchanged", f"changed: {changed}" if changed else None)


def model_saw(fake: FakeOpenAI, marker: str) -> str | None:
    """A problem if a model call of the conversation carrying ``marker`` contained A's data."""
    seen = [json.dumps(r["messages"]) for r in fake.requests() if marker in json.dumps(r["messages"])]
    if not seen:
        return f"no model call carried {marker!r}"
    return f"a prompt of B's run contained A's data ({marker})" if any(SECRET in text for text in seen) else None


def own(assertion: bool, what: str) -> str | None:
    return None if assertion else what


async def test_threads_and_runs_of_another_user_are_invisible_and_untouchable(
    secure_server: DevServer, victim: Victim, ledger: Ledger
) -> None:
    ta, ra, ma, mr = victim.chat_thread, victim.chat_run, victim.memory_thread, victim.memory_run
    surface = "threads/runs API"
    async with http_client(secure_server, token(B)) as bob:
        must_refuse: list[tuple[str, str, dict[str, Any] | None, str]] = [
            ("GET", f"/threads/{ta}", None, "read A's thread"),
            ("GET", f"/threads/{ta}/state", None, "read A's thread state"),
            ("GET", f"/threads/{ta}/history", None, "read A's history (GET)"),
            ("POST", f"/threads/{ta}/history", {"limit": 10}, "read A's history (POST)"),
            ("GET", f"/threads/{ta}/storage", None, "read A's thread storage"),
            ("POST", f"/threads/{ta}/state", {"values": {"messages": []}}, "overwrite A's thread state"),
            ("PATCH", f"/threads/{ta}", {"metadata": {"owner": B}}, "take over A's thread"),
            ("POST", f"/threads/{ta}/copy", None, "copy A's thread"),
            ("DELETE", f"/threads/{ta}", None, "delete A's thread"),
            ("POST", "/threads/prune", {"thread_ids": [ta]}, "prune A's thread"),
            ("POST", "/threads", {"thread_id": ta, "if_exists": "do_nothing"}, "re-create A's thread id"),
            ("GET", f"/threads/{ma}", None, "read A's memory thread (id derived from user and chat)"),
            ("GET", f"/threads/{ta}/runs", None, "list A's runs"),
            ("GET", f"/threads/{ta}/runs/{ra}", None, "read A's run"),
            ("GET", f"/threads/{ta}/runs/{ra}/join", None, "join A's run"),
            ("GET", f"/threads/{ta}/runs/{ra}/stream", None, "stream A's run"),
            ("GET", f"/threads/{ta}/stream", None, "stream A's thread"),
            ("POST", f"/threads/{ta}/runs/{ra}/cancel", None, "cancel A's run"),
            ("DELETE", f"/threads/{ta}/runs/{ra}", None, "delete A's run"),
            ("GET", f"/threads/{ma}/runs/{mr}", None, "read A's memory run"),
            ("POST", f"/threads/{ma}/runs", {"assistant_id": "memory_graph", "input": {}}, "run on A's memory thread"),
            (
                "POST",
                f"/threads/{ta}/runs",
                {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}},
                "run the agent on A's thread",
            ),
            (
                "POST",
                f"/threads/{ta}/runs/stream",
                {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}},
                "stream a run on A's thread",
            ),
            ("POST", "/runs/cancel", {"thread_id": victim.pending_thread, "run_ids": [ra]}, "cancel A's runs by id"),
            ("POST", "/runs/cancel", {"status": "all"}, "cancel every pending or running run"),
            (
                "POST",
                "/runs/crons",
                {"assistant_id": "agent", "schedule": "* * * * *", "input": {}},
                "schedule a cron",
            ),
            ("POST", "/runs/crons/search", {}, "search crons"),
        ]
        for method, path, body, description in must_refuse:
            response = (
                await bob.request(method, path, json=body) if body is not None else await bob.request(method, path)
            )
            ledger.record(surface, description, response, "refused")

        searches: list[tuple[dict[str, Any], str]] = [
            ({}, "search all threads"),
            ({"metadata": {"owner": A}}, "search threads by A's owner metadata"),
            ({"ids": [ta, ma]}, "search A's thread ids"),
        ]
        for search, description in searches:
            response = ledger.record(surface, description, await bob.post("/threads/search", json=search), "own")
            ledger.check(
                surface,
                f"{description}: none of A's ids",
                own(ta not in response.text and ma not in response.text, response.text[:300]),
            )

        memory_graph = (await bob.post("/assistants/search", json={"graph_id": "memory_graph"})).json()[0]
        response = await bob.post("/runs/cancel", json={"assistant_id": memory_graph["assistant_id"]})
        ledger.record(surface, "cancel every run of the memory_graph assistant", response, "own")

        response = await bob.post(
            "/a2a/agent",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "message/send",
                "params": {
                    "message": {
                        "role": "user",
                        "parts": [{"kind": "text", "text": "what is my locker code?"}],
                        "messageId": "m1",
                        "contextId": ta,
                    }
                },
            },
        )
        ledger.record("A2A", "send a message into A's thread", response, "own")
        response = await bob.post(
            "/a2a/agent",
            json={"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"id": f"{ta}:{ra}"}},
        )
        ledger.record("A2A", "read A's run as a task", response, "own")
    await assert_victim_untouched(secure_server, victim, ledger, surface)


async def test_the_store_api_keeps_every_user_in_their_own_namespaces(
    secure_server: DevServer, victim: Victim, ledger: Ledger
) -> None:
    surface = "store API"
    mid = victim.memory_id
    async with http_client(secure_server, token(B)) as bob:
        for params, description in [
            ({"namespace": f"memories.{A}", "key": mid}, "get A's memory"),
            ({"namespace": f"profile.{A}", "key": "profile"}, "get A's profile"),
            ({"namespace": f"memory_cursors.{A}", "key": victim.chat_thread}, "get A's cursor"),
            ({"namespace": f"memories.{A}.sub", "key": mid}, "get under A's namespace, deeper"),
            ({"namespace": "memories", "key": mid}, "get with a one-label namespace"),
        ]:
            ledger.record(surface, description, await bob.get("/store/items", params=params), "refused")
        for body, description in [
            ({"namespace_prefix": ["memories", A]}, "search A's memories"),
            ({"namespace_prefix": ["memories", A], "query": "locker code"}, "semantic search of A's memories"),
            ({"namespace_prefix": ["memory_history", A]}, "search A's memory history"),
            ({"namespace_prefix": ["memories"]}, "search everyone's memories"),
            ({"namespace_prefix": []}, "search the whole store"),
            ({"namespace_prefix": ["*", A]}, "search A's namespaces with a wildcard"),
            ({"namespace_prefix": [A]}, "search with A's id first"),
        ]:
            ledger.record(surface, description, await bob.post("/store/items/search", json=body), "refused")
        own_search = {"namespace_prefix": ["memories", B], "filter": {"content": f"User's locker code is {SECRET}"}}
        response = await bob.post("/store/items/search", json=own_search)
        ledger.record(surface, "search own namespace with a filter on A's text", response, "own")
        for body, description in [
            ({}, "list every namespace"),
            ({"prefix": ["memories"]}, "list everyone's memory namespaces"),
            ({"prefix": ["profile"]}, "list everyone's profiles"),
            ({"suffix": [A]}, "list namespaces ending with A's id"),
            ({"prefix": ["memories", A]}, "list A's namespaces"),
            ({"prefix": ["*", A]}, "list A's namespaces with a wildcard"),
        ]:
            ledger.record(surface, description, await bob.post("/store/namespaces", json=body), "refused")
        for body, description in [
            ({"namespace": ["memories", A], "key": mid, "value": {"content": "hacked by bob"}}, "overwrite A's memory"),
            (
                {"namespace": ["memories", A], "key": "planted", "value": {"content": "planted by bob"}},
                "plant a memory",
            ),
            ({"namespace": ["profile", A], "key": "profile", "value": {"name": "bob"}}, "overwrite A's profile"),
            ({"namespace": ["memories", f"{B}.{A}"], "key": "k", "value": {"content": "x"}}, "dotted label"),
        ]:
            ledger.record(surface, description, await bob.put("/store/items", json=body), "refused")
        for body, description in [
            ({"namespace": ["memories", A], "key": mid}, "delete A's memory"),
            ({"namespace": ["profile", A], "key": "profile"}, "delete A's profile"),
        ]:
            ledger.record(surface, description, await bob.request("DELETE", "/store/items", json=body), "refused")
    await assert_victim_untouched(secure_server, victim, ledger, surface)


async def test_the_memory_routes_only_ever_show_the_callers_own_data(
    secure_server: DevServer, victim: Victim, ledger: Ledger
) -> None:
    surface = "memory routes"
    mid = victim.memory_id
    async with http_client(secure_server, token(B)) as bob:
        for method, path, body, description in [
            ("GET", f"/me/memories/{mid}", None, "read A's memory by id"),
            ("PATCH", f"/me/memories/{mid}", {"content": "hacked by bob"}, "edit A's memory by id"),
            ("DELETE", f"/me/memories/{mid}", None, "delete A's memory by id"),
            ("GET", "/me/memories/00000000-0000-4000-8000-000000000000", None, "read a guessed memory id"),
        ]:
            response = await bob.request(method, path, json=body) if body else await bob.request(method, path)
            ledger.record(surface, description, response, "refused")
        for path, params, description in [
            ("/me/memories", {}, "list memories"),
            ("/me/memories", {"query": "locker code"}, "search memories for A's topic"),
            ("/me/memories", {"user_id": A}, "list memories with user_id=alice"),
            ("/me/profile", {"user_id": A}, "read profile with user_id=alice"),
            ("/me/export", {"user_id": A}, "export with user_id=alice"),
        ]:
            ledger.record(surface, description, await bob.get(path, params=params), "own")
        response = await bob.get("/me/memories", headers={"X-User-Id": A, "X-Forwarded-User": A})
        ledger.record(surface, "list memories with identity headers", response, "own")
        ledger.record(surface, "delete all (own) memories", await bob.delete("/me/memories"), "own")
        ledger.record(surface, "delete (own) profile", await bob.delete("/me/profile"), "own")
    await assert_victim_untouched(secure_server, victim, ledger, surface)


async def test_a_run_cannot_be_made_to_act_for_another_user(
    secure_server: DevServer, victim: Victim, ledger: Ledger, security_fake: FakeOpenAI
) -> None:
    surface = "run identity"
    async with http_client(secure_server, token(B)) as bob:
        thread = (await bob.post("/threads", json={})).raise_for_status().json()["thread_id"]
        quiet = {"background_memory": False}
        for payload, description in [
            ({"context": {"user_id": A, **quiet}}, "user_id=alice in context"),
            ({"config": {"configurable": {"user_id": A, **quiet}}}, "user_id=alice in configurable"),
        ]:
            ledger.record(
                surface, description, await chat(bob, thread, "what is my locker code?", **payload), "refused"
            )
        memory_run = {"assistant_id": "memory_graph", "input": {"chat_thread_id": victim.chat_thread}}
        for path, payload, description in [
            ("/runs/wait", {**memory_run, "context": {"user_id": A}}, "memory_graph run for alice"),
            (
                "/runs",
                {"assistant_id": "agent", "input": {}, "context": {"user_id": A}},
                "background agent run for alice",
            ),
            (
                "/runs/batch",
                [{"assistant_id": "agent", "input": {}, "context": {"user_id": A}}],
                "batch of runs for alice",
            ),
        ]:
            ledger.record(surface, description, await bob.post(path, json=payload), "refused")

        # Allowed, but acting as bob: the run must not see alice's conversation or memories.
        response = await bob.post("/runs/wait", json=memory_run)
        ledger.record(surface, "memory_graph run over A's chat thread", response, "own")
        export = (await bob.get("/me/export")).json()
        ledger.check(
            surface,
            "no memory extracted from A's chat for B",
            own(SECRET not in json.dumps(export), "leaked into B's export"),
        )

        marker = "LANGGRAPH-AUTH-ATTACK"
        response = await chat(bob, thread, f"{marker} my locker code?", context={"langgraph_auth_user_id": A, **quiet})
        ledger.record(surface, "langgraph_auth_user_id=alice in context", response, "own")
        ledger.check(surface, "model prompt of that run", model_saw(security_fake, marker))

    async with http_client(secure_server, token("root", admin=True)) as admin:
        shared = (
            (await admin.post("/assistants", json={"graph_id": "agent", "context": {"user_id": A, **quiet}}))
            .raise_for_status()
            .json()["assistant_id"]
        )
    async with http_client(secure_server, token(B)) as bob:
        marker = "SHARED-ASSISTANT-ATTACK"
        response = await chat(bob, thread, f"{marker} my locker code?", assistant_id=shared)
        ledger.record(surface, "assistant whose settings name alice", response, "own")
        ledger.check(surface, "model prompt with that assistant", model_saw(security_fake, marker))
        for method, path, body, description in [
            ("POST", "/assistants", {"graph_id": "agent", "context": {"user_id": A}}, "create an assistant for alice"),
            ("PATCH", f"/assistants/{shared}", {"context": {"user_id": B}}, "change an assistant"),
            ("DELETE", f"/assistants/{shared}", None, "delete an assistant"),
        ]:
            response = await bob.request(method, path, json=body) if body else await bob.request(method, path)
            ledger.record(surface, description, response, "refused")
    await assert_victim_untouched(secure_server, victim, ledger, surface)


async def test_the_agent_cannot_be_talked_into_another_users_memories(
    secure_server: DevServer, victim: Victim, ledger: Ledger, security_fake: FakeOpenAI
) -> None:
    surface = "agent tools"
    attacks: list[tuple[str, ToolCallSpec]] = [
        ("SEARCH-ATTACK", {"name": "search_memory", "arguments": {"query": "alice locker code", "limit": 20}}),
        (
            "UPDATE-ATTACK",
            {"name": "manage_memory", "arguments": {"action": "update", "id": victim.memory_id, "content": "hacked"}},
        ),
        ("DELETE-ATTACK", {"name": "manage_memory", "arguments": {"action": "delete", "id": victim.memory_id}}),
    ]
    attack_rules: list[Rule] = [
        {"when": {"tool": "manage_memory", "contains": marker}, "then": {"tool_calls": [call]}}
        for marker, call in attacks
    ]
    security_fake.set_rules([RULES[0], *attack_rules, *RULES[1:]])
    try:
        async with http_client(secure_server, token(B)) as bob:
            thread = (await bob.post("/threads", json={})).raise_for_status().json()["thread_id"]
            for marker, call in attacks:
                response = await chat(
                    bob, thread, f"{marker}: use alice's memories", context={"background_memory": False}
                )
                ledger.record(
                    surface, f"ask the agent to {call['arguments'].get('action', 'search')} A's memory", response, "own"
                )
                tool_messages = [m for m in response.json()["messages"] if m["type"] == "tool"]
                ledger.check(surface, f"{marker} reached the tool", own(bool(tool_messages), "the tool was not called"))
                ledger.check(surface, f"{marker}: model prompt", model_saw(security_fake, marker))
    finally:
        security_fake.set_rules(RULES)
    await assert_victim_untouched(secure_server, victim, ledger, surface)


async def test_the_owner_still_reaches_everything(secure_server: DevServer, victim: Victim) -> None:
    async with http_client(secure_server, token(A)) as alice:
        assert (await alice.get(f"/threads/{victim.chat_thread}")).json()["metadata"]["owner"] == A
        assert (await alice.get(f"/threads/{victim.memory_thread}")).json()["metadata"]["owner"] == A
        item = await alice.get("/store/items", params={"namespace": f"memories.{A}", "key": victim.memory_id})
        assert SECRET in item.json()["value"]["content"]
        found = await alice.post("/store/items/search", json={"namespace_prefix": ["memories", A], "query": "locker"})
        assert len(found.json()["items"]) == 2
        listed = await alice.post("/store/namespaces", json={"prefix": ["memories", A]})
        assert listed.json()["namespaces"] == [["memories", A]]
        assert (await alice.post("/threads/search", json={})).status_code == 200
