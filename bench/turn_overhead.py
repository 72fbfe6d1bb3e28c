"""Memory overhead of one agent turn: recall plus scheduling, with the model's time excluded.

The real ``agent`` graph is compiled with an ``InMemorySaver`` and a store whose semantic index
uses ``HashedEmbeddings`` (a local bag-of-words hash, no network): LangGraph's ``InMemoryStore``
(``langgraph dev``'s default) holding 100, 1,000 or 10,000 distinct memories for the user, and
``AsyncPostgresStore`` on a throwaway embedded PostgreSQL (``bench.synthetic``; the project's
migrations, HNSW and full-text indexes) holding 10,000, bulk-loaded with COPY. The chat model is a
``ScriptedChatModel`` that answers at once with a plain message, so a turn's wall time is
the graph's own work. To schedule as on a server without running one, ``is_server_run`` is
patched to return True and ``get_client`` to return a stub whose ``runs.create`` checks its
arguments against ``memory_run_request`` and returns a run id immediately.

Three variants of one turn (``ainvoke`` of one user message on a fresh thread) are
interleaved, in rotating order, so that they share the machine's noise:

* off: ``recall_limit=0, background_memory=False``. The recall node still reads the profile.
* schedule: ``recall_limit=0, background_memory=True``: the scheduling call alone.
* on: ``recall_limit=5, background_memory=True``: semantic recall and scheduling.

Recall cost includes embedding the query with ``HashedEmbeddings``; a real embedding API
call would add its own network latency on top.
"""

import contextlib
import gc
import itertools
import random
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres.aio import AsyncPostgresStore
from tests.support.fakes import HashedEmbeddings, ScriptedChatModel

import agent.graph
import agent.scheduling
from agent.context import Context
from bench import Section, median, percentile, progress
from bench.synthetic import QUERIES, memory_texts, throwaway_store_database
from deployment.postgres import open_pool, store_index_config
from memory.records import memory_namespace, memory_record

USER_ID = "bench-user"
# (store, memories for the user), measured in this order.
SETUPS = (("in-memory", 100), ("in-memory", 1_000), ("in-memory", 10_000), ("Postgres", 10_000))
VARIANTS = ("off", "schedule", "on")
_FILL_BATCH = 1_000


@dataclass(frozen=True)
class Plan:
    """How long to measure each store and size: up to ``iterations`` rounds within ``budget_s``."""

    iterations: int
    budget_s: float
    warmup: int


FULL = Plan(iterations=200, budget_s=40.0, warmup=5)
QUICK = Plan(iterations=20, budget_s=4.0, warmup=2)


async def filled_store(count: int) -> InMemoryStore:
    """An in-memory store with a semantic index holding ``count`` memories for the user."""
    store = InMemoryStore(index={"embed": HashedEmbeddings(), "dims": 1536, "fields": ["content"]})
    ops = [PutOp(memory_namespace(USER_ID), str(uuid.uuid4()), memory_record(text)) for text in memory_texts(count)]
    for start in range(0, len(ops), _FILL_BATCH):
        await store.abatch(ops[start : start + _FILL_BATCH])
    return store


@contextlib.asynccontextmanager
async def filled_postgres_store(count: int) -> AsyncIterator[AsyncPostgresStore]:
    """A Postgres store (throwaway embedded server, the project's migrations) holding ``count`` memories."""
    embeddings = HashedEmbeddings()
    index = store_index_config(embeddings)
    texts = memory_texts(count)
    vectors = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    async with throwaway_store_database("bench_turns", index) as database:
        prefix = ".".join(memory_namespace(USER_ID))
        await database.load(prefix, [str(uuid.uuid4()) for _ in texts], texts, vectors)
        async with open_pool(database.uri, max_size=2) as pool:
            yield AsyncPostgresStore(pool, index=index)


@contextlib.asynccontextmanager
async def _filled(store: str, count: int) -> AsyncIterator[BaseStore]:
    if store == "Postgres":
        async with filled_postgres_store(count) as postgres:
            yield postgres
    else:
        yield await filled_store(count)


class _StubRuns:
    """``client.runs`` of a server that accepts every memory run at once."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.created = 0

    async def create(self, **kwargs: Any) -> dict[str, str]:
        expected = agent.scheduling.memory_run_request(
            str(kwargs.get("thread_id")), USER_ID, str(kwargs.get("input", {}).get("chat_thread_id")), self.context
        )
        if kwargs != expected:
            raise ValueError(f"Unexpected runs.create arguments: {kwargs!r}, expected {expected!r}")
        self.created += 1
        return {"run_id": str(uuid.uuid4())}


class _StubClient:
    def __init__(self, context: Context) -> None:
        self.runs = _StubRuns(context)


def _answer(messages: Sequence[BaseMessage], tool_names: list[str]) -> AIMessage:
    return AIMessage(content="Here is an idea.")


@dataclass
class SizeResult:
    """Turn wall times, in milliseconds, per variant for one store and size."""

    store: str
    size: int
    times_ms: dict[str, list[float]]
    scheduled: dict[str, int]


async def _measure_size(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    contexts: dict[str, Context],
    stubs: dict[str, _StubClient],
    current: list[str],
    store: str,
    size: int,
    plan: Plan,
) -> SizeResult:
    rng = random.Random(size)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    counter = itertools.count()

    async def turn(variant: str) -> float:
        current[0] = variant
        config = {"configurable": {"thread_id": f"turn-{store}-{size}-{variant}-{next(counter)}"}}
        message = HumanMessage(rng.choice(QUERIES))
        start = time.perf_counter()
        await graph.ainvoke({"messages": [message]}, config, context=contexts[variant])
        return (time.perf_counter() - start) * 1000

    for _ in range(plan.warmup):
        for variant in VARIANTS:
            await turn(variant)
    before = {name: stubs[name].runs.created for name in VARIANTS}
    gc.collect()
    deadline = time.perf_counter() + plan.budget_s
    for iteration in range(plan.iterations):
        shift = iteration % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            times[variant].append(await turn(variant))
        if time.perf_counter() > deadline:
            break
    scheduled = {name: stubs[name].runs.created - before[name] for name in VARIANTS}
    return SizeResult(store=store, size=size, times_ms=times, scheduled=scheduled)


async def run(quick: bool) -> Section:
    """Measure turn wall times with memory off, scheduling only, and fully on, per store and size."""
    plan = QUICK if quick else FULL
    contexts = {
        "off": Context(user_id=USER_ID, recall_limit=0, background_memory=False),
        "schedule": Context(user_id=USER_ID, recall_limit=0, background_memory=True),
        "on": Context(user_id=USER_ID, recall_limit=5, background_memory=True),
    }
    stubs = {name: _StubClient(context) for name, context in contexts.items()}
    # The variant of the turn in progress, so that get_client hands out its stub.
    current = ["off"]
    model = ScriptedChatModel(respond=_answer)

    def load_model(spec: str) -> BaseChatModel:
        model.calls.clear()
        return model

    results: list[SizeResult] = []
    fill_seconds: dict[tuple[str, int], float] = {}
    with (
        patch.object(agent.graph, "load_chat_model", load_model),
        patch.object(agent.scheduling, "is_server_run", lambda config: True),
        patch.object(agent.scheduling, "get_client", lambda: stubs[current[0]]),
    ):
        for kind, size in SETUPS:
            progress(f"turn_overhead: filling the {kind} store with {size:,} memories")
            start = time.perf_counter()
            async with _filled(kind, size) as store:
                fill_seconds[(kind, size)] = time.perf_counter() - start
                graph = agent.graph.builder.compile(checkpointer=InMemorySaver(), store=store)
                progress(f"turn_overhead: measuring turns at {size:,} memories ({kind})")
                results.append(await _measure_size(graph, contexts, stubs, current, kind, size, plan))
                del graph, store
            gc.collect()

    section = Section(
        title="1. Agent turn overhead of memory (model excluded), in-memory store and Postgres",
        columns=[
            "store",
            "memories",
            "turns/variant",
            "off p50",
            "off p95",
            "on p50",
            "on p95",
            "on/off p50",
            "on-off p50",
            "of which sched",
        ],
    )
    for result in results:
        off, sched, on = (result.times_ms[name] for name in VARIANTS)
        off50, sched50, on50 = median(off), median(sched), median(on)
        overhead = on50 - off50
        section.rows.append(
            [
                result.store,
                f"{result.size:,}",
                str(len(on)),
                f"{off50:.2f} ms",
                f"{percentile(off, 95):.2f} ms",
                f"{on50:.2f} ms",
                f"{percentile(on, 95):.2f} ms",
                f"{on50 / off50:.2f}x",
                f"{overhead:.2f} ms",
                f"{sched50 - off50:.2f} ms",
            ]
        )
    scheduled = ", ".join(
        f"{r.store} {r.size:,}: on {r.scheduled['on']}/{len(r.times_ms['on'])}, off {r.scheduled['off']}"
        for r in results
    )
    section.notes += [
        "Wall time of one turn (ainvoke of one user message on a fresh thread); the scripted model "
        "answers instantly, so this is graph work only. 'on' = recall_limit=5 + background_memory; "
        "'off' = recall_limit=0, no background memory (the profile is still read); 'sched' = "
        "scheduling only. Variants interleaved in rotating order after "
        f"{plan.warmup} warm-up rounds; each size measured for at most {plan.iterations} rounds "
        f"or {plan.budget_s:g} s.",
        "on/off p50 = ratio of medians; on-off p50 = absolute memory overhead per turn; of which sched "
        "= sched p50 - off p50, the scheduling part (runs.create stubbed: no network); the rest is recall.",
        "Recall includes embedding the query with HashedEmbeddings (local hashing, ~no cost); a real "
        "embedding API call would add its own latency (typically tens of ms) per turn.",
        f"Memory runs scheduled per size (stub runs.create calls): {scheduled}.",
        "Recall goes through memory.search.search_memories (similarity + BM25): the in-memory store's NumPy "
        "index (built on the first turn, i.e. in the warm-up), Postgres's exact scan of the user's rows (10,000 "
        "is below EXACT_SCAN_LIMIT) and full-text search; Postgres pool of 2 connections.",
        "Store fill time (in memory: HashedEmbeddings, PutOps of 1,000; Postgres: embedded server start, "
        "migrations, COPY and HNSW build): "
        + ", ".join(f"{kind} {size:,}: {seconds:.1f} s" for (kind, size), seconds in fill_seconds.items())
        + ".",
    ]
    return section
