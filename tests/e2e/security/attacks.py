"""What an attack on another user's data needs: a victim, a ledger of attempts, a verdict.

User A (a fresh "alice-..." per test module) chats, so she has a chat thread, runs, hot-path and background memories, a
memory thread with runs, a pending memory run and a profile, all marked with ``SECRET``.
The attacker knows every id of A's (as if guessed or leaked). Each attempt is recorded in a
ledger; an attempt *leaks* when a request that had to be refused succeeded, when ``SECRET``
appears in what the attacker received (or in a prompt of their runs), when the server failed
(5xx), or when A's data changed.
"""

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from agent.scheduling import memory_thread_id
from tests.support.dev_server import MEMORY_THREAD_SECRET, DevServer
from tests.support.fake_openai import flatten_content
from tests.support.tokens import bearer, hs256

A, B = "alice", "bob"

# Everything user A tells the service carries this marker: if it appears in anything another
# user receives (a response, or a prompt of their runs), A's data leaked.
SECRET = f"S3CR3T-{uuid.uuid4().hex[:12]}"
# What the memory graph extracts from A's conversation: a fact of its own beside the hot-path one
# (the write guard would not store a second copy of that).
BACKGROUND_FACT = f"User keeps a locker at the gym; its code is {SECRET}"


def token(user_id: str, *, admin: bool = False) -> str:
    """A valid token for ``user_id`` on ``secure_server``."""
    return hs256(user_id, roles=["admin"] if admin else [])


def http_client(server: DevServer, token: str | None) -> httpx.AsyncClient:
    """Raw HTTP as the holder of ``token`` (no Authorization header when None)."""
    # trust_env=False: a proxy configured for package registries must not see loopback calls.
    return httpx.AsyncClient(base_url=server.url, headers=bearer(token) if token else {}, trust_env=False, timeout=60)


def refused(response: httpx.Response) -> bool:
    """Nothing was delivered: a 4xx (or 501), or a 200 that carries only a refusal.

    Streams answer 200 before checking: a stream whose only event is a 404 error, or that ends
    without any event, delivered nothing. Protocol endpoints (event-streaming commands,
    JSON-RPC) answer 200 with the error inside.
    """
    if not response.is_success:
        # 501: the operation does not exist on this deployment (e.g. thread storage with a custom checkpointer).
        return 400 <= response.status_code < 500 or response.status_code == 501
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("text/event-stream"):
        events = [line for line in response.text.splitlines() if line.startswith("event:")]
        return not events or (events == ["event: error"] and "404" in response.text)
    if content_type.startswith("application/json"):
        body = response.json()
        return isinstance(body, dict) and (body.get("type") == "error" or ("error" in body and "result" not in body))
    return False


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

    def summary(self, title: str) -> str:
        """One line: the attempts per surface and the leaks (with what leaked)."""
        surfaces = Counter(attempt.surface for attempt in self.attempts)
        counts = ", ".join(f"{surface} {count}" for surface, count in surfaces.items())
        leaks = "".join(f"\n  LEAK {a.surface}: {a.description}: {a.problem}" for a in self.leaks)
        return f"{title}: {len(self.attempts)} attempts ({counts}), {len(self.leaks)} leaks{leaks}"


@dataclass
class Victim:
    """A's user id and ids, and a snapshot of her data to compare against after the attacks."""

    user: str
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


async def prepare_victim(server: DevServer, user: str) -> Victim:
    """``user`` (user A), with data of every kind marked with ``SECRET``."""
    async with http_client(server, token(user)) as alice:
        chat_thread = (await alice.post("/threads", json={})).raise_for_status().json()["thread_id"]
        reply = await chat(
            alice, chat_thread, f"Please remember my locker code is {SECRET}", context={"memory_delay_seconds": 1}
        )
        assert reply.status_code == 200 and "__error__" not in reply.json(), reply.text
        memory_thread = memory_thread_id(user, chat_thread, MEMORY_THREAD_SECRET)
        memory_runs = await settle(alice, memory_thread)
        assert [run["status"] for run in memory_runs] == ["success"], memory_runs
        (await alice.patch("/me/profile", json={"name": f"Alice {SECRET}"})).raise_for_status()

        pending_thread = (await alice.post("/threads", json={})).raise_for_status().json()["thread_id"]
        reply = await chat(
            alice, pending_thread, f"More about my locker {SECRET}", context={"memory_delay_seconds": 3600}
        )
        assert reply.status_code == 200, reply.text
        pending = (
            await alice.get(f"/threads/{memory_thread_id(user, pending_thread, MEMORY_THREAD_SECRET)}/runs")
        ).json()
        assert [run["status"] for run in pending] == ["pending"], pending

        memories = (await alice.get("/me/memories")).raise_for_status().json()["items"]
        assert len(memories) == 2 and all(SECRET in m["content"] for m in memories), memories
        ids = {
            "chat_thread": chat_thread,
            "memory_thread": memory_thread,
            "pending_thread": memory_thread_id(user, pending_thread, MEMORY_THREAD_SECRET),
        }
        chat_runs = (await alice.get(f"/threads/{chat_thread}/runs")).json()
        return Victim(
            user=user,
            chat_thread=chat_thread,
            chat_run=chat_runs[0]["run_id"],
            memory_thread=memory_thread,
            memory_run=memory_runs[0]["run_id"],
            pending_thread=ids["pending_thread"],
            memory_id=memories[0]["id"],
            snapshot=await snapshot(alice, ids),
        )


async def assert_victim_untouched(server: DevServer, victim: Victim, ledger: Ledger, surface: str) -> None:
    ids = {
        "chat_thread": victim.chat_thread,
        "memory_thread": victim.memory_thread,
        "pending_thread": victim.pending_thread,
    }
    async with http_client(server, token(victim.user)) as alice:
        now = await snapshot(alice, ids)
    changed = [key for key in victim.snapshot if victim.snapshot[key] != now[key]]
    ledger.check(surface, "A's memories, profile, thread, runs unchanged", f"changed: {changed}" if changed else None)


def own(assertion: bool, what: str) -> str | None:
    return None if assertion else what
