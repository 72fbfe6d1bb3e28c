"""Debouncing of background memory runs on the real ``langgraph dev`` server.

The project's own ``langgraph.json`` is served by ``langgraph dev`` (``tests.support.dev_server``)
with the OpenAI endpoint replaced by a scripted fake (``tests.support.fake_openai``), and
driven through ``langgraph_sdk``. For each burst size (1, 5 and 20 turns), a fresh assistant
of graph ``agent`` (context: its own ``user_id``, ``memory_delay_seconds`` = 2) and a fresh
thread get N turns back to back (``runs.wait`` each). Every turn schedules one delayed run
of ``memory_graph`` on the conversation's memory thread (``memory_thread_id`` with the test
servers' secret) with ``multitask_strategy="rollback"``, so scheduled = N.

After the burst we wait until the delay has passed and every run on the memory thread has
finished, then list that thread's runs: runs with status ``success`` were executed. The
in-memory runtime deletes a pending run that a rollback replaces, so replaced runs are
counted from the server log's "Eagerly deleting pending run" lines instead.

Run objects expose only ``created_at`` (for a delayed run: creation time plus the delay)
and ``updated_at`` (last status change). The actual start and end of each run, and its
execution time, are read from the worker's "Background run succeeded" log lines.
"""

import asyncio
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from tests.support.dev_server import MEMORY_THREAD_SECRET, DevServer
from tests.support.fake_openai import FakeOpenAI

from agent.scheduling import memory_thread_id
from bench import Section, median, progress

CONFIG_PATH = Path(__file__).resolve().parent.parent / "langgraph.json"
DELAY_SECONDS = 2
# How long after the delay to keep waiting for the memory run to finish.
SETTLE_TIMEOUT_SECONDS = 20.0
FULL_BURSTS = (1, 5, 20)
QUICK_BURSTS = (1, 5)
_ROLLBACK_LOG_LINE = "Eagerly deleting pending run with rollback action"
_SUCCESS_LOG_LINE = "Background run succeeded"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FIELD = re.compile(r"(\w+)=(\S+)")
_TERMINAL = frozenset({"success", "error", "interrupted", "timeout"})

_RULES: list[Any] = [
    {
        "when": {"tool": "Memory"},
        "then": {
            "tool_calls": [{"name": "Memory", "arguments": {"content": "User is benchmarking the memory service."}}]
        },
    },
    {"when": {"tool": "manage_memory"}, "then": {"content": "Noted, thanks."}},
]
_TURN_TEXTS = [
    "I am planning a trip to Porto next month with my sister and we love small family restaurants.",
    "Can you remind me what I should pack for a rainy weekend by the sea?",
    "By the way, I prefer short answers with bullet points, please.",
    "What is a good way to practise Portuguese for ten minutes a day?",
]


def _when(raw: object) -> datetime:
    return datetime.fromisoformat(str(raw))


def finished_runs(log: str) -> dict[str, dict[str, str]]:
    """Fields of the worker's "Background run succeeded" log lines, by run id."""
    runs: dict[str, dict[str, str]] = {}
    for line in _ANSI.sub("", log).splitlines():
        if _SUCCESS_LOG_LINE in line:
            fields = dict(_FIELD.findall(line))
            if "run_id" in fields:
                runs[fields["run_id"]] = fields
    return runs


@dataclass
class BurstResult:
    """What happened to the memory runs of one burst of chat turns."""

    size: int
    listed: Counter[str]
    executed: int
    rolled_back: int
    extraction_calls: int
    turn_ms: float
    chat_exec_ms: float
    start_gap_s: float | None
    memory_exec_ms: float | None
    end_gap_s: float | None


async def _memory_runs(client: LangGraphClient, thread_id: str) -> list[dict[str, Any]]:
    return [dict(run) for run in await client.runs.list(thread_id, limit=100)]


async def _burst(client: LangGraphClient, server_log: Callable[[], str], fake: FakeOpenAI, size: int) -> BurstResult:
    user_id = f"bench-debounce-{size}-{os.urandom(4).hex()}"
    assistant = await client.assistants.create(
        graph_id="agent",
        context={"user_id": user_id, "memory_delay_seconds": DELAY_SECONDS},
        name=f"bench debounce {size}",
    )
    thread = await client.threads.create()
    chat_thread_id = thread["thread_id"]
    rollbacks_before = server_log().count(_ROLLBACK_LOG_LINE)
    requests_before = len(fake.requests())
    turn_ms: list[float] = []
    for turn in range(size):
        turn_input: dict[str, Any] = {"messages": [{"role": "user", "content": _TURN_TEXTS[turn % len(_TURN_TEXTS)]}]}
        start = time.perf_counter()
        await client.runs.wait(chat_thread_id, assistant["assistant_id"], input=turn_input)
        turn_ms.append((time.perf_counter() - start) * 1000)
    burst_end = time.monotonic()

    # Every memory run of the burst is due at most DELAY_SECONDS after the last turn.
    memory_thread = memory_thread_id(user_id, chat_thread_id, MEMORY_THREAD_SECRET)
    earliest = burst_end + DELAY_SECONDS + 1.0
    deadline = burst_end + DELAY_SECONDS + SETTLE_TIMEOUT_SECONDS
    runs = await _memory_runs(client, memory_thread)
    while time.monotonic() < deadline:
        if time.monotonic() >= earliest and runs and all(run["status"] in _TERMINAL for run in runs):
            break
        await asyncio.sleep(0.25)
        runs = await _memory_runs(client, memory_thread)

    logged = finished_runs(server_log())
    chat_runs = await client.runs.list(chat_thread_id, limit=100)
    chat_logs = [logged[str(run["run_id"])] for run in chat_runs if str(run["run_id"]) in logged]
    last_chat_end = max(
        [_when(fields["run_ended_at"]) for fields in chat_logs] or [_when(run["updated_at"]) for run in chat_runs]
    )
    executed = [run for run in runs if run["status"] == "success"]
    memory_logs = [logged[str(run["run_id"])] for run in executed if str(run["run_id"]) in logged]
    starts = [_when(fields["run_started_at"]) for fields in memory_logs]
    ends = [_when(run["updated_at"]) for run in executed]
    return BurstResult(
        size=size,
        listed=Counter(str(run["status"]) for run in runs),
        executed=len(executed),
        rolled_back=server_log().count(_ROLLBACK_LOG_LINE) - rollbacks_before,
        extraction_calls=sum("Memory" in request["tools"] for request in fake.requests()[requests_before:]),
        turn_ms=median(turn_ms),
        chat_exec_ms=median([float(fields["run_exec_ms"]) for fields in chat_logs]),
        start_gap_s=(min(starts) - last_chat_end).total_seconds() if starts else None,
        memory_exec_ms=max(float(fields["run_exec_ms"]) for fields in memory_logs) if memory_logs else None,
        end_gap_s=(max(ends) - last_chat_end).total_seconds() if ends else None,
    )


def _or_na(value: float | None, template: str) -> str:
    return "n/a" if value is None else template.format(value)


async def run(quick: bool) -> Section:
    """Start the fake OpenAI server and ``langgraph dev``, then run each burst on its own thread."""
    bursts = QUICK_BURSTS if quick else FULL_BURSTS
    results: list[BurstResult] = []
    with FakeOpenAI(rules=_RULES) as fake:
        env = {
            **fake.env(),
            "CHAT_MODEL": "openai:gpt-4.1-mini",
            "MEMORY_MODEL": "openai:gpt-4.1-mini",
            "EMBEDDING_MODEL": "openai:text-embedding-3-small",
        }
        progress("debounce: starting langgraph dev")
        start = time.perf_counter()
        with DevServer(CONFIG_PATH, env) as server:
            startup = time.perf_counter() - start
            client = get_client(url=server.url)
            for size in bursts:
                progress(f"debounce: burst of {size} turn(s)")
                results.append(await _burst(client, server.log_text, fake, size))

    section = Section(
        title=f"3. Debounce on langgraph dev: memory runs per burst (memory_delay_seconds={DELAY_SECONDS})",
        columns=[
            "burst (turns)",
            "scheduled",
            "executed",
            "rolled back",
            "memory runs listed",
            "extraction calls",
            "turn p50",
            "chat exec p50",
            "last turn end -> memory start",
            "memory exec",
            "-> memory end",
        ],
    )
    for result in results:
        section.rows.append(
            [
                str(result.size),
                str(result.size),
                str(result.executed),
                str(result.rolled_back),
                ", ".join(f"{count} {status}" for status, count in sorted(result.listed.items())) or "none",
                str(result.extraction_calls),
                f"{result.turn_ms:.0f} ms",
                f"{result.chat_exec_ms:.0f} ms",
                _or_na(result.start_gap_s, "{:.2f} s"),
                _or_na(result.memory_exec_ms, "{:.0f} ms"),
                _or_na(result.end_gap_s, "{:.2f} s"),
            ]
        )
    scheduled = sum(result.size for result in results)
    executed = sum(result.executed for result in results)
    section.notes += [
        "scheduled = chat turns (each schedules one delayed memory run); executed = memory-thread runs "
        "with status 'success'; rolled back = 'Eagerly deleting pending run with rollback action' lines "
        "in the server log during the burst (replaced pending runs are deleted, so they are not listed).",
        f"Overall {executed} memory runs executed for {scheduled} scheduled ({executed / scheduled:.2f} per turn).",
        "extraction calls = requests offering the 'Memory' tool that reached the fake OpenAI server "
        "(one per executed run and batch of at most 20 new messages).",
        "turn p50 = client-side runs.wait time of a chat turn; chat exec p50 = the server's run_exec_ms "
        "for it (the rest is the dev server's queue wait, not the graph).",
        "memory start = the worker's run_started_at (log); memory exec = its run_exec_ms; memory end = "
        "the run's updated_at; all relative to the last chat run's end (run_ended_at in the log), "
        "server-side clocks. The start includes the queue's pickup latency after the delay.",
        f"langgraph dev startup took {startup:.1f} s (not part of any figure).",
    ]
    return section
