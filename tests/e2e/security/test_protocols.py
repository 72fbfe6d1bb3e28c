"""MCP and A2A, once turned on in ``langgraph.json``: the same auth, and no 5xx for a bad request.

Both are off by default (``test_every_route`` checks they answer 404); a deployment that needs
one sets ``"disable_mcp": false`` or ``"disable_a2a": false`` under ``http``. Here both are on,
with auth on, on both backends: without a token they answer 401; user B's attempts on user
A's data through them are refused; malformed requests get a 4xx or a JSON-RPC error, never a
5xx, and the connection stays usable.
"""

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import CONFIG, backend_env
from tests.e2e.security.attacks import SECRET, A, B, Ledger, chat, http_client, token
from tests.support.dev_server import DevServer
from tests.support.fake_openai import FakeOpenAI
from tests.support.tokens import hs256_env

ON = {"http": {"disable_mcp": False, "disable_a2a": False}}
JSON_ACCEPT = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def protocol_server(
    request: pytest.FixtureRequest, secure_backend: str, security_fake: FakeOpenAI
) -> Iterator[DevServer]:
    env = {**security_fake.env(), **backend_env(request, secure_backend), **hs256_env()}
    with DevServer(CONFIG, env=env, config_overrides=ON) as server:
        yield server


@pytest.fixture(scope="module")
def a_thread(protocol_server: DevServer) -> str:
    """A thread of A's that holds ``SECRET``."""

    async def create() -> str:
        async with http_client(protocol_server, token(A)) as alice:
            thread: str = (await alice.post("/threads", json={})).raise_for_status().json()["thread_id"]
            reply = await chat(alice, thread, f"My locker code is {SECRET}", context={"background_memory": False})
            assert reply.status_code == 200 and SECRET in reply.text, reply.text
            return thread

    return asyncio.run(create())


def rpc(method: str, params: Any, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def a2a_message(context_id: str | None, text: str = "what is my locker code?") -> dict[str, Any]:
    message: dict[str, Any] = {"role": "user", "parts": [{"kind": "text", "text": text}], "messageId": "m1"}
    if context_id is not None:
        message["contextId"] = context_id
    return {"message": message}


async def agent_assistant(client: httpx.AsyncClient) -> str:
    assistant_id: str = (await client.post("/assistants/search", json={"graph_id": "agent"})).json()[0]["assistant_id"]
    return assistant_id


async def test_without_a_token_mcp_and_a2a_are_refused(protocol_server: DevServer, ledger: Ledger) -> None:
    async with http_client(protocol_server, token(B)) as bob:
        agent = await agent_assistant(bob)
    async with http_client(protocol_server, None) as stranger:
        for method, path, body in [
            ("POST", "/mcp", rpc("tools/list", {})),
            ("GET", "/mcp", None),
            ("POST", f"/a2a/{agent}", rpc("message/send", a2a_message(None))),
            ("GET", f"/a2a/{agent}/.well-known/agent-card.json", None),
            ("GET", "/.well-known/agent-card.json", None),
        ]:
            response = await stranger.request(method, path, json=body, headers=JSON_ACCEPT)
            problem = None if response.status_code == 401 else f"{response.status_code}: {response.text[:200]}"
            ledger.check("no token", f"{method} {path}", problem)


async def test_mcp_refuses_another_users_run_and_survives_bad_requests(
    protocol_server: DevServer, a_thread: str, ledger: Ledger
) -> None:
    async with http_client(protocol_server, token(B)) as bob:
        bob.headers.update(JSON_ACCEPT)
        initialize = {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        response = await bob.post("/mcp", json=rpc("initialize", initialize))
        assert response.status_code == 200 and response.json()["result"]["serverInfo"], response.text
        as_a = {"name": "agent", "arguments": {"messages": []}, "context": {"user_id": A}}
        response = await bob.post("/mcp", json=rpc("tools/call", as_a))
        ledger.record("MCP", "run the agent as A", response, "refused")
        assert response.status_code == 403 and "user_id='alice'" in response.text, response.text
        bad: list[tuple[Any, str]] = [
            (rpc("tools/call", {"name": "agent", "arguments": "not an object"}), "arguments not an object"),
            (rpc("tools/call", {"name": "agent", "arguments": {"messages": "x"}}), "invalid graph input"),
            (rpc("tools/call", {"name": 42}), "tool name not a string"),
            (rpc("tools/call", {}), "no tool name"),
            (rpc("tools/call", {"name": "no-such-tool"}), "unknown tool"),
            (rpc("tools/list", {"cursor": "garbage"}), "bad cursor"),
            (rpc("no/such/method", {}), "unknown method"),
            ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, "wrong JSON-RPC version"),
            ([rpc("ping", {})], "a batch"),
            ("not json", "not JSON"),
        ]
        for body, description in bad:
            sent = {"content": body} if isinstance(body, str) else {"json": body}
            ledger.record("MCP", description, await bob.post("/mcp", **sent), "own")
        # The same connection still answers: a refusal no longer drops it.
        response = await bob.post("/mcp", json=rpc("ping", {}))
        assert response.status_code == 200, response.text


async def test_a2a_refuses_another_users_thread_and_survives_bad_requests(
    protocol_server: DevServer, a_thread: str, ledger: Ledger
) -> None:
    async with http_client(protocol_server, token(B)) as bob:
        bob.headers.update(JSON_ACCEPT)
        path = f"/a2a/{await agent_assistant(bob)}"
        for body, description in [
            (rpc("message/send", a2a_message(a_thread)), "send a message into A's thread"),
            (rpc("tasks/get", {"id": a_thread, "contextId": a_thread}), "read A's thread as a task"),
            (rpc("tasks/cancel", {"id": a_thread, "contextId": a_thread}), "cancel A's task"),
        ]:
            ledger.record("A2A", description, await bob.post(path, json=body), "refused")
        bad: list[tuple[str, Any, str]] = [
            (path, rpc("message/send", {"message": {"role": "user", "parts": []}}), "no parts"),
            (path, rpc("message/send", {"message": {"role": "user", "parts": [{"kind": "x"}]}}), "unknown part"),
            (path, rpc("message/send", a2a_message("not-a-uuid")), "context id not a UUID"),
            (path, rpc("message/send", "not an object"), "params not an object"),
            (path, rpc("tasks/get", {"id": "garbage"}), "task id garbage"),
            (path, rpc("no/such/method", {}), "unknown method"),
            (f"/a2a/{uuid.uuid4()}", rpc("message/send", a2a_message(None)), "unknown assistant"),
            ("/a2a/not-a-uuid", rpc("message/send", a2a_message(None)), "assistant id not a UUID"),
            (path, "not json", "not JSON"),
        ]
        for target, body, description in bad:
            sent = {"content": body} if isinstance(body, str) else {"json": body}
            ledger.record("A2A", description, await bob.post(target, **sent), "own")
    async with http_client(protocol_server, token(A)) as alice:
        state = (await alice.get(f"/threads/{a_thread}/state")).raise_for_status().json()
        assert len(state["values"]["messages"]) == 2, "B's messages reached A's thread"
