"""Every route the server answers, tried without a token and as another user, on both backends.

The routes are the server's own OpenAPI document (fetched with a token: without one it is
refused like everything else) plus those it serves without describing them (``UNDOCUMENTED``:
MCP, A2A and generative-UI routes, off by default, the root, ``/openapi.json`` itself, and the
in-memory runtime's development routes; the event-streaming WebSocket is tried on its own).

* Without a token, or with a forged one, every route answers 401, except ``GET /ok`` and the
  memory page ``GET /me/page`` (200) and the in-memory runtime's development routes
  (``/internal/*``, ``/deploy*``), 404 for all.
* As user B, with user A's ids in the path and the body: a route that names A's thread, run,
  memory or checkpoint refuses; every other route answers with B's own data only (nothing of
  A's, see ``tests.e2e.security.attacks``); none answers 5xx; A's data is unchanged afterwards.
* A also has a memory she deleted (by undoing its creation), so the deleted-memories listing
  has something of hers to leak, and undo routes a memory whose change is recorded.
* On every route that takes a thread id, A's thread answers exactly like a thread that does
  not exist, except creating a thread at an id of one's choosing (``CREATES_AT_CHOSEN_ID``,
  README "Security"), checked on its own.
"""

import asyncio
import json
import re
import uuid
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from memory_graph import failures
from tests.e2e.security.attacks import (
    SECRET,
    A,
    B,
    Ledger,
    Victim,
    assert_victim_untouched,
    chat,
    http_client,
    own,
    prepare_victim,
    token,
)
from tests.support.dev_server import DevServer
from tests.support.tokens import bearer, hs256

Route = tuple[str, str]
"""(method, path template as in the OpenAPI document)."""

PUBLIC: set[Route] = {("GET", "/ok"), ("GET", "/me/page")}
CLOSED_PREFIXES = ("/internal/", "/deploy")
UNDOCUMENTED: list[Route] = [
    ("GET", "/mcp"),
    ("POST", "/mcp"),
    ("DELETE", "/mcp"),
    ("GET", "/a2a/{assistant_id}"),
    ("POST", "/a2a/{assistant_id}"),
    ("DELETE", "/a2a/{assistant_id}"),
    ("GET", "/a2a/{assistant_id}/.well-known/agent-card.json"),
    ("GET", "/.well-known/agent-card.json"),
    ("POST", "/ui/{graph_id}"),
    ("GET", "/ui/{graph_id}/entrypoint.js"),
    ("GET", "/"),
    ("GET", "/openapi.json"),
    ("GET", "/internal/debug/thread/{thread_id}"),
    ("POST", "/internal/truncate"),
    ("GET", "/deploy"),
    ("POST", "/deploy"),
    ("GET", "/deploy/{operation_id}/stream"),
    # The memory page: HTML, not part of the API.
    ("GET", "/me/page"),
]
# Path parameters naming something of A's: a route taking one must refuse B.
OWNED_PARAMETERS = ("{thread_id}", "{run_id}", "{memory_id}", "{checkpoint_id}", "{cron_id}")
# Routes without such a parameter that must refuse B anyway, given the requests below.
REFUSED: set[Route] = {
    ("POST", "/threads"),
    ("POST", "/threads/prune"),
    ("POST", "/assistants"),
    ("PATCH", "/assistants/{assistant_id}"),
    ("DELETE", "/assistants/{assistant_id}"),
    ("POST", "/assistants/{assistant_id}/latest"),
    ("GET", "/store/items"),
    ("PUT", "/store/items"),
    ("DELETE", "/store/items"),
    ("POST", "/store/items/search"),
    ("POST", "/store/namespaces"),
    ("POST", "/runs/batch"),
    ("POST", "/runs/cancel"),
    ("POST", "/runs/crons"),
    ("POST", "/runs/crons/search"),
    ("POST", "/runs/crons/count"),
    ("GET", "/metrics"),
}
# Create-if-absent at a thread id the caller chooses: a taken id cannot be created again, so
# these tell a taken id from a free one (README, "Security"); checked on their own below.
CREATES_AT_CHOSEN_ID: set[Route] = {("POST", "/threads/{thread_id}/commands")}


def chat_input(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def request_for(route: Route, ids: dict[str, str]) -> dict[str, Any]:
    """The httpx arguments of B's attempt on ``route``: A's ids wherever a request can carry them."""
    a, ta, ra = ids["user"], ids["thread_id"], ids["run_id"]
    run = {"assistant_id": "agent", "input": chat_input("what is my locker code?")}
    quiet_run = {**run, "context": {"background_memory": False}}
    mine = {"namespace": ["memories", a], "key": ids["memory_id"]}
    bodies: dict[Route, Any] = {
        ("POST", "/threads"): {"thread_id": ta, "if_exists": "do_nothing"},
        ("POST", "/threads/search"): {"ids": [ta, ids["memory_thread"]]},
        ("POST", "/threads/count"): {"metadata": {"owner": a}},
        ("POST", "/threads/prune"): {"thread_ids": [ta]},
        ("PATCH", "/threads/{thread_id}"): {"metadata": {"owner": B}},
        ("POST", "/threads/{thread_id}/state"): {"values": {"messages": []}},
        ("POST", "/threads/{thread_id}/state/checkpoint"): {"checkpoint": {"checkpoint_id": ids["checkpoint_id"]}},
        ("POST", "/threads/{thread_id}/history"): {"limit": 10},
        ("POST", "/threads/{thread_id}/runs"): run,
        ("POST", "/threads/{thread_id}/runs/stream"): run,
        ("POST", "/threads/{thread_id}/runs/wait"): run,
        ("POST", "/threads/{thread_id}/runs/crons"): {"assistant_id": "agent", "schedule": "* * * * *"},
        ("POST", "/threads/{thread_id}/stream/events"): {"channels": ["values", "messages", "lifecycle"]},
        ("POST", "/threads/{thread_id}/commands"): {
            "id": 1,
            "method": "run.start",
            "params": {"assistant_id": ids["assistant_id"], "input": chat_input("hi")},
        },
        ("POST", "/runs"): quiet_run,
        ("POST", "/runs/stream"): quiet_run,
        ("POST", "/runs/wait"): quiet_run,
        ("POST", "/runs/batch"): [{**quiet_run, "context": {"user_id": a}}],
        ("POST", "/runs/cancel"): {"thread_id": ids["pending_thread"], "run_ids": [ra]},
        ("POST", "/runs/crons"): {"assistant_id": "agent", "schedule": "* * * * *"},
        ("PATCH", "/runs/crons/{cron_id}"): {"schedule": "* * * * *"},
        ("POST", "/assistants"): {"graph_id": "agent", "context": {"user_id": a}},
        ("PATCH", "/assistants/{assistant_id}"): {"context": {"user_id": a}},
        ("POST", "/assistants/{assistant_id}/latest"): {"version": 1},
        ("PUT", "/store/items"): {**mine, "value": {"content": "planted by bob"}},
        ("DELETE", "/store/items"): mine,
        ("POST", "/store/items/search"): {"namespace_prefix": ["memories", a], "query": "locker code"},
        ("POST", "/store/namespaces"): {"prefix": ["memories", a]},
        ("PATCH", "/me/memories/{memory_id}"): {"content": "hacked by bob"},
        ("PATCH", "/me/profile"): {"name": "Bob"},
        ("POST", "/mcp"): {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "agent", "arguments": chat_input("hi"), "context": {"user_id": a}},
        },
        ("POST", "/a2a/{assistant_id}"): {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "message/send",
            "params": {"message": {"role": "user", "parts": [{"kind": "text", "text": "hi"}], "contextId": ta}},
        },
    }
    params: dict[Route, dict[str, str]] = {
        ("GET", "/store/items"): {"namespace": f"memories.{a}", "key": ids["memory_id"]},
        ("GET", "/me/memories"): {"query": "locker code"},
    }
    arguments: dict[str, Any] = {"params": params.get(route, {})}
    if route in bodies or route[0] in ("POST", "PUT", "PATCH"):
        arguments["json"] = bodies.get(route, {})
    return arguments


def expectation(route: Route) -> str:
    """``closed`` (404 for everyone), ``refused`` (B gets nothing) or ``own`` (B's own data only)."""
    path = route[1]
    if path.startswith(CLOSED_PREFIXES):
        return "closed"
    if route in REFUSED or any(parameter in path for parameter in OWNED_PARAMETERS):
        return "refused"
    return "own"


def fill(template: str, ids: dict[str, str]) -> str:
    """The path of ``template`` with A's ids; a parameter the test does not know fails it."""
    names = re.findall(r"{(\w+)}", template)
    unknown = [name for name in names if name not in ids]
    if unknown:
        pytest.fail(f"{template}: no value for path parameters {unknown}; add one to `attack_ids`.")
    return re.sub(r"{(\w+)}", lambda match: ids[match.group(1)], template)


def document_routes(document: dict[str, Any]) -> list[Route]:
    methods = ("get", "post", "put", "patch", "delete")
    return [(method.upper(), path) for path, item in document["paths"].items() for method in item if method in methods]


async def attack_ids(server: DevServer, victim: Victim) -> dict[str, str]:
    """A value for every path parameter: A's own ids, and the shared assistant's."""
    async with http_client(server, token(victim.user)) as alice:
        state = (await alice.get(f"/threads/{victim.chat_thread}/state")).raise_for_status().json()
        agent = (await alice.post("/assistants/search", json={"graph_id": "agent"})).raise_for_status().json()[0]
    return {
        "user": victim.user,
        "thread_id": victim.chat_thread,
        "run_id": victim.chat_run,
        "memory_thread": victim.memory_thread,
        "pending_thread": victim.pending_thread,
        "memory_id": victim.memory_id,
        # The key a set-aside batch of A's conversation would have (the victim has none set aside).
        "failure_id": failures.failure_key(victim.chat_thread, "first-message"),
        "checkpoint_id": state["checkpoint"]["checkpoint_id"],
        "assistant_id": agent["assistant_id"],
        "cron_id": str(uuid.uuid4()),
        "operation_id": uuid.uuid4().hex[:12],
        "graph_id": "agent",
        "namespace": "agent",
    }


@pytest.fixture(scope="module")
def victim(secure_server: DevServer) -> Victim:
    """User A as the package's fixture prepares her, plus a deleted memory (kept in her history only)."""
    prepared = asyncio.run(prepare_victim(secure_server, f"{A}-{uuid.uuid4().hex[:8]}"))
    asyncio.run(_delete_a_memory_of(secure_server, prepared))
    return prepared


async def _delete_a_memory_of(server: DevServer, victim: Victim) -> None:
    async with http_client(server, token(victim.user)) as alice:
        thread = (await alice.post("/threads", json={})).raise_for_status().json()["thread_id"]
        reply = await chat(
            alice, thread, f"Please remember my bike lock is {SECRET}", context={"background_memory": False}
        )
        assert reply.status_code == 200, reply.text
        [bike] = [m for m in (await alice.get("/me/memories")).json()["items"] if "bike lock" in m["content"]]
        (await alice.post(f"/me/memories/{bike['id']}/undo")).raise_for_status()
        assert [m["id"] for m in (await alice.get("/me/deleted-memories")).json()["items"]] == [bike["id"]]


@pytest.fixture(scope="module")
def routes(secure_server: DevServer) -> list[Route]:
    """Every route of the server's OpenAPI document, then the undocumented ones."""
    url = f"{secure_server.url}/openapi.json"
    assert httpx.get(url, trust_env=False, timeout=30).status_code == 401
    document = httpx.get(url, headers=bearer(token(B)), trust_env=False, timeout=30).raise_for_status().json()
    documented = document_routes(document)
    assert ("POST", "/threads") in documented and ("GET", "/me/records") in documented
    assert ("POST", "/me/memories/{memory_id}/undo") in documented and ("GET", "/me/deleted-memories") in documented
    return documented + [route for route in UNDOCUMENTED if route not in documented]


async def test_without_a_valid_token_every_route_but_the_public_ones_is_refused(
    secure_server: DevServer, routes: list[Route], victim: Victim, ledger: Ledger
) -> None:
    ids = await attack_ids(secure_server, victim)
    forged = hs256(victim.user, secret="a-forger-secret-that-is-long-enough!!")
    for surface, credentials in (("no token", None), ("forged token", forged)):
        async with http_client(secure_server, credentials) as stranger:
            for route in routes:
                response = await stranger.request(route[0], fill(route[1], ids), **request_for(route, ids))
                expected = 200 if route in PUBLIC else 404 if expectation(route) == "closed" else 401
                problem = None if response.status_code == expected else f"{response.status_code}: {response.text[:200]}"
                if SECRET in response.text:
                    problem = f"A's data in the response: {response.text[:200]}"
                ledger.check(surface, f"{route[0]} {route[1]} -> {expected}", problem)
    await assert_victim_untouched(secure_server, victim, ledger, "no token")


async def test_another_user_gets_nothing_of_a_user_on_any_route(
    secure_server: DevServer, routes: list[Route], victim: Victim, ledger: Ledger
) -> None:
    ids = await attack_ids(secure_server, victim)
    a_ids = [victim.chat_thread, victim.memory_thread, victim.pending_thread, victim.memory_id]
    async with http_client(secure_server, token(B)) as bob:
        for route in routes:
            response = await bob.request(route[0], fill(route[1], ids), **request_for(route, ids))
            expected = expectation(route)
            description = f"{route[0]} {route[1]}"
            if expected == "closed":
                ledger.check("as user B", description, own(response.status_code == 404, f"{response.status_code}"))
                continue
            ledger.record("as user B", description, response, "refused" if expected == "refused" else "own")
            if response.is_success and expected == "own":
                shown = [value for value in a_ids if value in response.text]
                ledger.check("as user B", f"{description}: none of A's ids", f"A's ids {shown}" if shown else None)
        count = (await bob.post("/threads/count", json={"metadata": {"owner": victim.user}})).json()
        ledger.check("as user B", "count A's threads", None if count == 0 else f"counted {count}")
    await assert_victim_untouched(secure_server, victim, ledger, "as user B")


async def test_another_users_thread_looks_like_one_that_does_not_exist(
    secure_server: DevServer, routes: list[Route], victim: Victim, ledger: Ledger
) -> None:
    ids = await attack_ids(secure_server, victim)
    nowhere = {**ids, "thread_id": str(uuid.uuid4())}
    taking_a_thread = [
        route
        for route in routes
        if "{thread_id}" in route[1] and expectation(route) != "closed" and route not in CREATES_AT_CHOSEN_ID
    ]
    assert len(taking_a_thread) >= 20, taking_a_thread
    async with http_client(secure_server, token(B)) as bob:
        for route in taking_a_thread:
            answers = []
            for values in (ids, nowhere):
                response = await bob.request(route[0], fill(route[1], values), **request_for(route, values))
                answers.append((response.status_code, response.text.replace(values["thread_id"], "<thread id>")))
            problem = None if answers[0] == answers[1] else f"A's thread {answers[0]}, none {answers[1]}"
            ledger.check("thread id", f"{route[0]} {route[1]}", problem)


async def test_creating_a_thread_at_a_taken_id_reveals_only_that_it_is_taken(
    secure_server: DevServer, victim: Victim, ledger: Ledger
) -> None:
    ta = victim.chat_thread
    async with http_client(secure_server, token(B)) as bob:
        response = await bob.post("/threads", json={"thread_id": ta})
        assert (response.status_code, response.json()) == (409, {"detail": f"Thread with ID {ta} already exists"})
        run = {"assistant_id": "agent", "input": chat_input("hi"), "if_not_exists": "create"}
        response = await bob.post(f"/threads/{ta}/runs", json=run)
        assert (response.status_code, response.json()) == (404, {"detail": "Thread or assistant not found."})
        for attempt in ("create at A's id", "run creating A's id"):
            ledger.check("thread id", attempt, None)
    await assert_victim_untouched(secure_server, victim, ledger, "thread id")


async def test_another_users_thread_events_never_reach_a_subscriber(
    secure_server: DevServer, victim: Victim, ledger: Ledger
) -> None:
    async with http_client(secure_server, token(victim.user)) as alice:
        thread = (await alice.post("/threads", json={})).raise_for_status().json()["thread_id"]
        assistant = (await alice.post("/assistants/search", json={"graph_id": "agent"})).json()[0]["assistant_id"]
        url = f"{secure_server.url.replace('http', 'ws', 1)}/threads/{thread}/stream/events"
        received: dict[str, list[str]] = {"alice": [], "bob (SSE)": [], "bob (WebSocket)": []}

        async def subscribe_sse(who: str, credentials: str) -> None:
            async with http_client(secure_server, credentials) as client:
                body = {"channels": ["values", "messages", "lifecycle"]}
                async with client.stream("POST", f"/threads/{thread}/stream/events", json=body) as response:
                    async for line in response.aiter_lines():
                        received[who].append(line)

        async def subscribe_websocket() -> None:
            async with connect(url, additional_headers=bearer(token(B))) as socket:
                command = {"id": 1, "method": "subscription.subscribe", "params": {"channels": ["values", "messages"]}}
                await socket.send(json.dumps(command))
                start = {"assistant_id": assistant, "input": chat_input("x")}
                await socket.send(json.dumps({"id": 2, "method": "run.start", "params": start}))
                async for message in socket:
                    received["bob (WebSocket)"].append(str(message))

        listeners = [
            asyncio.create_task(subscribe_sse("alice", token(victim.user))),
            asyncio.create_task(subscribe_sse("bob (SSE)", token(B))),
            asyncio.create_task(subscribe_websocket()),
        ]
        await asyncio.sleep(1)
        run = {"assistant_id": "agent", "input": chat_input(f"hello {SECRET}"), "context": {"background_memory": False}}
        (await alice.post(f"/threads/{thread}/runs/wait", json=run)).raise_for_status()
        await asyncio.sleep(2)
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)

    assert any(SECRET in line for line in received["alice"]), "the owner's own subscription saw nothing"
    for who in ("bob (SSE)", "bob (WebSocket)"):
        leaked = [line for line in received[who] if SECRET in line]
        ledger.check("event streaming", f"{who} subscribed to A's thread", f"received {leaked[:1]}" if leaked else None)
    ledger.check("event streaming", "run.start on A's thread over the WebSocket", refused_start(received))
    with pytest.raises(InvalidStatus) as refusal:
        async with connect(url):
            pass
    status = refusal.value.response.status_code
    ledger.check("event streaming", "WebSocket without a token", own(status == 403, f"answered {status}"))


def refused_start(received: dict[str, list[str]]) -> str | None:
    """A problem if B's run.start on A's thread succeeded (the server may also just close the socket)."""
    replies = [json.loads(message) for message in received["bob (WebSocket)"]]
    started = [reply for reply in replies if reply.get("id") == 2 and reply.get("type") != "error"]
    return f"run.start answered {started[0]}" if started else None
