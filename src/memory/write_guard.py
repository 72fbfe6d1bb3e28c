"""What every write of a memory must pass, whoever asked for it: the hot-path tool or the memory graph.

Models repeat themselves and pick wrong ids. A real small model stored "I moved to Porto last
week." eight times (once per extraction batch, although it was shown the stored copy) and
replaced "Ana lives in Lisbon and works as a nurse." with "No meat in recipes please." by
updating the wrong id. So the store, not the model, decides:

* **Third person.** A memory is about the user, so "I moved to Porto" is stored as "User moved
  to Porto" (``third_person``): recall never shows the model an "I" that is the user's.
* **No second copy** (``judge_new``). A new text that an existing memory already says is a
  no-op; one that says all an existing memory says and more replaces it (a merge).
* **No fact lost to an unrelated update** (``is_related``). An update must share a fact word
  with the memory it replaces, or be very close in meaning; otherwise it is not applied.

Facts are compared by their words: stemmed content words (``memory.lexical.terms``, the terms
recall's BM25 uses) plus negations, without the subject word "user". Words decide rather than
embeddings alone because cosine similarity cannot tell "lives in Lisbon" from "lives in Porto"
(0.93 with multilingual-e5) while the words can; embeddings only add near-paraphrases whose
names and numbers match. Thresholds from ``python -m bench --only duplicate_threshold`` on LoCoMo's
observations (distinct facts about one person, multilingual-e5-small): pairs that share no fact
word reach cosine 0.946 at most (p99 0.906), so a related update needs 0.95 without a shared
word; ``judge_new`` calls 34 of 77,182 pairs of distinct observations duplicates or merges, and
those it shows are restatements of one fact ("Gina lost her job at Door Dash.").
"""

import re
import uuid
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.store.base import BaseStore

from memory import lexical
from memory.history import Action, Provenance, record_change
from memory.locks import namespace_scope, user_lock
from memory.records import PROFILE_KEY, memory_text, profile_namespace
from memory.search import cosine_similarity, find_candidates

DUPLICATE_SIMILARITY = 0.95
"""Cosine above which two texts with the same names and numbers and mostly the same words are one fact."""
RELATED_SIMILARITY = 0.95
"""Cosine above which an update sharing no fact word with the memory it replaces still counts as related."""
MERGE_MIN_OVERLAP = 0.5
"""Share of the new text's words an existing memory must hold for the new text to replace it."""
CANDIDATES = 10
"""Nearest memories (by meaning and by words) a new text is compared with."""

_SUBJECT_TERMS = frozenset({"user"})
_NEGATIONS = {"not": "not", "no": "not", "never": "not", "nor": "not", "dont": "not", "doesnt": "not", "didnt": "not"}
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?")
_NAME_OR_NUMBER = re.compile(r"\b(?:[A-Z][\w-]*|\d[\d.,:/-]*)")

# "I <verb>" -> "User <verb>s". Words after "I" that stay as they are: past tense, modals.
_KEEP_AFTER_I = frozenset(
    [
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "did",
        "had",
        "was",
        "went",
        "got",
        "made",
        "said",
        "took",
        "came",
        "saw",
        "knew",
        "thought",
        "felt",
        "left",
        "met",
        "ran",
        "began",
        "bought",
        "brought",
        "became",
        "wrote",
        "ate",
        "drank",
        "grew",
        "gave",
        "found",
        "told",
        "kept",
        "lost",
        "paid",
        "sold",
        "sent",
        "spent",
        "taught",
        "won",
        "heard",
        "read",
        "put",
        "set",
        "let",
        "cut",
        "hurt",
        "quit",
    ]
)
_IRREGULAR = {"am": "is", "have": "has", "do": "does", "go": "goes", "don't": "doesn't", "don\u2019t": "doesn\u2019t"}
_ADVERBS = (
    "also|really|just|never|always|still|usually|often|recently|now|only|even|actually|sometimes|mostly|"
    "rarely|absolutely|definitely|currently|already|generally"
)
_CONTRACTION = re.compile(r"\b[Ii]['\u2019](m|ve|ll|d)\b")
_CONTRACTED = {"m": "is", "ve": "has", "ll": "will", "d": "would"}
_I_VERB = re.compile(rf"\bI((?:\s+(?:{_ADVERBS}))*)\s+([A-Za-z'\u2019]+)")
_I = re.compile(r"\bI\b")
_POSSESSIVE = re.compile(r"\b(?:my|mine)\b", re.IGNORECASE)
_OBJECT = re.compile(r"\b(?:me|myself)\b", re.IGNORECASE)


def _conjugate(verb: str) -> str:
    lowered = verb.lower()
    if lowered in _IRREGULAR:
        return _IRREGULAR[lowered]
    if lowered.endswith(("ed", "n't", "n\u2019t")) or lowered in _KEEP_AFTER_I:
        return verb
    if lowered.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if len(lowered) > 1 and lowered.endswith("y") and lowered[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def third_person(text: str) -> str:
    """The text with the user's "I", "my" and "me" as "User" and "User's": memories are about the user.

    >>> third_person("I live in Lisbon and I'm a nurse; my sister visits me.")
    "User lives in Lisbon and User is a nurse; User's sister visits User."
    """
    text = _CONTRACTION.sub(lambda match: f"User {_CONTRACTED[match.group(1).lower()]}", text)
    text = _I_VERB.sub(lambda match: f"User{match.group(1)} {_conjugate(match.group(2))}", text)
    text = _I.sub("User", text)
    text = _POSSESSIVE.sub("User's", text)
    return _OBJECT.sub("User", text)


def fact_terms(text: str) -> frozenset[str]:
    """The words that carry a fact: stemmed content words and negations, not the subject "user"."""
    words = [word.replace("\u2019", "'").replace("'", "") for word in _WORD.findall(text.lower())]
    negations = {_NEGATIONS[word] for word in words if word in _NEGATIONS}
    return frozenset(lexical.terms(text)) - _SUBJECT_TERMS | negations


def _names_and_numbers(text: str) -> frozenset[str]:
    """Capitalized words after the first and numbers: the parts of a fact that embeddings blur."""
    found = _NAME_OR_NUMBER.findall(text)
    first = _NAME_OR_NUMBER.match(text.lstrip())
    names = found[1:] if first and found and found[0] == first.group(0) else found
    return frozenset(name.lower() for name in names) - {"user", "i"}


def _overlap(small: frozenset[str], large: frozenset[str]) -> float:
    return len(small & large) / len(small | large) if small | large else 1.0


@dataclass(frozen=True)
class Stored:
    """An existing memory a new text is compared with."""

    key: str
    text: str
    similarity: float | None = None


@dataclass(frozen=True)
class Verdict:
    """What to do with a new text: store it, drop it (``duplicate``), or replace ``existing`` with it (``merge``)."""

    action: Literal["new", "duplicate", "merge"]
    existing: Stored | None = None


def judge_new(text: str, stored: Iterable[Stored]) -> Verdict:
    """Whether ``text`` is a new fact, one a stored memory already says, or a fuller version of one."""
    new_terms = fact_terms(text)
    new_names = _names_and_numbers(text)
    for memory in stored:
        old_terms = fact_terms(memory.text)
        if new_terms == old_terms or " ".join(text.lower().split()) == " ".join(memory.text.lower().split()):
            return Verdict("duplicate", memory)
        if not new_terms or ("not" in new_terms) != ("not" in old_terms):
            continue
        if new_terms <= old_terms:
            return Verdict("duplicate", memory)
        if old_terms < new_terms and _overlap(old_terms, new_terms) >= MERGE_MIN_OVERLAP:
            return Verdict("merge", memory)
        if (
            memory.similarity is not None
            and memory.similarity >= DUPLICATE_SIMILARITY
            and new_names <= _names_and_numbers(memory.text)
            and _overlap(new_terms, old_terms) >= MERGE_MIN_OVERLAP
        ):
            return Verdict("duplicate", memory)
    return Verdict("new")


def shared_fact_terms(old: str, new: str, subjects: frozenset[str] = frozenset()) -> frozenset[str]:
    """The fact words two texts share, apart from the user's names (``subject_terms``)."""
    return (fact_terms(old) & fact_terms(new)) - subjects


def is_related(old: str, new: str, similarity: float | None, subjects: frozenset[str] = frozenset()) -> bool:
    """Whether ``new`` may replace ``old``: they share a fact word (not the user's name), or mean nearly the same."""
    if shared_fact_terms(old, new, subjects):
        return True
    return similarity is not None and similarity >= RELATED_SIMILARITY


async def nearest(
    store: BaseStore, namespace: tuple[str, ...], text: str, *, exclude: Sequence[str] = ()
) -> list[Stored]:
    """The stored memories closest to ``text`` in meaning or words, most similar first."""
    found = await find_candidates(store, namespace, text, CANDIDATES)
    stored = [
        Stored(key, memory_text(item.value), found.similarity.get(key))
        for key, item in found.items.items()
        if key not in exclude
    ]
    return sorted(stored, key=lambda memory: memory.similarity or 0.0, reverse=True)


async def subject_terms(store: BaseStore, user_id: str) -> frozenset[str]:
    """The terms of the user's names in their profile: "Ana is..." and "Ana has..." share a subject, not a fact."""
    profile = await store.aget(profile_namespace(user_id), PROFILE_KEY)
    names = [profile.value.get(field) for field in ("name", "preferred_name")] if profile else []
    return frozenset(term for name in names if isinstance(name, str) for term in lexical.terms(name))


async def related_update(store: BaseStore, old: str, new: str, subjects: frozenset[str]) -> bool:
    """``is_related`` with the store's embeddings, which are computed only when the words do not decide."""
    if shared_fact_terms(old, new, subjects):
        return True
    return is_related(old, new, await cosine_similarity(store, old, new), subjects)


Outcome = Literal["created", "updated", "merged", "duplicate", "unchanged", "unrelated"]


@dataclass(frozen=True)
class Written:
    """What ``guarded_write`` did, and the stored memory that decided it (for duplicates, merges, refusals)."""

    outcome: Outcome
    key: str
    existing: str | None = None


def write_lock(store: BaseStore, user_id: str, namespace: tuple[str, ...]) -> AbstractAsyncContextManager[None]:
    """The lock of a user's read-check-write of one namespace: short, unlike the memory graph's per-type lock.

    Every writer of memories holds it: the guard, and the user's own edits and undos.
    """
    return user_lock(store, user_id, namespace_scope(namespace) + ":write")


async def guarded_write(
    store: BaseStore,
    user_id: str,
    namespace: tuple[str, ...],
    value: dict[str, Any],
    provenance: Provenance,
    *,
    key: str | None = None,
) -> Written:
    """Store ``value`` as a new memory (``key`` None) or as the new text of memory ``key``, unless the guard objects.

    A new text an existing memory already says is not stored (``duplicate``); one that says all
    an existing memory says and more replaces it (``merged``). An update to the text the memory
    already has writes nothing (``unchanged``, no history entry); one unrelated to the memory it
    would replace is not applied (``unrelated``): the caller refuses it or stores it as new. An
    update that would repeat another memory is a ``duplicate``. Every write is logged in the history.
    """
    text = memory_text(value)
    async with write_lock(store, user_id, namespace):
        before = await store.aget(namespace, key) if key is not None else None
        if before is not None:
            old = memory_text(before.value)
            if " ".join(old.split()) == " ".join(text.split()):
                return Written("unchanged", before.key, old)
            if not await related_update(store, old, text, await subject_terms(store, user_id)):
                return Written("unrelated", before.key, old)
        verdict = judge_new(text, await nearest(store, namespace, text, exclude=[key] if key else []))
        if verdict.action == "duplicate" and verdict.existing is not None:
            return Written("duplicate", verdict.existing.key, verdict.existing.text)
        target = before
        if before is None and verdict.action == "merge" and verdict.existing is not None:
            target = await store.aget(namespace, verdict.existing.key)
        new_key = target.key if target is not None else str(uuid.uuid4())
        await store.aput(namespace, new_key, value)
        action: Action = "update" if target is not None else "create"
        await record_change(
            store, user_id, namespace, new_key, action, target.value if target else None, value, provenance
        )
    outcome: Outcome = "updated" if before is not None else "merged" if target is not None else "created"
    return Written(outcome, new_key, memory_text(target.value) if target is not None else None)
