"""The memory-management routes (``/me/...``) on `langgraph dev`: behaviour, bounds, fuzzing.

With auth on (the secure server) for a user of their own, and with auth off (the session's
default server), where they act for the local user.
"""

import copy
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from tests.e2e.conftest import agent_prompts
from tests.e2e.security.attacks import http_client, token
from tests.e2e.security.conftest import RULES, SUMMARIES
from tests.support.dev_server import DevServer
from tests.support.fake_openai import FakeOpenAI, ToolCallSpec
from tests.support.tokens import bearer

# Examples per route and mode: enough to reach every status the route documents while the
# whole fuzz run stays a few seconds. Generation is derandomized so the gate is reproducible:
# randomized runs (100 examples, checked by hand) found nothing more, except a false report
# that an extra query parameter was accepted when the HTTP client had dropped it (null value).
FUZZ_EXAMPLES = 25


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def put_memory(client: httpx.AsyncClient, user_id: str, text: str, **extra: Any) -> str:
    key = str(uuid.uuid4())
    body = {"namespace": ["memories", user_id], "key": key, "value": {"content": text, **extra}}
    (await client.put("/store/items", json=body)).raise_for_status()
    return key


async def history_of(client: httpx.AsyncClient, user_id: str, key: str) -> list[dict[str, Any]]:
    body = {"namespace_prefix": ["memory_history", user_id], "filter": {"memory_key": key}, "limit": 100}
    response = await client.post("/store/items/search", json=body)
    response.raise_for_status()
    return [item["value"] for item in response.json()["items"]]


async def test_list_read_edit_delete_and_export_your_memories(secure_server: DevServer) -> None:
    user = new_user()
    async with http_client(secure_server, token(user)) as me:
        tea = await put_memory(me, user, "Likes green tea", importance=0.9)
        await put_memory(me, user, "Lives in Lyon")
        await put_memory(me, user, "Has a cat named Miso")

        page = (await me.get("/me/memories")).json()
        assert sorted(item["content"] for item in page["items"]) == [
            "Has a cat named Miso",
            "Likes green tea",
            "Lives in Lyon",
        ]
        first, rest = (
            (await me.get("/me/memories", params={"limit": 1})).json(),
            (await me.get("/me/memories", params={"limit": 10, "offset": 1})).json(),
        )
        assert len(first["items"]) == 1 and len(rest["items"]) == 2
        ranked = (await me.get("/me/memories", params={"query": "green tea"})).json()["items"]
        assert ranked[0]["id"] == tea

        assert (await me.get(f"/me/memories/{tea}")).json()["content"] == "Likes green tea"
        edited = await me.patch(f"/me/memories/{tea}", json={"content": "Likes black tea"})
        assert edited.status_code == 200 and edited.json()["content"] == "Likes black tea"
        stored = (await me.get("/store/items", params={"namespace": f"memories.{user}", "key": tea})).json()
        assert stored["value"] == {"content": "Likes black tea", "importance": 0.9}
        [change] = await history_of(me, user, tea)
        assert (change["action"], change["source"]) == ("update", "user")
        assert change["before"]["content"] == "Likes green tea" and change["after"]["content"] == "Likes black tea"

        assert (await me.delete(f"/me/memories/{tea}")).status_code == 204
        assert await history_of(me, user, tea) == []
        assert (await me.get(f"/me/memories/{tea}")).status_code == 404
        assert (await me.delete(f"/me/memories/{tea}")).status_code == 404

        assert (await me.get("/me/profile")).json() == {"profile": None, "updated_at": None}
        profile = await me.patch("/me/profile", json={"name": "Dana", "interests": ["tea", "cats"]})
        assert profile.status_code == 200 and profile.json()["profile"]["name"] == "Dana"
        merged = (await me.patch("/me/profile", json={"timezone": "Europe/Paris", "name": None})).json()["profile"]
        assert (
            merged["timezone"] == "Europe/Paris" and merged["name"] is None and merged["interests"] == ["tea", "cats"]
        )
        # Fields of a profile schema an assistant configured are kept, and can be edited or cleared.
        custom = {**merged, "shoe_size": 44, "pets": {"cat": "Miso"}}
        body = {"namespace": ["profile", user], "key": "profile", "value": custom}
        (await me.put("/store/items", json=body)).raise_for_status()
        edited = (await me.patch("/me/profile", json={"shoe_size": None, "team": "blue"})).json()["profile"]
        assert edited["pets"] == {"cat": "Miso"} and edited["team"] == "blue" and "shoe_size" not in edited

        note = {"namespace": ["notes", user], "key": "n1", "value": {"text": "a note"}}
        (await me.put("/store/items", json=note)).raise_for_status()
        export = await me.get("/me/export")
        assert export.headers["content-disposition"] == f'attachment; filename="memories-{user}.json"'
        document = export.json()
        assert document["user_id"] == user
        assert sorted(m["content"] for m in document["memories"]) == ["Has a cat named Miso", "Lives in Lyon"]
        assert [(h["namespace"][0], h["source"]) for h in document["history"]] == [("profile", "user")] * 3
        assert document["profile"]["timezone"] == "Europe/Paris"
        assert [(r["namespace"], r["key"], r["value"]) for r in document["other_records"]] == [
            (["notes", user], "n1", {"text": "a note"})
        ]

        assert (await me.delete("/me/memories")).json() == {"deleted": 2}
        assert (await me.get("/me/memories")).json()["items"] == []
        assert (await me.get("/me/profile")).json()["profile"] is not None
        assert (await me.delete("/me/profile")).status_code == 204
        assert (await me.get("/me/profile")).json()["profile"] is None
        assert (await me.get("/me/export")).json()["history"] == []


_CHAT_RUN = {"assistant_id": "agent", "context": {"background_memory": False}}


async def _remembered_in_a_chat(me: httpx.AsyncClient, text: str, **message: Any) -> tuple[str, dict[str, Any]]:
    """A new thread where the agent saves ``text`` as a new memory: (thread id, the memory).

    ``message`` adds keys to the user's message (e.g. its ``timestamp``).
    """
    known = {item["id"] for item in (await me.get("/me/memories", params={"limit": 100})).json()["items"]}
    thread = (await me.post("/threads", json={})).json()["thread_id"]
    saved = await me.post(
        f"/threads/{thread}/runs/wait",
        json={**_CHAT_RUN, "input": {"messages": [{"role": "user", "content": text, **message}]}},
    )
    assert saved.status_code == 200, saved.text
    [memory] = [
        m for m in (await me.get("/me/memories", params={"limit": 100})).json()["items"] if m["id"] not in known
    ]
    return thread, memory


async def _the_agent_calls(me: httpx.AsyncClient, fake: FakeOpenAI, thread: str, arguments: dict[str, Any]) -> str:
    """One chat turn in ``thread`` where the model calls manage_memory with ``arguments``; the tool's answer."""
    marker = f"(agent call {uuid.uuid4().hex[:8]})"
    call: ToolCallSpec = {"name": "manage_memory", "arguments": arguments}
    fake.set_rules([RULES[0], {"when": {"tool": "manage_memory", "contains": marker}, "then": {"tool_calls": [call]}}])
    try:
        reply = await me.post(
            f"/threads/{thread}/runs/wait",
            json={**_CHAT_RUN, "input": {"messages": [{"role": "user", "content": f"Noted {marker}"}]}},
        )
    finally:
        fake.set_rules(RULES)
    assert reply.status_code == 200, reply.text
    answer: str = [m for m in reply.json()["messages"] if m["type"] == "tool"][-1]["content"]
    return answer


async def test_an_edit_is_what_the_agent_recalls_next(secure_server: DevServer, security_fake: FakeOpenAI) -> None:
    user = new_user()
    async with http_client(secure_server, token(user)) as me:
        thread, memory = await _remembered_in_a_chat(me, "Please remember I drink green tea")
        await me.patch(f"/me/memories/{memory['id']}", json={"content": "Drinks black coffee, never tea"})
        marker = f"(recall check {user})"
        await me.post(
            f"/threads/{thread}/runs/wait",
            json={**_CHAT_RUN, "input": {"messages": [{"role": "user", "content": f"What do I drink? {marker}"}]}},
        )
    prompt = agent_prompts(security_fake, marker)[-1]
    assert "Drinks black coffee, never tea" in prompt and "green tea" not in prompt.split("<user_memory>")[-1]


async def test_a_memorys_history_says_where_it_came_from(secure_server: DevServer) -> None:
    user = new_user()
    async with http_client(secure_server, token(user)) as me, http_client(secure_server, token(new_user())) as other:
        thread, memory = await _remembered_in_a_chat(me, "Please remember I drink green tea")
        await me.patch(f"/me/memories/{memory['id']}", json={"content": "Drinks black coffee"})

        response = await me.get(f"/me/memories/{memory['id']}/history")
        assert response.status_code == 200, response.text
        created, edited = response.json()["items"]
        assert (created["action"], created["source"], created["thread_id"]) == ("create", "hot_path", thread)
        assert created["message_ids"] and created["after"]["content"] == memory["content"]
        assert (edited["action"], edited["source"], edited["after"]["content"]) == (
            "update",
            "user",
            "Drinks black coffee",
        )
        assert created["at"] <= edited["at"]

        refused = await other.get(f"/me/memories/{memory['id']}/history")
        assert refused.status_code == 404 and refused.json() == {"detail": f"No memory has id {memory['id']!r}."}


ANA = "Please remember: Ana lives in Lisbon and works as a nurse."
# A wrong correction: related enough to pass the write guard (which refuses an unrelated one).
WRONG = "Ana lives in Porto, works as a teacher."


async def test_a_wrong_update_by_the_agent_is_undone_and_recalled_again(
    secure_server: DevServer, security_fake: FakeOpenAI
) -> None:
    user = new_user()
    async with http_client(secure_server, token(user)) as me:
        thread, ana = await _remembered_in_a_chat(me, ANA)
        for text in ("Likes green tea", "Has a cat named Miso", "Plays the cello on Sundays"):
            await put_memory(me, user, text)
        answer = await _the_agent_calls(
            me, security_fake, thread, {"action": "update", "id": ana["id"], "content": WRONG}
        )
        assert answer == f"updated memory {ana['id']}"
        assert (await me.get(f"/me/memories/{ana['id']}")).json()["content"] == WRONG
        recalled = (await me.get("/me/memories", params={"query": "Where does Ana live, in Lisbon?"})).json()["items"]
        assert ANA not in [m["content"] for m in recalled]

        undone = await me.post(f"/me/memories/{ana['id']}/undo")
        assert undone.status_code == 200, undone.text
        body = undone.json()
        assert body["memory"]["id"] == ana["id"] and body["memory"]["content"] == ANA
        assert body["memory"]["stated_at"] == ana["stated_at"]
        assert (body["undone"]["action"], body["undone"]["source"], body["undone"]["thread_id"]) == (
            "update",
            "hot_path",
            thread,
        )
        recalled = (await me.get("/me/memories", params={"query": "Where does Ana live, in Lisbon?"})).json()["items"]
        assert (recalled[0]["id"], recalled[0]["content"]) == (ana["id"], ANA)
        last = (await me.get(f"/me/memories/{ana['id']}/history")).json()["items"][-1]
        assert (last["action"], last["source"], last["before"]["content"], last["after"]["content"]) == (
            "undo",
            "user",
            WRONG,
            ANA,
        )

        # The undo is a change too: undoing it brings the update back, and undoing that restores again.
        again = (await me.post(f"/me/memories/{ana['id']}/undo")).json()
        assert again["memory"]["content"] == WRONG and again["undone"]["action"] == "undo"
        assert (await me.get(f"/me/memories/{ana['id']}")).json()["content"] == WRONG
        third = (await me.post(f"/me/memories/{ana['id']}/undo")).json()
        assert third["memory"]["content"] == ANA
        actions = [entry["action"] for entry in (await me.get(f"/me/memories/{ana['id']}/history")).json()["items"]]
        assert actions == ["create", "update", "undo", "undo", "undo"]


async def test_a_deleted_memory_is_listed_and_restored_with_its_id_and_time(
    secure_server: DevServer, security_fake: FakeOpenAI
) -> None:
    user = new_user()
    async with http_client(secure_server, token(user)) as me:
        assert (await me.get("/me/deleted-memories")).json() == {"items": [], "limit": 20, "offset": 0}
        thread, ana = await _remembered_in_a_chat(me, ANA, timestamp="2023-05-08T13:56:00Z")
        assert ana["stated_at"] == "2023-05-08T13:56:00Z"
        answer = await _the_agent_calls(me, security_fake, thread, {"action": "delete", "id": ana["id"]})
        assert answer == f"Deleted memory {ana['id']}"
        assert (await me.get(f"/me/memories/{ana['id']}")).status_code == 404

        [gone] = (await me.get("/me/deleted-memories")).json()["items"]
        assert {key: gone[key] for key in ("id", "content", "stated_at", "source", "thread_id")} == {
            "id": ana["id"],
            "content": ANA,
            "stated_at": "2023-05-08T13:56:00Z",
            "source": "hot_path",
            "thread_id": thread,
        }
        history = (await me.get(f"/me/memories/{ana['id']}/history")).json()["items"]
        assert [entry["action"] for entry in history] == ["create", "delete"] and history[-1]["at"] == gone[
            "deleted_at"
        ]

        # A memory just created is undone by deleting it: it is listed too, newest first.
        _, tea = await _remembered_in_a_chat(me, "Please remember I drink green tea")
        undone = (await me.post(f"/me/memories/{tea['id']}/undo")).json()
        assert undone["memory"] is None and undone["undone"]["action"] == "create"
        listed = (await me.get("/me/deleted-memories")).json()["items"]
        assert [(m["id"], m["source"]) for m in listed] == [(tea["id"], "user"), (ana["id"], "hot_path")]
        second = (await me.get("/me/deleted-memories", params={"limit": 1, "offset": 1})).json()
        assert [m["id"] for m in second["items"]] == [ana["id"]] and (second["limit"], second["offset"]) == (1, 1)

        restored = await me.post(f"/me/memories/{ana['id']}/undo")
        assert restored.status_code == 200, restored.text
        memory = restored.json()["memory"]
        assert (memory["id"], memory["content"], memory["stated_at"]) == (ana["id"], ANA, "2023-05-08T13:56:00Z")
        assert restored.json()["undone"]["action"] == "delete"
        assert (await me.get(f"/me/memories/{ana['id']}")).json()["content"] == ANA
        stored = (await me.get("/store/items", params={"namespace": f"memories.{user}", "key": ana["id"]})).json()
        assert stored["value"]["stated_at"] == "2023-05-08T13:56:00+00:00"
        recalled = (await me.get("/me/memories", params={"query": "Ana nurse in Lisbon"})).json()["items"]
        assert recalled[0]["id"] == ana["id"]
        assert [m["id"] for m in (await me.get("/me/deleted-memories")).json()["items"]] == [tea["id"]]


async def test_an_undo_the_history_does_not_allow_says_why(secure_server: DevServer) -> None:
    user = new_user()
    async with http_client(secure_server, token(user)) as me, http_client(secure_server, token(new_user())) as other:
        nowhere = str(uuid.uuid4())
        missing = await me.post(f"/me/memories/{nowhere}/undo")
        assert missing.status_code == 404
        assert missing.json()["detail"] == (
            f"No memory of yours has id {nowhere!r}, and no change to one is recorded: take the id from "
            "GET /me/memories, or from GET /me/deleted-memories for a deleted memory."
        )
        unrecorded = await put_memory(me, user, "Lives in Lyon")
        response = await me.post(f"/me/memories/{unrecorded}/undo")
        assert response.status_code == 404 and "edit it with PATCH" in response.json()["detail"]

        tea = await put_memory(me, user, "Likes green tea")
        (await me.patch(f"/me/memories/{tea}", json={"content": "Likes black tea"})).raise_for_status()
        # Put back through the store API (which the history does not record): nothing left to undo.
        body = {"namespace": ["memories", user], "key": tea, "value": {"content": "Likes green tea"}}
        (await me.put("/store/items", json=body)).raise_for_status()
        response = await me.post(f"/me/memories/{tea}/undo")
        assert response.status_code == 409, response.text
        assert "already holds what it held before its latest change" in response.json()["detail"]
        # Changed through the store API since: undoing would lose that change, so it is refused.
        body["value"] = {"content": "Likes oolong"}
        (await me.put("/store/items", json=body)).raise_for_status()
        response = await me.post(f"/me/memories/{tea}/undo")
        assert response.status_code == 409 and "edit it instead" in response.json()["detail"]
        assert (await me.get(f"/me/memories/{tea}")).json()["content"] == "Likes oolong"

        # Another user's memory is answered exactly like one that does not exist.
        (await me.patch(f"/me/memories/{tea}", json={"content": "Likes white tea"})).raise_for_status()
        theirs = await other.post(f"/me/memories/{tea}/undo")
        absent = await other.post(f"/me/memories/{nowhere}/undo")
        assert theirs.status_code == absent.status_code == 404
        assert theirs.json()["detail"].replace(tea, "<id>") == absent.json()["detail"].replace(nowhere, "<id>")
        assert (await other.get("/me/deleted-memories")).json()["items"] == []
        assert (await me.get(f"/me/memories/{tea}")).json()["content"] == "Likes white tea"

        # A memory you delete here is forgotten with its history: it cannot be brought back.
        assert (await me.delete(f"/me/memories/{tea}")).status_code == 204
        assert (await me.post(f"/me/memories/{tea}/undo")).status_code == 404
        assert (await me.get("/me/deleted-memories")).json()["items"] == []


async def test_your_other_records_are_listed_and_only_yours(secure_server: DevServer) -> None:
    user = new_user()
    async with http_client(secure_server, token(user)) as me, http_client(secure_server, token(new_user())) as other:
        kept = [
            (["episodes", user], "e1", {"situation": "planning a trip"}),
            (["instructions", user], "default", {"instructions": "Answer briefly."}),
            (["custom", user, "trips"], "t1", {"destination": "Lyon"}),
        ]
        bookkeeping = [
            (["memory_cursors", user], "c1", {"processed": 3}),
            (["profile", user], "profile", {"name": "D"}),
        ]
        for namespace, key, value in kept + bookkeeping:
            body = {"namespace": namespace, "key": key, "value": value}
            (await me.put("/store/items", json=body)).raise_for_status()
        await put_memory(me, user, "Likes tea")

        response = await me.get("/me/records")
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert sorted((r["namespace"], r["key"], r["value"]) for r in items) == sorted(kept)
        assert all(r["created_at"] and r["updated_at"] for r in items)

        theirs = await other.get("/me/records")
        assert theirs.status_code == 200 and theirs.json() == {"items": []}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "reason"),
    [
        ("GET", "/me/memories", {"params": {"limit": 0}}, 422, "`limit`: Input should be greater than or equal to 1"),
        ("GET", "/me/memories", {"params": {"limit": 101}}, 422, "`limit`: Input should be less than or equal to 100"),
        (
            "GET",
            "/me/memories",
            {"params": {"offset": -1}},
            422,
            "`offset`: Input should be greater than or equal to 0",
        ),
        ("GET", "/me/memories", {"params": {"limit": "ten"}}, 422, "`limit`: Input should be a valid integer"),
        ("GET", "/me/memories", {"params": {"query": "q" * 1001}}, 422, "`query`: String should have at most 1000"),
        ("PATCH", "/me/memories/x", {"json": {"content": "x" * 2001}}, 422, "at most 2000"),
        ("PATCH", "/me/memories/x", {"json": {"content": "   "}}, 422, "`content`: String should match pattern"),
        ("PATCH", "/me/memories/x", {"json": {"text": "hi"}}, 422, "`content`: Field required"),
        ("PATCH", "/me/memories/x", {"content": b"not json"}, 422, "JSON object"),
        ("PATCH", "/me/profile", {"json": ["name"]}, 422, "JSON object"),
        ("PATCH", "/me/profile", {"json": {"shoe size": 44}}, 422, "`shoe size`: String should match pattern"),
        ("PATCH", "/me/profile", {"json": {"address": {"city": "Lyon"}}}, 422, "text, a number, a boolean"),
        ("PATCH", "/me/profile", {"content": b'{"height": NaN}'}, 422, "JSON object"),
        (
            "PATCH",
            "/me/profile",
            {"content": b'{"height": Infinity}', "headers": {"Content-Type": "application/json"}},
            422,
            "Infinity is not JSON",
        ),
        (
            "PATCH",
            "/me/profile",
            {"content": b'{"height": 1e400}', "headers": {"Content-Type": "application/json"}},
            422,
            "`height`: Input should be a finite number",
        ),
        ("PATCH", "/me/profile", {"json": {"name": "x" * 501}}, 422, "`name`: String should have at most 500"),
        ("PATCH", "/me/profile", {"json": {"interests": ["x"] * 51}}, 422, "`interests`: List should have at most 50"),
        ("PATCH", "/me/profile", {"json": {"interests": "tea"}}, 422, "`interests`: Input should be a valid list"),
        ("PATCH", "/me/profile", {"json": {f"f{i}": 1 for i in range(51)}}, 422, "at most 50 fields"),
        ("GET", "/me/memories/x/history", {"params": {"user_id": "someone"}}, 422, "The user is always the token's"),
        ("GET", "/me/records", {"params": {"user_id": "someone"}}, 422, "The user is always the token's"),
        ("POST", "/me/memories/x/undo", {"params": {"user_id": "someone"}}, 422, "The user is always the token's"),
        ("GET", "/me/deleted-memories", {"params": {"limit": 0}}, 422, "`limit`: Input should be greater than"),
        ("GET", "/me/deleted-memories", {"params": {"offset": 10001}}, 422, "`offset`: Input should be less than"),
        (
            "PUT",
            "/store/items",
            {"json": {"namespace": ["memories", "{me}"], "key": "k", "value": {"content": "x" * 2001}}},
            413,
            "limit is 2000",
        ),
        (
            "PUT",
            "/store/items",
            {"json": {"namespace": ["notes", "{me}"], "key": "k", "value": {"t": "x" * 20000}}},
            413,
            "bytes as JSON",
        ),
        (
            "PUT",
            "/store/items",
            {"json": {"namespace": ["a", "{me}", "b", "c", "d"], "key": "k", "value": {}}},
            422,
            "at most 4",
        ),
        (
            "PUT",
            "/store/items",
            {"json": {"namespace": ["my notes", "{me}"], "key": "k", "value": {}}},
            422,
            "may only contain",
        ),
        (
            "PUT",
            "/store/items",
            {"json": {"namespace": ["notes", "{me}"], "key": "k" * 300, "value": {}}},
            422,
            "at most 256",
        ),
        (
            "POST",
            "/store/items/search",
            {"json": {"namespace_prefix": ["memories", "{me}"], "query": "q" * 1001}},
            422,
            "too long",
        ),
        (
            "POST",
            "/store/items/search",
            {"json": {"namespace_prefix": ["memories", "{me}"], "limit": 1000}},
            422,
            "between 1 and 100",
        ),
        ("POST", "/store/namespaces", {"json": {"prefix": ["memories", "{me}"], "max_depth": 10}}, 422, "max_depth"),
    ],
)
async def test_over_a_bound_is_a_4xx_that_says_which(
    secure_server: DevServer, method: str, path: str, kwargs: dict[str, Any], status: int, reason: str
) -> None:
    user = new_user()
    if "json" in kwargs and isinstance(kwargs["json"], dict) and "{me}" in str(kwargs["json"]):
        kwargs = {"json": _with_user(kwargs["json"], user)}
    async with http_client(secure_server, token(user)) as me:
        if path.startswith("/me/memories/x"):
            path = path.replace("/me/memories/x", f"/me/memories/{await put_memory(me, user, 'Something')}")
        response = await me.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert reason in response.json()["detail"], response.text


def _with_user(body: dict[str, Any], user: str) -> dict[str, Any]:
    def swap(value: Any) -> Any:
        if isinstance(value, list):
            return [user if v == "{me}" else v for v in value]
        return value

    return {key: swap(value) for key, value in body.items()}


async def test_with_auth_off_the_routes_act_for_the_local_user(server: DevServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30) as anyone:
        key = str(uuid.uuid4())
        text = f"Local memory {key}"
        body = {"namespace": ["memories", "local-user"], "key": key, "value": {"content": text}}
        (await anyone.put("/store/items", json=body)).raise_for_status()
        assert (await anyone.get(f"/me/memories/{key}")).json()["content"] == text
        assert (await anyone.delete(f"/me/memories/{key}")).status_code == 204
        too_long = {"namespace": ["memories", "local-user"], "key": key, "value": {"content": "x" * 5000}}
        response = await anyone.put("/store/items", json=too_long)
        assert response.status_code == 413 and "limit is 2000" in response.json()["detail"]


def operations(schema: schemathesis.BaseSchema) -> list[APIOperation]:
    """The schema's operations; a route whose description does not parse fails the test here."""
    found = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        found.append(result.ok())
    return found


@pytest.fixture(scope="module")
def routes_schema(secure_server: DevServer) -> dict[str, Any]:
    """The server's OpenAPI document, as clients get it (with a token, like every route but /ok)."""
    url = f"{secure_server.url}/openapi.json"
    response = httpx.get(url, headers=bearer(token(new_user())), trust_env=False, timeout=30)
    document: dict[str, Any] = response.raise_for_status().json()
    return document


def memory_routes(document: dict[str, Any], base_url: str, *, without_auth: bool = False) -> schemathesis.BaseSchema:
    """The ``/me/`` operations of ``document``; ``without_auth`` drops their security requirement.

    The fuzzer sends a valid token itself: left in, the requirement makes it generate (and, in
    negative mode, mutate) the Authorization header, so most requests would only test auth.
    """
    document = copy.deepcopy(document)
    if without_auth:
        document.pop("security", None)
        for path, item in document["paths"].items():
            if path.startswith("/me/"):
                for operation in item.values():
                    if isinstance(operation, dict):
                        operation.pop("security", None)
    schema = schemathesis.openapi.from_dict(document).include(path_regex="^/me/")
    schema.config.update(base_url=base_url)
    return schema


def test_the_routes_are_described_in_the_openapi_schema(
    secure_server: DevServer, routes_schema: dict[str, Any]
) -> None:
    for path, item in routes_schema["paths"].items():
        if path.startswith("/me/"):
            assert all(operation["security"] == [{"BearerAuth": []}] for operation in item.values()), path
    described = sorted(
        f"{operation.method.upper()} {operation.path}"
        for operation in operations(memory_routes(routes_schema, secure_server.url))
    )
    assert described == [
        "DELETE /me/memories",
        "DELETE /me/memories/{memory_id}",
        "DELETE /me/profile",
        "GET /me/deleted-memories",
        "GET /me/export",
        "GET /me/memories",
        "GET /me/memories/{memory_id}",
        "GET /me/memories/{memory_id}/history",
        "GET /me/memory-failures",
        "GET /me/profile",
        "GET /me/records",
        "PATCH /me/memories/{memory_id}",
        "PATCH /me/profile",
        "POST /me/memories/{memory_id}/undo",
        "POST /me/memory-failures/{failure_id}/retry",
    ]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_the_routes_from_their_schema_finds_no_server_error(
    secure_server: DevServer,
    routes_schema: dict[str, Any],
    mode: GenerationMode,
) -> None:
    user = new_user()
    session = requests.Session()
    session.trust_env = False  # loopback only, whatever proxy the environment configures
    headers = dict(bearer(token(user)))
    with httpx.Client(base_url=secure_server.url, headers=headers, trust_env=False) as me:
        for text in ("Likes tea", "Lives in Lyon"):
            body = {"namespace": ["memories", user], "key": str(uuid.uuid4()), "value": {"content": text}}
            me.put("/store/items", json=body).raise_for_status()
    calls: list[int] = []
    for operation in operations(memory_routes(routes_schema, secure_server.url, without_auth=True)):
        raw = operation.definition.raw
        if mode is GenerationMode.NEGATIVE and not (raw.get("parameters") or raw.get("requestBody")):
            continue  # nothing to make invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(base_url=secure_server.url, session=session, headers=headers)
            calls.append(response.status_code)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
            )
            case.validate_response(response, headers=headers)

        fuzz()
    summary = f"schemathesis {mode.value}: {len(calls)} requests, statuses {dict(sorted(Counter(calls).items()))}"
    SUMMARIES.append(summary)
    assert len(calls) >= 4 and all(status < 500 for status in calls), summary
