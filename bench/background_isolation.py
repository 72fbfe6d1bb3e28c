"""Chat turn latency while memory runs of a misbehaving model are in flight, on ``langgraph dev``.

The project's ``langgraph.json`` is served by ``langgraph dev`` (``tests.support.dev_server``,
four jobs per worker), with the OpenAI endpoint replaced by the scripted fake. Every
extraction call of the memory graph gets the runaway answer (a ``PatchDoc`` without
``json_doc_id``, the answer that once made one run send 1,001 calls), after
``EXTRACTION_SECONDS`` as a real model would take; chat calls are answered at once.

The user has a memory and a profile, so extraction takes trustcall's patching path. Each
round measures ``turns`` chat turns (``runs.wait`` on a thread whose assistant schedules no
memory run) twice, interleaved: once with no memory run on the server, once while
``LOAD_RUNS`` memory runs are running (each started by a chat turn with
``memory_delay_seconds`` 0 on a conversation of its own). A turn counts as loaded only if a
memory run was running when it started and is still running when it ended.

The memory runs' own reports (model calls, tokens, duration) are read back from their
threads' state at the end.
"""

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from tests.support.dev_server import MEMORY_THREAD_SECRET, DevServer
from tests.support.fake_openai import MEMORY_TOOLS, MISBEHAVIOURS, FakeOpenAI, Rule

from agent.scheduling import memory_thread_id
from bench import Section, percentile, progress

CONFIG_PATH = Path(__file__).resolve().parent.parent / "langgraph.json"
EXTRACTION_SECONDS = 0.2
LOAD_RUNS = 3
FULL = {"rounds": 5, "turns": 8}
QUICK = {"rounds": 2, "turns": 4}
_RULES: list[Rule] = [
    {"when": {"tool": tool}, "then": {**MISBEHAVIOURS["patch_without_id"], "hang": EXTRACTION_SECONDS}}
    for tool in MEMORY_TOOLS
]


class _Bench:
    def __init__(self, client: LangGraphClient, user_id: str) -> None:
        self.client = client
        self.user_id = user_id
        self.chat_assistant = ""
        self.probe_assistant = ""
        self.probe_thread = ""
        self.memory_threads: list[str] = []

    async def setup(self) -> None:
        store = self.client.store
        await store.put_item(["memories", self.user_id], str(uuid.uuid4()), {"content": "User likes tea"})
        await store.put_item(["profile", self.user_id], "profile", {"name": "Ada"}, index=False)
        # Each memory run is one attempt, after which its batch is set aside: no retry runs queue up.
        memory = await self.client.assistants.create(graph_id="memory_graph", context={"batch_attempts": 1})
        chat = await self.client.assistants.create(
            graph_id="agent",
            context={
                "user_id": self.user_id,
                "memory_delay_seconds": 0,
                "memory_assistant_id": memory["assistant_id"],
            },
        )
        probe = await self.client.assistants.create(
            graph_id="agent", context={"user_id": self.user_id, "background_memory": False}
        )
        self.chat_assistant, self.probe_assistant = chat["assistant_id"], probe["assistant_id"]
        self.probe_thread = (await self.client.threads.create())["thread_id"]

    async def turn(self, thread_id: str, assistant_id: str, text: str) -> float:
        start = time.perf_counter()
        await self.client.runs.wait(thread_id, assistant_id, input={"messages": [{"role": "user", "content": text}]})
        return (time.perf_counter() - start) * 1000

    async def memory_running(self) -> bool:
        for thread_id in self.memory_threads[-LOAD_RUNS:]:
            if any(run["status"] == "running" for run in await self.client.runs.list(thread_id, limit=10)):
                return True
        return False

    async def start_load(self) -> None:
        for _ in range(LOAD_RUNS):
            thread_id = (await self.client.threads.create())["thread_id"]
            await self.turn(thread_id, self.chat_assistant, "I moved to Lyon and I cook every evening.")
            self.memory_threads.append(memory_thread_id(self.user_id, thread_id, MEMORY_THREAD_SECRET))
        deadline = time.monotonic() + 10
        while not await self.memory_running() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def probe(self, turns: int, *, loaded: bool) -> list[float]:
        times: list[float] = []
        for n in range(turns):
            if loaded and not await self.memory_running():
                break
            elapsed = await self.turn(self.probe_thread, self.probe_assistant, f"What is {n} times {n}?")
            if not loaded or await self.memory_running():
                times.append(elapsed)
        return times

    async def settle(self) -> list[dict[str, Any]]:
        """The reports of every memory run, once none is running."""
        deadline = time.monotonic() + 120
        while await self._any_active() and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        reports = []
        for thread_id in self.memory_threads:
            state = await self.client.threads.get_state(thread_id)
            values = state["values"]
            if isinstance(values, dict) and values.get("report"):
                reports.append(values["report"])
        return reports

    async def _any_active(self) -> bool:
        for thread_id in self.memory_threads:
            runs = await self.client.runs.list(thread_id, limit=10)
            if any(run["status"] in ("pending", "running") for run in runs):
                return True
        return False


def _row(name: str, times: list[float]) -> list[str]:
    return [name, str(len(times)), f"{percentile(times, 50):.0f} ms", f"{percentile(times, 95):.0f} ms"]


async def run(quick: bool) -> Section:
    """Start the fake and ``langgraph dev``; interleave unloaded and loaded rounds of chat turns."""
    plan = QUICK if quick else FULL
    with FakeOpenAI(rules=_RULES) as fake:
        env = {**fake.env(), "CHAT_MODEL": "openai:gpt-4.1-mini", "MEMORY_MODEL": "openai:gpt-4.1-mini"}
        progress("background_isolation: starting langgraph dev")
        with DevServer(CONFIG_PATH, env) as server:
            bench = _Bench(get_client(url=server.url), f"bench-isolation-{os.urandom(4).hex()}")
            await bench.setup()
            await bench.probe(2, loaded=False)  # warm-up, not counted
            idle: list[float] = []
            loaded: list[float] = []
            for round_number in range(plan["rounds"]):
                progress(f"background_isolation: round {round_number + 1} of {plan['rounds']}")
                idle += await bench.probe(plan["turns"], loaded=False)
                await bench.start_load()
                loaded += await bench.probe(plan["turns"], loaded=True)
                await bench.settle()
            reports = await bench.settle()
            extraction_requests = sum(1 for r in fake.requests() if set(r["tools"]) & set(MEMORY_TOOLS))

    section = Section(
        title="7. Chat turns while a misbehaving model's memory runs are in flight (langgraph dev)",
        columns=["chat turns", "n", "p50", "p95"],
    )
    section.rows += [_row("no memory run", idle), _row("memory runs in flight", loaded)]
    section.rows.append(
        [
            "in flight / none",
            "",
            f"{percentile(loaded, 50) / percentile(idle, 50):.2f}x",
            f"{percentile(loaded, 95) / percentile(idle, 95):.2f}x",
        ]
    )
    calls = [report["model_calls"] for report in reports]
    prompt = [report["prompt_tokens"] for report in reports]
    completion = [report["completion_tokens"] for report in reports]
    duration = [report["duration_seconds"] for report in reports]
    section.notes += [
        f"{plan['rounds']} rounds of up to {plan['turns']} turns each way, interleaved; {LOAD_RUNS} memory runs "
        f"started per loaded round; every extraction call answered after {EXTRACTION_SECONDS} s with a PatchDoc "
        "lacking json_doc_id; chat calls answered at once.",
        "A loaded turn counts only if a memory run was running both when it started and when it ended; "
        "latency is the client-side runs.wait time.",
    ]
    if reports:
        section.notes.append(
            f"Memory runs (from their `report` output): {len(reports)} runs, model calls per run "
            f"{min(calls)}-{max(calls)} ({extraction_requests} extraction requests reached the fake in all), "
            f"prompt tokens per run {min(prompt)}-{max(prompt)}, completion tokens "
            f"{min(completion)}-{max(completion)}, duration {min(duration):.1f}-{max(duration):.1f} s."
        )
    return section
