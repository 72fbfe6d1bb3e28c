"""Recall quality: similarity alone vs ``ranked_search`` (similarity + recency + importance).

The retrieval sets come from ``tests/retrieval_set.py``: one user's memories (facts about the
user and three other people, facts updated once or twice, low-importance chit-chat sharing the
queries' words, unrelated filler) with backdated timestamps, and queries with known answers.
Each set is loaded into an ``InMemoryStore`` whose index uses ``HashedEmbeddings``.

The default weights are chosen by a grid search over ``TUNING_SEEDS`` variants of the set.
Rule: the newer fact must win, so the highest mean "newer wins" rate comes first, then the
highest mean recall@5, then MRR@5. The set the tests use (``DEFAULT_SEED``) is held out of the
search. Grid scores re-rank the similarity order fetched once per query (a prefix of it is what
``ranked_search`` would fetch); the reported with/without figures go through the real
``store.asearch`` and ``ranked_search`` calls with ``RankingWeights()``.
"""

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from langgraph.store.base import SearchItem
from langgraph.store.memory import InMemoryStore
from tests.retrieval_set import DEFAULT_SEED, RetrievalSet, Scores, build_retrieval_set, load_into_store, score
from tests.support.fakes import HashedEmbeddings

from bench import Section, progress
from memory.ranking import RankingWeights, rank, ranked_search
from memory.records import memory_namespace

K = 5
NAMESPACE = memory_namespace("recall-quality")
TUNING_SEEDS = tuple(range(1, 11))
QUICK_TUNING_SEEDS = TUNING_SEEDS[:3]
RECENCY = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 1.0)
IMPORTANCE = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
HALF_LIFE_DAYS = (14.0, 30.0, 60.0, 90.0, 120.0, 180.0, 365.0)
CANDIDATES = (1, 2, 3, 4)
GRID = tuple(
    RankingWeights(recency=recency, importance=importance, recency_half_life_days=half_life, candidates=candidates)
    for recency, importance, half_life, candidates in itertools.product(RECENCY, IMPORTANCE, HALF_LIFE_DAYS, CANDIDATES)
)
SHOWN_ROWS = 5


@dataclass
class _Loaded:
    """One retrieval set in its own store, with each query's similarity order fetched once."""

    retrieval_set: RetrievalSet
    store: InMemoryStore
    now: datetime
    pools: dict[str, list[SearchItem]]


async def _load(seed: int) -> _Loaded:
    retrieval_set = build_retrieval_set(seed)
    store = InMemoryStore(index={"embed": HashedEmbeddings(), "dims": 1536, "fields": ["content"]})
    now = await load_into_store(store, NAMESPACE, retrieval_set.memories)
    deepest = K * max(CANDIDATES)
    pools = {
        query.id: await store.asearch(NAMESPACE, query=query.text, limit=deepest) for query in retrieval_set.queries
    }
    return _Loaded(retrieval_set, store, now, pools)


def _grid_scores(loaded: _Loaded, weights: RankingWeights) -> Scores:
    returned = {
        query_id: [item.key for item in rank(pool[: K * weights.candidates], weights, loaded.now)[:K]]
        for query_id, pool in loaded.pools.items()
    }
    return score(loaded.retrieval_set.queries, returned, K)


async def _measured(loaded: _Loaded, weights: RankingWeights | None) -> Scores:
    """Scores through the real calls: ``store.asearch`` when ``weights`` is None, else ``ranked_search``."""
    returned: dict[str, list[str]] = {}
    for query in loaded.retrieval_set.queries:
        if weights is None:
            items = await loaded.store.asearch(NAMESPACE, query=query.text, limit=K)
        else:
            items = await ranked_search(loaded.store, NAMESPACE, query.text, K, weights, now=loaded.now)
        returned[query.id] = [item.key for item in items]
    return score(loaded.retrieval_set.queries, returned, K)


def _mean(scores: Sequence[Scores]) -> Scores:
    return Scores(
        recall=statistics.mean(s.recall for s in scores),
        mrr=statistics.mean(s.mrr for s in scores),
        newer_wins=statistics.mean(s.newer_wins for s in scores),
    )


def _describe(weights: RankingWeights) -> str:
    return (
        f"rec {weights.recency:g}, imp {weights.importance:g}, "
        f"half-life {weights.recency_half_life_days:g} d, cand {weights.candidates}"
    )


def _row(label: str, where: str, scores: Scores, versus: Scores | None = None) -> list[str]:
    """A table row; with ``versus``, each figure also shows its change against it."""

    def cell(value: float, base: float | None) -> str:
        return f"{value:.3f}" if base is None else f"{value:.3f} ({value - base:+.3f})"

    return [
        label,
        where,
        cell(scores.recall, versus.recall if versus else None),
        cell(scores.mrr, versus.mrr if versus else None),
        f"{scores.newer_wins:.2f}",
    ]


async def run(quick: bool) -> Section:
    """Grid-search the weights on the tuning variants, then compare with similarity alone."""
    seeds = QUICK_TUNING_SEEDS if quick else TUNING_SEEDS
    progress(f"recall_quality: loading {len(seeds)} tuning variants and the held-out set")
    tuning = [await _load(seed) for seed in seeds]
    held_out = await _load(DEFAULT_SEED)

    progress(f"recall_quality: scoring {len(GRID)} weight settings")
    grid = {weights: _mean([_grid_scores(loaded, weights) for loaded in tuning]) for weights in GRID}
    ordered = sorted(grid.items(), key=lambda entry: (entry[1].newer_wins, entry[1].recall, entry[1].mrr), reverse=True)
    picked = ordered[0][0]
    best_recall = max(grid.items(), key=lambda entry: (entry[1].recall, entry[1].mrr))

    defaults = RankingWeights()
    held_base, held_ranked = await _measured(held_out, None), await _measured(held_out, defaults)
    per_variant = [(await _measured(loaded, None), await _measured(loaded, defaults)) for loaded in tuning]
    tuning_base = _mean([base for base, _ in per_variant])
    tuning_ranked = _mean([ranked for _, ranked in per_variant])
    up = sum(ranked.recall > base.recall for base, ranked in per_variant)
    down = sum(ranked.recall < base.recall for base, ranked in per_variant)

    if picked == defaults:
        agreement = "the same"
    elif quick:
        agreement = "different, as a quick run searches fewer variants"
    else:
        agreement = "DIFFERENT: update the defaults or the grid"
    held = held_out.retrieval_set
    held_where = f"held-out (seed {DEFAULT_SEED})"
    tuning_where = f"tuning mean ({len(seeds)})"
    section = Section(
        title="4. Recall quality: similarity alone vs similarity + recency + importance",
        columns=["ranking", "set", "recall@5", "MRR@5", "newer wins"],
    )
    section.rows += [
        _row("similarity only", held_where, held_base),
        _row("ranked, defaults", held_where, held_ranked, held_base),
        _row("similarity only", tuning_where, tuning_base),
        _row("ranked, defaults", tuning_where, tuning_ranked, tuning_base),
    ]
    section.rows += [
        _row(f"grid #{place}: {_describe(weights)}", tuning_where, scores, tuning_base)
        for place, (weights, scores) in enumerate(ordered[:SHOWN_ROWS], start=1)
    ]
    section.rows.append(_row(f"best recall: {_describe(best_recall[0])}", tuning_where, best_recall[1], tuning_base))
    updated = sum(query.updated for query in held.queries)
    section.notes += [
        f"Held-out set: {len(held.memories)} memories, {len(held.queries)} queries, {updated} of them "
        "updated facts (only the newest version answers). Tuning variants: the same generator with seeds "
        f"{seeds[0]}-{seeds[-1]}, each of similar size. Similarity = InMemoryStore cosine over "
        "HashedEmbeddings, the tests' hashed bag-of-words fake: real embeddings would change the absolute "
        "numbers (and the size of the similarity gaps recency has to overcome).",
        "recall@5 = share of a query's answers in the top 5, averaged over queries; MRR@5 = reciprocal rank "
        "of the first answer in the top 5 (0 if none); newer wins = share of updated-fact queries whose newest "
        "version is in the top 5 above every older version there. Brackets: change vs similarity only.",
        f"Grid: {len(GRID)} settings (similarity weight fixed at 1, since only ratios matter), ordered by "
        "newer wins, then recall@5, then MRR@5, averaged over the tuning variants; the held-out set is not "
        f"used. Grid pick: {_describe(picked)}; RankingWeights() defaults: {_describe(defaults)} "
        f"({agreement}).",
        f"With the defaults, recall@5 rose on {up} and fell on {down} of the {len(seeds)} tuning variants. "
        "The 'best recall' row is the trade-off: less recency keeps more old-but-valid facts in the top 5, "
        "but then a superseded fact outranks its update more often.",
    ]
    if quick:
        section.notes.append(
            f"Quick run: grid over {len(seeds)} tuning variants only; the defaults come from the full run."
        )
    return section
