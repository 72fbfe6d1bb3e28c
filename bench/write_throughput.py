"""Write throughput: memories stored per second, by one writer and by eight at once.

A write is ``await store.aput(("memories", user), key, {"content": text})``, the call the
memory graph and the hot-path tool make for each memory; embedding is excluded (vectors are
looked up, see ``bench.synthetic``). Each writer has its own user and writes its memories
one after another.

* Postgres: ``AsyncPostgresStore`` with the project's HNSW index, on a fresh database of a
  throwaway embedded PostgreSQL that already holds 10,000 memories (so the index is not
  empty). "8 writers, 1 store": eight coroutines sharing one store and its pool, as eight
  concurrent runs of one server process do (the store groups their puts into batches).
  "8 writers, 8 stores": each with its own store and pool, as eight processes would.
* In-memory: LangGraph's ``InMemoryStore``, for reference.

Configurations run in rotating order, several rounds; the table shows the median round.
"""

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres.aio import AsyncPostgresStore

from bench import Section, percentile, progress
from bench.synthetic import (
    LookupEmbeddings,
    build_vector_index,
    bulk_load,
    create_database,
    drop_vector_index,
    embed,
    index_definition,
    memory_texts,
    throwaway_postgres,
    vector_dump_ms,
)
from deployment.postgres import open_pool, prepare_database, store_index_config
from memory.records import memory_namespace

WRITERS = 8


@dataclass(frozen=True)
class Plan:
    """Memories written per configuration and round, rounds, and the prefill."""

    writes: int
    rounds: int
    prefill: int


FULL = Plan(writes=800, rounds=3, prefill=10_000)
QUICK = Plan(writes=160, rounds=1, prefill=1_000)


@dataclass
class Round:
    """One configuration's round: how long it took and each write's latency."""

    seconds: float
    latencies_ms: list[float]


async def _write(stores: list[BaseStore], writers: int, texts: list[str]) -> Round:
    """``len(texts)`` writes split over ``writers`` concurrent writers (store i % len(stores))."""
    latencies: list[float] = []
    share = len(texts) // writers

    async def writer(index: int) -> None:
        store = stores[index % len(stores)]
        namespace = memory_namespace(f"writer-{index}-{uuid.uuid4().hex[:6]}")
        for text in texts[index * share : (index + 1) * share]:
            start = time.perf_counter()
            await store.aput(namespace, str(uuid.uuid4()), {"content": text})
            latencies.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(writers)))
    return Round(time.perf_counter() - start, latencies)


async def run(quick: bool) -> Section:
    """Measure memories stored per second with 1 and 8 writers, Postgres and in-memory."""
    plan = QUICK if quick else FULL
    configurations = ["Postgres, 1 writer", "Postgres, 8 writers, 1 store", "Postgres, 8 writers, 8 stores"]
    configurations += ["in-memory, 1 writer", "in-memory, 8 writers"]
    total = plan.prefill + plan.writes * plan.rounds * len(configurations)
    progress(f"write_throughput: embedding {total:,} synthetic memories")
    texts = memory_texts(total, seed=23)
    vectors = embed(texts, unique=True, seed=29)
    lookup = LookupEmbeddings({text: vector for text, vector in zip(texts, vectors.tolist(), strict=True)})
    rounds: dict[str, list[Round]] = {name: [] for name in configurations}
    with throwaway_postgres() as admin_uri:
        uri = create_database(admin_uri, "bench_writes")
        index = store_index_config(lookup)
        await prepare_database(uri, index)
        progress(f"write_throughput: prefilling Postgres with {plan.prefill:,} memories")
        keys = [str(uuid.uuid4()) for _ in range(plan.prefill)]
        prefix = ".".join(memory_namespace("prefill"))
        create_index = await index_definition(uri)
        await drop_vector_index(uri)
        await bulk_load(uri, prefix, keys, texts[: plan.prefill], vectors[: plan.prefill])
        await build_vector_index(uri, create_index)
        memory_store = InMemoryStore(index={"embed": lookup, "dims": index["dims"], "fields": index["fields"]})
        async with AsyncExitStack() as stack:
            pools = [await stack.enter_async_context(open_pool(uri)) for _ in range(WRITERS)]
            pg_stores: list[BaseStore] = [AsyncPostgresStore(pool, index=index) for pool in pools]
            runs: dict[str, Callable[[list[str]], Awaitable[Round]]] = {
                configurations[0]: lambda batch: _write(pg_stores[:1], 1, batch),
                configurations[1]: lambda batch: _write(pg_stores[:1], WRITERS, batch),
                configurations[2]: lambda batch: _write(pg_stores, WRITERS, batch),
                configurations[3]: lambda batch: _write([memory_store], 1, batch),
                configurations[4]: lambda batch: _write([memory_store], WRITERS, batch),
            }
            await _write(pg_stores, WRITERS, texts[: WRITERS * 4])  # warm-up: open and prepare connections
            position = plan.prefill
            for round_index in range(plan.rounds):
                progress(f"write_throughput: round {round_index + 1} of {plan.rounds}")
                shift = round_index % len(configurations)
                for name in configurations[shift:] + configurations[:shift]:
                    batch = texts[position : position + plan.writes]
                    position += plan.writes
                    rounds[name].append(await runs[name](batch))

    section = Section(
        title="6. Write throughput: memories stored per second (embedding excluded)",
        columns=["configuration", "writes/s", "vs 1 writer", "write p50", "write p95", "writes x rounds"],
    )
    single: dict[str, float] = {}
    for name in configurations:
        rates = [len(r.latencies_ms) / r.seconds for r in rounds[name]]
        rate = statistics.median(rates)
        latencies: list[Any] = [latency for r in rounds[name] for latency in r.latencies_ms]
        store_kind = name.split(",")[0]
        if "1 writer" in name:
            single[store_kind] = rate
        section.rows.append(
            [
                name,
                f"{rate:,.0f}",
                f"{rate / single[store_kind]:.2f}x",
                f"{percentile(latencies, 50):.2f} ms",
                f"{percentile(latencies, 95):.2f} ms",
                f"{plan.writes} x {plan.rounds}",
            ]
        )
    section.notes += [
        "writes/s = memories written in a round / the round's wall time, median of the rounds; "
        "write p50/p95 = latency of one aput, over all rounds. Each writer writes to its own user; "
        f"Postgres already held {plan.prefill:,} memories (HNSW index, m=16, ef_construction=200), "
        "and every write adds a row to it. Pools of up to 10 connections.",
        "8 writers, 1 store = eight concurrent runs in one server process; the store batches their "
        "puts. 8 writers, 8 stores = eight pools in this one process, as eight processes would hold, "
        "but sharing this process's CPU: each write costs the client "
        f"{vector_dump_ms():.1f} ms to send its vector (psycopg writes the list as text), and each "
        "write commits once (one WAL flush). Machine: see header.",
    ]
    return section
