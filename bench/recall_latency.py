"""Recall latency in one user's namespace: the in-memory store vs Postgres, through the project's search.

What is timed is ``await search_memories(store, ("memories", user), q, 5, weights)``, the call the
agent's recall, its search tool and ``GET /me/memories?query=`` make, with 10,000 and 100,000
memories for that one user, for two rankings: similarity alone (``SIMILARITY_ONLY``, whose results
are compared with the exact top 5) and the default (similarity + BM25, what recall uses).
Embedding time is excluded: both stores embed with ``LookupEmbeddings`` (precomputed vectors, see
``bench.synthetic``), so a query costs a dictionary lookup before the search.

* In-memory: LangGraph's ``InMemoryStore`` (what ``langgraph dev`` uses) searched through
  ``memory.memory_index``: the namespace's vectors as one NumPy matrix, exact, in a worker thread.
  The index is built on the namespace's first search (e.g. after a restart); that first search is
  timed apart from the steady state.
* Postgres: ``AsyncPostgresStore`` on a throwaway embedded PostgreSQL 16 + pgvector 0.6.2 (default
  server settings) searched through ``memory.postgres_search`` (exact scan of the user's rows up to
  ``EXACT_SCAN_LIMIT``, else HNSW), with the project's index (HNSW, cosine, m=16,
  ef_construction=200). The memories are bulk-loaded with COPY and the index is rebuilt over all rows
  at each size, as a bulk import would.

The four (store, ranking) searches alternate in rotating order, so that they share the machine's noise.
"""

import gc
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres.aio import AsyncPostgresStore

from bench import Section, percentile, progress
from bench.multi_tenant import Measured, timing_statements
from bench.synthetic import QUERIES, LookupEmbeddings, embed, exact_top, memory_texts, throwaway_store_database
from deployment.postgres import open_pool, store_index_config
from memory import postgres_search
from memory.records import memory_namespace
from memory.search import SIMILARITY_ONLY, RankingWeights, search_memories

USER_ID = "bench-user"
LIMIT = 5
FULL_SIZES = (10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
STORES = ("in-memory", "Postgres")
RANKINGS = {"similarity": SIMILARITY_ONLY, "default": RankingWeights()}
# Issue 8: the in-memory store's recall p50 at 10,000 and 100,000 memories.
IN_MEMORY_TARGET_MS = {10_000: 5.0, 100_000: 50.0}
_FILL_BATCH = 10_000


@dataclass(frozen=True)
class Plan:
    """Rounds per size: each round searches once per (store, ranking); at most ``rounds`` or ``budget_s``."""

    rounds: int
    budget_s: float


FULL = Plan(rounds=200, budget_s=40.0)
QUICK = Plan(rounds=30, budget_s=4.0)


@dataclass
class SizeResult:
    """Both stores at one size: steady-state searches, first searches, load and index times."""

    size: int
    measured: Measured = field(default_factory=Measured)
    first_ms: dict[str, float] = field(default_factory=dict)
    fill_s: float = 0.0
    load_s: float = 0.0
    index_s: float = 0.0


def _path(store: str, ranking: str) -> str:
    return f"{store}, {ranking}"


async def _fill_memory_store(
    lookup: LookupEmbeddings, table: dict[str, Any], texts: Sequence[str], keys: Sequence[str], vectors: np.ndarray
) -> InMemoryStore:
    """A fresh in-memory store holding the memories (vectors as Python lists, as an embedding API returns them)."""
    store = InMemoryStore(index={"embed": lookup, "dims": vectors.shape[1], "fields": ["content"]})
    for start in range(0, len(texts), _FILL_BATCH):
        batch = range(start, min(len(texts), start + _FILL_BATCH))
        table.update({texts[i]: vectors[i].tolist() for i in batch})
        await store.abatch([PutOp(memory_namespace(USER_ID), keys[i], {"content": texts[i]}) for i in batch])
        for i in batch:  # the store keeps its own reference; the lookup table need not
            del table[texts[i]]
    return store


async def _measure(
    stores: dict[str, BaseStore], plan: Plan, vectors: np.ndarray, keys: list[str], query_vectors: np.ndarray
) -> Measured:
    namespace = memory_namespace(USER_ID)
    exact = [{keys[i] for i in exact_top(vectors, query_vectors[q], LIMIT)} for q in range(len(QUERIES))]
    paths = [(store, ranking) for store in STORES for ranking in RANKINGS]
    measured = Measured()
    current = [""]
    gc.collect()
    deadline = time.perf_counter() + plan.budget_s
    with timing_statements(measured, current):
        for round_number in range(plan.rounds):
            q = round_number % len(QUERIES)
            shift = round_number % len(paths)
            for store, ranking in paths[shift:] + paths[:shift]:
                path = current[0] = _path(store, ranking)
                start = time.perf_counter()
                found = await search_memories(stores[store], namespace, QUERIES[q], LIMIT, RANKINGS[ranking])
                measured.ms[path].append((time.perf_counter() - start) * 1000)
                measured.fill[(path, LIMIT)].append(len(found) / LIMIT)
                if ranking == "similarity":
                    measured.recall[(path, LIMIT)].append(len({item.key for item in found} & exact[q]) / LIMIT)
            if time.perf_counter() > deadline:
                break
    return measured


async def _first_searches(stores: dict[str, BaseStore], result: SizeResult) -> None:
    """The first search of each store at this size: the in-memory one builds the namespace's index."""
    for store in STORES:
        start = time.perf_counter()
        await search_memories(stores[store], memory_namespace(USER_ID), QUERIES[0], LIMIT)
        result.first_ms[store] = (time.perf_counter() - start) * 1000


async def run(quick: bool) -> Section:
    """Measure recall latency in one user's namespace at each size, on both stores."""
    plan = QUICK if quick else FULL
    sizes = QUICK_SIZES if quick else FULL_SIZES
    largest = sizes[-1]
    progress(f"recall_latency: embedding {largest:,} synthetic memories")
    texts = memory_texts(largest)
    vectors = embed(texts, unique=True)
    query_vectors = embed(QUERIES, unique=False)
    keys = [str(uuid.uuid4()) for _ in range(largest)]
    table: dict[str, Any] = dict(zip(QUERIES, query_vectors.tolist(), strict=True))
    lookup = LookupEmbeddings(table)
    prefix = ".".join(memory_namespace(USER_ID))
    results: list[SizeResult] = []
    async with throwaway_store_database("bench_recall", store_index_config(lookup)) as database:
        loaded = 0
        async with open_pool(database.uri, max_size=2) as pool:
            pg_store = AsyncPostgresStore(pool, index=store_index_config(lookup))
            for size in sizes:
                result = SizeResult(size=size)
                progress(f"recall_latency: loading {size:,} memories into both stores")
                result.load_s, result.index_s = await database.load(
                    prefix, keys[loaded:size], texts[loaded:size], vectors[loaded:size]
                )
                loaded = size
                start = time.perf_counter()
                memory_store = await _fill_memory_store(lookup, table, texts[:size], keys[:size], vectors[:size])
                result.fill_s = time.perf_counter() - start
                stores: dict[str, BaseStore] = {"in-memory": memory_store, "Postgres": pg_store}
                progress(f"recall_latency: searching at {size:,} memories")
                await _first_searches(stores, result)
                result.measured = await _measure(stores, plan, vectors[:size], keys[:size], query_vectors)
                results.append(result)
                del stores, memory_store
                gc.collect()
    return _report(results, plan, quick)


def _postgres_scan(result: SizeResult) -> str:
    short = sum(result.measured.hnsw_short[_path("Postgres", ranking)] for ranking in RANKINGS)
    scan = "exact" if result.size <= postgres_search.EXACT_SCAN_LIMIT else "HNSW"
    return f"{scan}, {short} short->exact" if short else scan


def _report(results: Sequence[SizeResult], plan: Plan, quick: bool) -> Section:
    section = Section(
        title="Recall latency in one user's namespace: in-memory vs Postgres, through search_memories (k=5)",
        columns=[
            "memories",
            "store",
            "first search",
            "similarity p50",
            "p95",
            "default p50",
            "p95",
            "n",
            "recall@5",
            "Postgres scan",
        ],
    )
    for r in results:
        m = r.measured
        for store in STORES:
            similarity, default = _path(store, "similarity"), _path(store, "default")
            section.rows.append(
                [
                    f"{r.size:,}",
                    store,
                    f"{r.first_ms[store]:.1f} ms",
                    f"{percentile(m.ms[similarity], 50):.2f} ms",
                    f"{percentile(m.ms[similarity], 95):.2f} ms",
                    f"{percentile(m.ms[default], 50):.2f} ms",
                    f"{percentile(m.ms[default], 95):.2f} ms",
                    str(len(m.ms[default])),
                    f"{np.mean(m.recall[(similarity, LIMIT)]):.3f}",
                    _postgres_scan(r) if store == "Postgres" else "",
                ]
            )
    ratios = []
    for r in results:
        for ranking in RANKINGS:
            memory_ms = percentile(r.measured.ms[_path("in-memory", ranking)], 50)
            postgres_ms = percentile(r.measured.ms[_path("Postgres", ranking)], 50)
            ratios.append(f"{r.size:,} {ranking}: {postgres_ms / memory_ms:.3g}x")
    targets = []
    for r in results:
        if r.size in IN_MEMORY_TARGET_MS:
            p50, target = percentile(r.measured.ms[_path("in-memory", "default")], 50), IN_MEMORY_TARGET_MS[r.size]
            verdict = "met" if p50 <= target else "MISSED"
            targets.append(f"{r.size:,}: default p50 {p50:.2f} ms (target <= {target:g} ms, {verdict})")
    section.notes += [
        "Latency of one search_memories(limit=5) in the user's namespace, 1536-dim dense synthetic embeddings "
        f"looked up, not computed. {len(QUERIES)} distinct queries in rotation; per round one search per "
        f"(store, ranking), in rotating order; up to {plan.rounds} rounds or {plan.budget_s:g} s per size. "
        "similarity = SIMILARITY_ONLY; default = RankingWeights() (similarity + BM25), what recall uses.",
        "first search = the first search_memories at that size (default ranking): in memory it builds the "
        "namespace's NumPy index from the store's items (as after a restart); Postgres has just built its "
        "HNSW index and ANALYZEd.",
        "recall@5 (similarity ranking) = share of the exact top 5 (NumPy over the same vectors) returned. The "
        "in-memory index is exact; Postgres scans the user's rows exactly up to "
        f"EXACT_SCAN_LIMIT={postgres_search.EXACT_SCAN_LIMIT:,}, above it walks HNSW (HNSW_EF_SEARCH="
        f"{postgres_search.HNSW_EF_SEARCH}) and falls back to the exact scan if short. The synthetic memories "
        "repeat 7,680 word combinations, so at 100,000 the best twenty are within ~0.01 cosine of each other "
        "and an approximate index swaps near ties.",
        "Postgres p50 / in-memory p50: " + ", ".join(ratios) + ".",
        "Issue 8 target, in-memory recall: " + "; ".join(targets) + "." if targets else "",
        "Postgres: pool of 2 connections, embedded server with default settings (shared_buffers 128 MB). "
        "Bulk load (COPY) + index build, and in-memory fill (PutOps of 10,000): "
        + ", ".join(f"{r.size:,}: {r.load_s:.1f} s + {r.index_s:.1f} s, fill {r.fill_s:.1f} s" for r in results)
        + ".",
    ]
    section.notes = [note for note in section.notes if note]
    if quick:
        section.notes.append("Quick run: 1,000 and 10,000 memories (100,000 takes minutes to load and index).")
    return section
