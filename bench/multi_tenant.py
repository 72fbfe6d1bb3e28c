"""Multi-tenant recall on Postgres: does one user among many get their own nearest memories, and how fast?

The same 100,000 synthetic memories (1536-d dense vectors, ``bench.synthetic``) are shared out
among 1 user x 100,000, 10 x 10,000, 100 x 1,000 and 1,000 x 100 (``("memories", user)``
namespaces), bulk-loaded with COPY into a throwaway embedded PostgreSQL 16 + pgvector 0.6.2 (or a
database on the server of ``BENCH_POSTGRES_URI``, e.g. one with pgvector >= 0.8),
then the project's HNSW index is built and the tables are ANALYZEd, as after a bulk import.
For sampled (user, query) pairs, three searches in the user's namespace are timed, interleaved:

* new, similarity: ``search_memories(store, ns, q, k, SIMILARITY_ONLY)``;
* new, hybrid: ``search_memories(store, ns, q, k)`` (the default ranking: similarity + BM25);
* old: ``store.asearch(ns, query=q, limit=k)``, the store's own search, what recall used before.

fill = results returned / min(k, the user's memories); recall@k = share of the exact top k of the
user's own vectors (NumPy) among the results (not given for hybrid, which re-ranks by words on
purpose). k = 5 and 10, each searched separately. Query embedding is a dictionary lookup
(``LookupEmbeddings``), so times are the search's own; every SQL statement of the new search is
timed too, to show where its time goes. Variant rows (full run) measure what the settings of
``memory.postgres_search`` (``HNSW_EF_SEARCH``, ``EXACT_SCAN_LIMIT``) and PostgreSQL's plan cache
(``plan_cache_mode = force_custom_plan``) change.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import patch

import numpy as np
import psycopg
from langgraph.store.base import SearchItem
from langgraph.store.postgres.aio import AsyncPostgresStore

from bench import Section, percentile, progress
from bench.synthetic import (
    EXTERNAL_SERVER_VARIABLE,
    QUERIES,
    LookupEmbeddings,
    StoreDatabase,
    embed,
    empty_store_tables,
    exact_top,
    memory_texts,
    pgvector_version,
    throwaway_store_database,
)
from deployment.postgres import open_pool, store_index_config
from memory import postgres_search
from memory.records import memory_namespace
from memory.search import SIMILARITY_ONLY, search_memories

KS = (5, 10)
# The 12 hand-written queries of bench.synthetic and new statements phrased like the memories (their
# words, a direction of their own), QUERY_COUNT in all: over 12 queries, one query moves recall 8 points.
QUERY_COUNT = 100
SIMILARITY, HYBRID, OLD = "new, similarity", "new, hybrid", "old: store.asearch"
PATHS = (SIMILARITY, HYBRID, OLD)
# Paths whose results are compared with the exact nearest vectors.
EXACT_PATHS = (SIMILARITY, OLD)
CUSTOM_PLANS = "-c plan_cache_mode=force_custom_plan"
# What each statement of memory.postgres_search is for, by a piece of its text.
STATEMENTS = (
    ("LIMIT %s) mine", "size check"),
    ("extversion", "pgvector version"),
    ("+ 0 AS distance", "exact scan"),
    ("ORDER BY embedding <=>", "HNSW scan"),
    ("q.lexeme", "BM25 term counts"),
    ("count(*) AS n FROM store", "BM25 size"),
    ("t.lexeme", "BM25 matches"),
    ("s.value", "fetch"),
)


@dataclass(frozen=True)
class Plan:
    """Per tenancy: (user, query) pairs from at most ``users`` users, searched for up to ``budget_s``."""

    tenancies: tuple[tuple[int, int], ...]
    users: int
    max_rounds: int
    budget_s: float
    variant_budget_s: float


FULL = Plan(
    tenancies=((1, 100_000), (10, 10_000), (100, 1_000), (1_000, 100)),
    users=30,
    max_rounds=100,
    budget_s=60.0,
    variant_budget_s=12.0,
)
QUICK = Plan(
    tenancies=((1, 5_000), (10, 500), (100, 50), (1_000, 5)), users=10, max_rounds=6, budget_s=3.0, variant_budget_s=1.0
)
MIN_ROUNDS = 5


@dataclass(frozen=True)
class Tenancy:
    """Users x memories each."""

    users: int
    per_user: int

    @property
    def label(self) -> str:
        """E.g. ``10 x 10,000``."""
        return f"{self.users:,} x {self.per_user:,}"


@dataclass(frozen=True)
class Variant:
    """Other settings for the new search: constants of ``memory.postgres_search``, or custom plans."""

    label: str
    settings: Mapping[str, int] = field(default_factory=dict)
    custom_plans: bool = False
    paths: tuple[str, ...] = (SIMILARITY,)


@dataclass
class Measured:
    """Per path: latencies (ms), fill and recall per k; per path and statement: time spent (ms)."""

    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    fill: dict[tuple[str, int], list[float]] = field(default_factory=lambda: defaultdict(list))
    recall: dict[tuple[str, int], list[float]] = field(default_factory=lambda: defaultdict(list))
    statements: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    hnsw_short: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Per path and k: searches that returned under half of the exact top k (one query's failure, not noise).
    misses: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class TenancyResult:
    """One tenancy: the default settings, the variants, and the load and index build times."""

    tenancy: Tenancy
    measured: Measured
    load_s: float
    index_s: float
    variants: list[tuple[Variant, Measured]] = field(default_factory=list)


def _statement(sql: str) -> str:
    return next((label for piece, label in STATEMENTS if piece in sql), "other")


@contextlib.contextmanager
def timing_statements(measured: Measured, current: list[str]) -> Iterator[None]:
    """Time every statement of ``memory.postgres_search``, for the path in ``current[0]``."""
    rows_of = postgres_search._rows

    async def timed(conn: Any, sql: str, params: Any) -> Any:
        start = time.perf_counter()
        rows = await rows_of(conn, sql, params)
        label = _statement(sql)
        measured.statements[(current[0], label)] += (time.perf_counter() - start) * 1000
        if label == "HNSW scan" and len({row["key"] for row in rows}) < params["limit"]:
            measured.hnsw_short[current[0]] += 1
        return rows

    with patch.object(postgres_search, "_rows", timed):
        yield


Search = Callable[[tuple[str, ...], str, int], Awaitable[list[SearchItem]]]


def _searches(store: AsyncPostgresStore) -> dict[str, Search]:
    async def similarity(namespace: tuple[str, ...], query: str, k: int) -> list[SearchItem]:
        return await search_memories(store, namespace, query, k, SIMILARITY_ONLY)

    async def hybrid(namespace: tuple[str, ...], query: str, k: int) -> list[SearchItem]:
        return await search_memories(store, namespace, query, k)

    async def old(namespace: tuple[str, ...], query: str, k: int) -> list[SearchItem]:
        return await store.asearch(namespace, query=query, limit=k)

    return {SIMILARITY: similarity, HYBRID: hybrid, OLD: old}


def _user_id(user: int) -> str:
    return f"user-{user:04d}"


@dataclass(frozen=True)
class Corpus:
    """The memories (keys, texts, vectors) and the queries (texts, vectors), shared out among users per tenancy."""

    keys: list[str]
    texts: list[str]
    vectors: np.ndarray
    queries: list[str]
    query_vectors: np.ndarray


def _queries() -> tuple[list[str], np.ndarray]:
    phrased: list[str] = []
    for text in memory_texts(10 * QUERY_COUNT, seed=99):
        statement = text.split(";")[0]
        if statement not in phrased and len(QUERIES) + len(phrased) < QUERY_COUNT:
            phrased.append(statement)
    return [*QUERIES, *phrased], np.vstack([embed(QUERIES, False), embed(phrased, True, seed=5)])


async def _measure(
    searches: Mapping[str, Search],
    pairs: Sequence[tuple[int, int]],
    tenancy: Tenancy,
    corpus: Corpus,
    budget_s: float,
    paths: Sequence[str] = PATHS,
    ks: Sequence[int] = KS,
) -> Measured:
    """Search (user, query) pairs with each path and k, paths in rotating order, within ``budget_s``."""
    measured = Measured()
    for user, _ in pairs[:2]:  # warm-up: connections, caches
        for path in paths:
            await searches[path](memory_namespace(_user_id(user)), corpus.queries[0], max(ks))
    current = [paths[0]]
    deadline = time.perf_counter() + budget_s
    with timing_statements(measured, current):
        for round_number, (user, query) in enumerate(pairs):
            if round_number >= MIN_ROUNDS and time.perf_counter() > deadline:
                break
            rows = slice(user * tenancy.per_user, (user + 1) * tenancy.per_user)
            keys = corpus.keys[rows]
            namespace = memory_namespace(_user_id(user))
            shift = round_number % len(paths)
            for k in ks:
                expected = min(k, tenancy.per_user)
                exact = {keys[i] for i in exact_top(corpus.vectors[rows], corpus.query_vectors[query], k)}
                for path in [*paths[shift:], *paths[:shift]]:
                    current[0] = path
                    start = time.perf_counter()
                    found = await searches[path](namespace, corpus.queries[query], k)
                    measured.ms[path].append((time.perf_counter() - start) * 1000)
                    measured.fill[(path, k)].append(len(found) / expected)
                    if path in EXACT_PATHS:
                        recall = len({item.key for item in found} & exact) / expected
                        measured.recall[(path, k)].append(recall)
                        measured.misses[(path, k)] += recall < 0.5
    return measured


def _variants(tenancy: Tenancy, total: int) -> list[Variant]:
    """Settings worth measuring at this tenancy."""
    variants = []
    if tenancy.per_user > postgres_search.EXACT_SCAN_LIMIT:
        # Users above EXACT_SCAN_LIMIT: the HNSW candidate list, and the exact scan for contrast.
        variants += [Variant(f"HNSW_EF_SEARCH {ef}", {"HNSW_EF_SEARCH": ef}) for ef in (100, 400, 800)]
        variants.append(Variant(f"EXACT_SCAN_LIMIT {total + 1:,}", {"EXACT_SCAN_LIMIT": total + 1}))
    elif tenancy.per_user > 1_000:
        # Users below EXACT_SCAN_LIMIT, scanned exactly by default: what HNSW would give them.
        limit = tenancy.per_user - 1
        variants += [
            Variant(f"EXACT_SCAN_LIMIT {limit:,}, ef {ef}", {"EXACT_SCAN_LIMIT": limit, "HNSW_EF_SEARCH": ef})
            for ef in (200, 400)
        ]
    variants.append(Variant("custom plans", custom_plans=True, paths=(SIMILARITY, HYBRID)))
    return variants


async def _load(database: StoreDatabase, tenancy: Tenancy, corpus: Corpus) -> tuple[float, float]:
    await empty_store_tables(database.uri)
    prefixes = [".".join(memory_namespace(_user_id(i // tenancy.per_user))) for i in range(len(corpus.keys))]
    return await database.load(prefixes, corpus.keys, corpus.texts, corpus.vectors)


async def run(quick: bool) -> Section:
    """Measure fill, recall@k and latency per tenancy, the new search vs the store's own."""
    plan = QUICK if quick else FULL
    tenancies = [Tenancy(users, per_user) for users, per_user in plan.tenancies]
    total = tenancies[0].users * tenancies[0].per_user
    progress(f"multi_tenant: embedding {total:,} synthetic memories")
    texts = memory_texts(total)
    corpus = Corpus([str(uuid.uuid4()) for _ in range(total)], texts, embed(texts, unique=True), *_queries())
    lookup = LookupEmbeddings(dict(zip(corpus.queries, corpus.query_vectors.tolist(), strict=True)))
    rng = random.Random(5)
    results: list[TenancyResult] = []
    index = store_index_config(lookup)
    async with (
        throwaway_store_database("bench_multi_tenant", index) as database,
        open_pool(database.uri, max_size=2) as pool,
        open_pool(psycopg.conninfo.make_conninfo(database.uri, options=CUSTOM_PLANS), max_size=2) as custom_pool,
    ):
        where = "BENCH_POSTGRES_URI" if os.environ.get(EXTERNAL_SERVER_VARIABLE) else "embedded"
        server = f"{where} PostgreSQL + pgvector {await pgvector_version(database.uri)}"
        searches = _searches(AsyncPostgresStore(pool, index=index))
        custom_searches = _searches(AsyncPostgresStore(custom_pool, index=index))
        for tenancy in tenancies:
            progress(f"multi_tenant: loading {tenancy.label} and building the HNSW index")
            load_s, index_s = await _load(database, tenancy, corpus)
            users = rng.sample(range(tenancy.users), min(plan.users, tenancy.users))
            # Every query once (in random order) before any again, each with a random sampled user.
            order = rng.sample(range(len(corpus.queries)), len(corpus.queries))
            pairs = [(rng.choice(users), order[i % len(order)]) for i in range(plan.max_rounds)]
            progress(f"multi_tenant: searching at {tenancy.label}")
            measured = await _measure(searches, pairs, tenancy, corpus, plan.budget_s)
            result = TenancyResult(tenancy, measured, load_s, index_s)
            for variant in _variants(tenancy, total) if plan.variant_budget_s else []:
                progress(f"multi_tenant: {tenancy.label} with {variant.label}")
                with contextlib.ExitStack() as stack:
                    for name, value in variant.settings.items():
                        stack.enter_context(patch.object(postgres_search, name, value))
                    chosen = custom_searches if variant.custom_plans else searches
                    budget = plan.variant_budget_s
                    varied = await _measure(chosen, pairs, tenancy, corpus, budget, variant.paths, KS[-1:])
                result.variants.append((variant, varied))
            results.append(result)
    return _report(results, plan, quick, server)


def _mean(values: Sequence[float]) -> str:
    return f"{np.mean(values):.3f}" if values else "-"


def _row(label: str, setting: str, measured: Measured, path: str, ks: Sequence[int]) -> list[str]:
    def per_k(values: Mapping[tuple[str, int], list[float]]) -> list[str]:
        return [_mean(values[(path, k)]) if k in ks else "" for k in KS]

    return [
        label,
        path,
        setting,
        *per_k(measured.fill),
        *per_k(measured.recall),
        f"{percentile(measured.ms[path], 50):.1f} ms",
        f"{percentile(measured.ms[path], 95):.1f} ms",
        str(len(measured.ms[path])),
        str(measured.hnsw_short[path]) if path != OLD else "",
    ]


def _breakdown(measured: Measured, path: str) -> str:
    searches = len(measured.ms[path])
    spent = {label: ms / searches for (p, label), ms in measured.statements.items() if p == path and searches}
    listed = ", ".join(f"{label} {ms:.1f}" for label, ms in sorted(spent.items(), key=lambda item: -item[1]))
    return f"{listed} (sum {sum(spent.values()):.1f} of p50 {percentile(measured.ms[path], 50):.1f})"


def _report(results: Sequence[TenancyResult], plan: Plan, quick: bool, server: str) -> Section:
    section = Section(
        title=f"Multi-tenant recall on Postgres: one user's search among many users ({server})",
        columns=[
            "users x memories",
            "search",
            "setting",
            "fill@5",
            "fill@10",
            "recall@5",
            "recall@10",
            "p50",
            "p95",
            "n",
            "HNSW short",
        ],
    )
    for result in results:
        label = result.tenancy.label
        section.rows += [_row(label, "default", result.measured, path, KS) for path in PATHS]
        for variant, measured in result.variants:
            section.rows += [_row(label, variant.label, measured, path, KS[-1:]) for path in variant.paths]
    first = results[0]
    ratio = percentile(first.measured.ms[OLD], 50) / percentile(first.measured.ms[SIMILARITY], 50)
    section.notes += [
        f"Up to {plan.max_rounds} (user, query) pairs per tenancy (users drawn from at most {plan.users}, at least "
        f"{MIN_ROUNDS} pairs, then until {plan.budget_s:g} s); each pair searched at k = 5 and 10 by every path, paths "
        "interleaved in rotating order; n = searches, p50/p95 over both k. Queries: the 12 of bench.synthetic "
        f"and {QUERY_COUNT - len(QUERIES)} statements phrased like the memories, each once before any again, "
        "embedding looked up (no model time). Pool of 2 connections.",
        "fill = results / min(k, the user's memories); recall@k = share of the exact top k of the user's own "
        "vectors (NumPy) returned; hybrid (the default ranking) re-ranks with BM25 on purpose, so only its fill "
        "is compared. HNSW short = searches whose HNSW scan returned fewer of the user's rows than the "
        "candidates asked for (max(k, RankingWeights.candidates = 50)), so that the exact scan ran too.",
        f"Default settings: EXACT_SCAN_LIMIT={postgres_search.EXACT_SCAN_LIMIT:,}, HNSW_EF_SEARCH="
        f"{postgres_search.HNSW_EF_SEARCH}. Other settings: the same pairs at k=10 with one constant of "
        f"memory.postgres_search changed ({plan.variant_budget_s:g} s each), or 'custom plans': the connections "
        "set plan_cache_mode=force_custom_plan (PostgreSQL otherwise may switch a statement prepared on a "
        "connection to a generic plan, blind to the parameters' values, from its 6th run).",
        f"At {first.tenancy.label}: old p50 / new similarity p50 = {ratio:.2f}x.",
        "Searches that returned under half of the exact top k (a query the search got wrong, not a near-tie "
        "swapped): "
        + "; ".join(
            f"{r.tenancy.label}: " + ", ".join(f"k={k} {r.measured.misses[(SIMILARITY, k)]}" for k in KS)
            for r in results
        )
        + " (new similarity).",
        *(
            f"Where the new similarity search spends its time at {r.tenancy.label} (ms per search, SQL statements "
            f"of memory.postgres_search): {_breakdown(r.measured, SIMILARITY)}."
            for r in results
        ),
        "Bulk load (COPY, with the full-text index) + HNSW build: "
        + ", ".join(f"{r.tenancy.label}: {r.load_s:.0f} s + {r.index_s:.0f} s" for r in results)
        + ".",
    ]
    if quick:
        section.notes.append(
            "Quick run: 5,000 memories in all (one user stays below EXACT_SCAN_LIMIT), fewer searches."
        )
    return section
