"""Lexical ranking: BM25 over stemmed words, the half of recall that finds names, numbers and rare words.

Embeddings blur exact tokens: "Which flight did I book, LH 1834 or LH 1843?" is about as
similar to both bookings. BM25 weighs every query word by how rare it is among the user's
memories, so the one memory that holds the rare word comes first.

Words are split, lower-cased, stripped of English stop words and stemmed with the Snowball
English stemmer. That is what PostgreSQL's ``english`` text-search configuration does too
(same stemmer, same stop-word list), so the in-memory index and the Postgres full-text index
produce the same terms and the same BM25 scores, up to the tokenizers' edge cases (hyphens,
URLs).
"""

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import snowballstemmer
from pydantic import BaseModel, ConfigDict, Field

# PostgreSQL's tsearch_data/english.stop, the stop words of its ``english`` configuration.
_ENGLISH_STOP = """
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her
hers herself it its itself they them their theirs themselves what which who whom this that these
those am is are was were be been being have has had having do does did doing a an the and but if or
because as until while of at by for with about against between into through during before after
above below to from up down in out on off over under again further then once here there when where
why how all any both each few more most other some such no nor not only own same so than too very s
t can will just don should now
"""
STOP_WORDS = frozenset(_ENGLISH_STOP.split())
_WORD = re.compile(r"[^\W_]+")
_STEMMER = snowballstemmer.stemmer("english")


class BM25Parameters(BaseModel):
    """BM25's two knobs; the defaults are the best of a grid on LoCoMo (see ``bench.locomo_recall``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    k1: float = Field(default=1.2, ge=0.0, le=10.0, description="Term-frequency saturation (BM25 k1).")
    b: float = Field(
        default=0.4, ge=0.0, le=1.0, description="Length normalization (BM25 b): 0 ignores length, 1 normalizes fully."
    )


@lru_cache(maxsize=65_536)
def _stem(word: str) -> str:
    stem: str = _STEMMER.stemWord(word)
    return stem


def terms(text: str) -> list[str]:
    """The indexed terms of ``text``: lower-cased, stop words dropped, stemmed; in order, with repeats."""
    words = _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))
    return [_stem(word) for word in words if word not in STOP_WORDS]


def idf(document_frequency: int, documents: int) -> float:
    """BM25's inverse document frequency (the non-negative variant Lucene uses)."""
    return math.log(1.0 + (documents - document_frequency + 0.5) / (document_frequency + 0.5))


def term_score(weight: Any, frequency: Any, length: Any, average_length: float, parameters: BM25Parameters) -> Any:
    """One term's BM25 contribution; works on numbers and, element-wise, on NumPy arrays."""
    k1, b = parameters.k1, parameters.b
    norm = k1 * (1.0 - b + b * length / (average_length or 1.0))
    return weight * frequency * (k1 + 1.0) / (frequency + norm)


def bm25(
    term_frequencies: Mapping[str, int],
    length: int,
    query_terms: Iterable[str],
    document_frequencies: Mapping[str, int],
    documents: int,
    average_length: float,
    parameters: BM25Parameters,
) -> float:
    """The BM25 score of one document (its term counts and length) for a query's terms."""
    score = 0.0
    for term in set(query_terms):
        frequency = term_frequencies.get(term, 0)
        if frequency:
            weight = idf(document_frequencies.get(term, 1), documents)
            score += term_score(weight, frequency, length, average_length, parameters)
    return float(score)


def term_counts(text: str) -> Counter[str]:
    """How often each term occurs in ``text``."""
    return Counter(terms(text))
