"""User B tries to read or change user A's data through every surface; every attempt must fail.

User B (bob) holds a valid token of his own and knows every id of A's; the victim, the ledger
and what counts as a leak are described in ``tests.e2e.security.attacks``. Targeted attacks:
the requests a determined user would try, surface by surface (``test_every_route`` sweeps
every route mechanically). The suite asserts zero leaks and reports the count.
"""

import json
import uuid
from typing import Any

from tests.e2e.security.attacks import (
    BACKGROUND_FACT,
    SECRET,
    B,
    Ledger,
    Victim,
    assert_victim_untouched,
    chat,
    http_client,
    own,
    token,
)
from tests.e2e.security.conftest import RULES
from tests.support.dev_server import DevServer
from tests.support.fake_openai import FakeOpenAI, Rule, ToolCallSpec


def model_saw(fake: FakeOpenAI, marker: str) -> str | None:
    """A problem if a model call of the conversation carrying ``marker`` contained A's data."""
    seen = [json.dumps(r["messages"]) for r in fake.requests() if marker in json.dumps(r["messages"])]
    if not seen:
        return f"no model call carried {marker!r}"
    return f"a prompt of B's run contained A's data ({marker})" if any(SECRET in text for text in seen) else None


async def test_threads_and_runs_of_another_user_are_invisible_and_untouchable(
    secure_server: DevServer, victim: Victim, ledger: Ledger
) -> None:
    a = victim.user
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
            ({"metadata": {"owner": a}}, "search threads by A's owner metadata"),
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

    await assert_victim_untouched(secure_server, victim, ledger, surface)


async def test_the_store_api_keeps_every_user_in_their_own_namespaces(
    secure_server: DevServer, victim: Victim, ledger: Ledger
) -> None:
    a = victim.user
    surface = "store API"
    mid = victim.memory_id
    async with http_client(secure_server, token(B)) as bob:
        for params, description in [
            ({"namespace": f"memories.{a}", "key": mid}, "get A's memory"),
            ({"namespace": f"profile.{a}", "key": "profile"}, "get A's profile"),
            ({"namespace": f"memory_cursors.{a}", "key": victim.chat_thread}, "get A's cursor"),
            ({"namespace": f"memories.{a}.sub", "key": mid}, "get under A's namespace, deeper"),
            ({"namespace": "memories", "key": mid}, "get with a one-label namespace"),
        ]:
            ledger.record(surface, description, await bob.get("/store/items", params=params), "refused")
        for body, description in [
            ({"namespace_prefix": ["memories", a]}, "search A's memories"),
            ({"namespace_prefix": ["memories", a], "query": "locker code"}, "semantic search of A's memories"),
            ({"namespace_prefix": ["memory_history", a]}, "search A's memory history"),
            ({"namespace_prefix": ["memories"]}, "search everyone's memories"),
            ({"namespace_prefix": []}, "search the whole store"),
            ({"namespace_prefix": ["*", a]}, "search A's namespaces with a wildcard"),
            ({"namespace_prefix": [a]}, "search with A's id first"),
        ]:
            ledger.record(surface, description, await bob.post("/store/items/search", json=body), "refused")
        own_search = {"namespace_prefix": ["memories", B], "filter": {"content": BACKGROUND_FACT}}
        response = await bob.post("/store/items/search", json=own_search)
        ledger.record(surface, "search own namespace with a filter on A's text", response, "own")
        for body, description in [
            ({}, "list every namespace"),
            ({"prefix": ["memories"]}, "list everyone's memory namespaces"),
            ({"prefix": ["profile"]}, "list everyone's profiles"),
            ({"suffix": [a]}, "list namespaces ending with A's id"),
            ({"prefix": ["memories", a]}, "list A's namespaces"),
            ({"prefix": ["*", a]}, "list A's namespaces with a wildcard"),
        ]:
            ledger.record(surface, description, await bob.post("/store/namespaces", json=body), "refused")
        for body, description in [
            ({"namespace": ["memories", a], "key": mid, "value": {"content": "hacked by bob"}}, "overwrite A's memory"),
            (
                {"namespace": ["memories", a], "key": "planted", "value": {"content": "planted by bob"}},
                "plant a memory",
            ),
            ({"namespace": ["profile", a], "key": "profile", "value": {"name": "bob"}}, "overwrite A's profile"),
            ({"namespace": ["memories", f"{B}.{a}"], "key": "k", "value": {"content": "x"}}, "dotted label"),
        ]:
            ledger.record(surface, description, await bob.put("/store/items", json=body), "refused")
        for body, description in [
            ({"namespace": ["memories", a], "key": mid}, "delete A's memory"),
            ({"namespace": ["profile", a], "key": "profile"}, "delete A's profile"),
        ]:
            ledger.record(surface, description, await bob.request("DELETE", "/store/items", json=body), "refused")
    await assert_victim_untouched(secure_server, victim, ledger, surface)


async def test_the_memory_routes_only_ever_show_the_callers_own_data(
    secure_server: DevServer, victim: Victim, ledger: Ledger
) -> None:
    a = victim.user
    surface = "memory routes"
    mid = victim.memory_id
    async with http_client(secure_server, token(B)) as bob:
        for method, path, body, description in [
            ("GET", f"/me/memories/{mid}", None, "read A's memory by id"),
            ("PATCH", f"/me/memories/{mid}", {"content": "hacked by bob"}, "edit A's memory by id"),
            ("DELETE", f"/me/memories/{mid}", None, "delete A's memory by id"),
            ("GET", f"/me/memories/{mid}/history", None, "read A's memory history by id"),
            ("POST", f"/me/memories/{mid}/undo", None, "undo the latest change to A's memory by id"),
            ("GET", "/me/memories/00000000-0000-4000-8000-000000000000", None, "read a guessed memory id"),
        ]:
            response = await bob.request(method, path, json=body) if body else await bob.request(method, path)
            ledger.record(surface, description, response, "refused")
        for path, params, description in [
            ("/me/memories", {}, "list memories"),
            ("/me/memories", {"query": "locker code"}, "search memories for A's topic"),
            ("/me/memories", {"user_id": a}, "list memories with user_id=alice"),
            ("/me/profile", {"user_id": a}, "read profile with user_id=alice"),
            ("/me/export", {"user_id": a}, "export with user_id=alice"),
            ("/me/records", {}, "list other records"),
            ("/me/records", {"user_id": a}, "list other records with user_id=alice"),
            ("/me/deleted-memories", {}, "list deleted memories"),
            ("/me/deleted-memories", {"user_id": a}, "list deleted memories with user_id=alice"),
        ]:
            ledger.record(surface, description, await bob.get(path, params=params), "own")
        response = await bob.get("/me/memories", headers={"X-User-Id": a, "X-Forwarded-User": a})
        ledger.record(surface, "list memories with identity headers", response, "own")
        ledger.record(surface, "delete all (own) memories", await bob.delete("/me/memories"), "own")
        ledger.record(surface, "delete (own) profile", await bob.delete("/me/profile"), "own")
    await assert_victim_untouched(secure_server, victim, ledger, surface)


async def test_another_users_deleted_memory_can_be_neither_listed_nor_restored(
    secure_server: DevServer, victim: Victim, ledger: Ledger
) -> None:
    surface = "undo"
    async with http_client(secure_server, token(victim.user)) as alice, http_client(secure_server, token(B)) as bob:
        # A's memory of a new conversation, deleted by undoing its creation: in her history only.
        thread = (await alice.post("/threads", json={})).raise_for_status().json()["thread_id"]
        reply = await chat(
            alice, thread, f"Please remember my bike lock is {SECRET}", context={"background_memory": False}
        )
        assert reply.status_code == 200, reply.text
        [bike] = [m for m in (await alice.get("/me/memories")).json()["items"] if "bike lock" in m["content"]]
        assert (await alice.post(f"/me/memories/{bike['id']}/undo")).json()["memory"] is None
        deleted_by_a = (await alice.get("/me/deleted-memories")).json()["items"]
        assert [m["id"] for m in deleted_by_a] == [bike["id"]]

        ledger.record(surface, "list deleted memories", await bob.get("/me/deleted-memories"), "own")
        guessed = str(uuid.uuid4())
        for memory_id, what in ((bike["id"], "A's deleted memory"), (victim.memory_id, "A's memory")):
            response = ledger.record(
                surface, f"undo {what}", await bob.post(f"/me/memories/{memory_id}/undo"), "refused"
            )
            absent = await bob.post(f"/me/memories/{guessed}/undo")
            same = (response.status_code, response.text.replace(memory_id, "<id>")) == (
                absent.status_code,
                absent.text.replace(guessed, "<id>"),
            )
            ledger.check(
                surface, f"undo {what} answers like a missing id", own(same, f"{response.text} vs {absent.text}")
            )
        still = (await alice.get("/me/deleted-memories")).json()["items"]
        ledger.check(surface, "A's deleted memory still deleted", own(still == deleted_by_a, f"now {still}"))
    await assert_victim_untouched(secure_server, victim, ledger, surface)


async def test_a_run_cannot_be_made_to_act_for_another_user(
    secure_server: DevServer, victim: Victim, ledger: Ledger, security_fake: FakeOpenAI
) -> None:
    a = victim.user
    surface = "run identity"
    async with http_client(secure_server, token(B)) as bob:
        thread = (await bob.post("/threads", json={})).raise_for_status().json()["thread_id"]
        quiet = {"background_memory": False}
        for payload, description in [
            ({"context": {"user_id": a, **quiet}}, "user_id=alice in context"),
            ({"config": {"configurable": {"user_id": a, **quiet}}}, "user_id=alice in configurable"),
        ]:
            ledger.record(
                surface, description, await chat(bob, thread, "what is my locker code?", **payload), "refused"
            )
        memory_run = {"assistant_id": "memory_graph", "input": {"chat_thread_id": victim.chat_thread}}
        for path, payload, description in [
            ("/runs/wait", {**memory_run, "context": {"user_id": a}}, "memory_graph run for alice"),
            (
                "/runs",
                {"assistant_id": "agent", "input": {}, "context": {"user_id": a}},
                "background agent run for alice",
            ),
            (
                "/runs/batch",
                [{"assistant_id": "agent", "input": {}, "context": {"user_id": a}}],
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
        response = await chat(bob, thread, f"{marker} my locker code?", context={"langgraph_auth_user_id": a, **quiet})
        ledger.record(surface, "langgraph_auth_user_id=alice in context", response, "own")
        ledger.check(surface, "model prompt of that run", model_saw(security_fake, marker))

    async with http_client(secure_server, token("root", admin=True)) as admin:
        shared = (
            (await admin.post("/assistants", json={"graph_id": "agent", "context": {"user_id": a, **quiet}}))
            .raise_for_status()
            .json()["assistant_id"]
        )
    async with http_client(secure_server, token(B)) as bob:
        marker = "SHARED-ASSISTANT-ATTACK"
        response = await chat(bob, thread, f"{marker} my locker code?", assistant_id=shared)
        ledger.record(surface, "assistant whose settings name alice", response, "own")
        ledger.check(surface, "model prompt with that assistant", model_saw(security_fake, marker))
        for method, path, body, description in [
            ("POST", "/assistants", {"graph_id": "agent", "context": {"user_id": a}}, "create an assistant for alice"),
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
    a = victim.user
    async with http_client(secure_server, token(a)) as alice:
        assert (await alice.get(f"/threads/{victim.chat_thread}")).json()["metadata"]["owner"] == a
        assert (await alice.get(f"/threads/{victim.memory_thread}")).json()["metadata"]["owner"] == a
        item = await alice.get("/store/items", params={"namespace": f"memories.{a}", "key": victim.memory_id})
        assert SECRET in item.json()["value"]["content"]
        found = await alice.post("/store/items/search", json={"namespace_prefix": ["memories", a], "query": "locker"})
        assert len(found.json()["items"]) == 2
        listed = await alice.post("/store/namespaces", json={"prefix": ["memories", a]})
        assert listed.json()["namespaces"] == [["memories", a]]
        assert (await alice.post("/threads/search", json={})).status_code == 200
