"""Exact, fast search for LangGraph's in-memory store (``langgraph dev``'s default).

``InMemoryStore.search`` compares the query with every stored vector in Python lists, on the
caller's thread: 0.44 s at 10,000 memories, 9 s at 100,000, on the server's event loop. Here
each namespace keeps its vectors as one normalized NumPy matrix (one matrix-vector product per
search, exact) and an inverted index of its terms for BM25, both kept up to date as items are
written, and searches run in a worker thread.

The store itself is unchanged, and so is ``langgraph dev``'s persistence: the index is derived
from the store's own items and vectors, built on a namespace's first search (for example after
a restart) and then kept current. LangGraph's store has no change hook, and every write, sync
or async, goes through ``InMemoryStore._apply_put_ops``; ``index_of`` therefore gives the store
a subclass of its own class that also tells the index which keys changed (its ``__slots__``
leave no room for an instance attribute). Scanning the namespace for changes at each search
instead would cost 10 ms and more at 100,000 memories.
"""

from __future__ import annotations

import gc
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langgraph.store.base import Item
from langgraph.store.memory import InMemoryStore

from memory import lexical
from memory.records import memory_text

Namespace = tuple[str, ...]
# Where a store's index is kept: its own index configuration, which lives and dies with it.
_CONFIG_KEY = "__memory_search_index"
_INITIAL_CAPACITY = 64
# Changes above which indexing pauses the garbage collector (see ``_collector_paused``).
_BULK = 1_000


@dataclass
class Candidates:
    """The candidates of one search: items with their cosine similarity and BM25 score."""

    items: dict[str, Item] = field(default_factory=dict)
    similarity: dict[str, float] = field(default_factory=dict)
    lexical: dict[str, float] = field(default_factory=dict)


class NamespaceIndex:
    """One namespace's vectors (a matrix, one row per key) and term postings."""

    def __init__(self, dims: int) -> None:
        self.keys: list[str | None] = []
        self.row_of: dict[str, int] = {}
        self.indexed: dict[str, Item] = {}
        self.matrix = np.zeros((_INITIAL_CAPACITY, dims), dtype=np.float32)
        self.postings: dict[str, dict[int, int]] = defaultdict(dict)
        self.lengths = np.zeros(_INITIAL_CAPACITY, dtype=np.float32)
        self.alive = np.zeros(_INITIAL_CAPACITY, dtype=bool)
        self.row_terms: dict[int, list[str]] = {}
        self.total_length = 0.0

    @property
    def size(self) -> int:
        """Live rows."""
        return len(self.row_of)

    def _remove(self, key: str) -> None:
        self.indexed.pop(key, None)
        row = self.row_of.pop(key, None)
        if row is None:
            return
        self.keys[row] = None
        self.alive[row] = False
        self.matrix[row] = 0.0
        self.total_length -= float(self.lengths[row])
        self.lengths[row] = 0.0
        for term in self.row_terms.pop(row, []):
            postings = self.postings.get(term)
            if postings is not None:
                postings.pop(row, None)
                if not postings:
                    del self.postings[term]

    def _grow(self) -> None:
        capacity = len(self.lengths) * 2
        matrix = np.zeros((capacity, self.matrix.shape[1]), dtype=np.float32)
        matrix[: len(self.keys)] = self.matrix[: len(self.keys)]
        lengths = np.zeros(capacity, dtype=np.float32)
        lengths[: len(self.keys)] = self.lengths[: len(self.keys)]
        alive = np.zeros(capacity, dtype=bool)
        alive[: len(self.keys)] = self.alive[: len(self.keys)]
        self.matrix, self.lengths, self.alive = matrix, lengths, alive

    def set(self, item: Item, vector: Sequence[float] | None) -> None:
        """Index (or re-index) ``item``; one without a vector is still found by its words."""
        key = item.key
        self._remove(key)
        self.indexed[key] = item
        text = memory_text(item.value)
        if len(self.keys) >= len(self.lengths):
            if len(self.row_of) < len(self.keys) // 2:
                self._compact()
            if len(self.keys) >= len(self.lengths):
                self._grow()
        row = len(self.keys)
        self.keys.append(key)
        self.row_of[key] = row
        self.alive[row] = True
        if vector is not None:
            array = np.asarray(vector, dtype=np.float32)
            norm = float(np.linalg.norm(array))
            if norm > 0 and array.shape[0] == self.matrix.shape[1]:
                self.matrix[row] = array / norm
        counts = lexical.term_counts(text)
        for term, frequency in counts.items():
            self.postings[term][row] = frequency
        self.row_terms[row] = list(counts)
        length = float(sum(counts.values()))
        self.lengths[row] = length
        self.total_length += length

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        self._remove(key)

    def _compact(self) -> None:
        """Drop deleted rows, so the matrix does not grow with churn."""
        live = [(key, row) for row, key in enumerate(self.keys) if key is not None]
        old_to_new = {row: new for new, (_, row) in enumerate(live)}
        rows = [row for _, row in live]
        self.matrix[: len(rows)] = self.matrix[rows]
        self.matrix[len(rows) :] = 0.0
        self.lengths[: len(rows)] = self.lengths[rows]
        self.lengths[len(rows) :] = 0.0
        self.alive[: len(rows)] = True
        self.alive[len(rows) :] = False
        self.keys = [key for key, _ in live]
        self.row_of = {key: new for new, (key, _) in enumerate(live)}
        self.row_terms = {old_to_new[row]: terms for row, terms in self.row_terms.items()}
        self.postings = defaultdict(
            dict,
            {
                term: {old_to_new[row]: frequency for row, frequency in postings.items()}
                for term, postings in self.postings.items()
            },
        )

    def similarities(self, query_vector: Sequence[float]) -> np.ndarray:
        """Cosine similarity of every row with the query (0 for rows without a vector)."""
        query = np.asarray(query_vector, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        used = len(self.keys)
        if norm == 0 or query.shape[0] != self.matrix.shape[1]:
            return np.zeros(used, dtype=np.float32)
        similarities: np.ndarray = self.matrix[:used] @ (query / norm)
        return similarities

    def bm25(self, query_terms: Sequence[str], parameters: lexical.BM25Parameters) -> np.ndarray:
        """BM25 of every row for the query's terms."""
        used = len(self.keys)
        scores = np.zeros(used, dtype=np.float32)
        documents = self.size
        if not documents:
            return scores
        average = self.total_length / documents
        for term in set(query_terms):
            postings = self.postings.get(term)
            if not postings:
                continue
            rows = np.fromiter(postings.keys(), dtype=np.int64, count=len(postings))
            frequencies = np.fromiter(postings.values(), dtype=np.float32, count=len(postings))
            weight = lexical.idf(len(postings), documents)
            scores[rows] += lexical.term_score(weight, frequencies, self.lengths[rows], average, parameters)
        return scores


@contextmanager
def _collector_paused(pause: bool) -> Iterator[None]:
    """Pause the garbage collector while thousands of items are indexed.

    Indexing allocates enough to set off full collections, each walking every stored vector
    (Python lists of floats): 25 s instead of a few to index 100,000 memories.
    """
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _top(scores: np.ndarray, live: np.ndarray, count: int) -> list[int]:
    """Rows of the ``count`` highest scores among live rows, best first."""
    candidates = np.flatnonzero(live)
    if candidates.size == 0 or count <= 0:
        return []
    values = scores[candidates]
    if candidates.size > count:
        part = np.argpartition(-values, count - 1)[:count]
        candidates, values = candidates[part], values[part]
    return [int(row) for row in candidates[np.argsort(-values, kind="stable")]]


class StoreIndex:
    """The search index of one ``InMemoryStore``: a ``NamespaceIndex`` per searched namespace."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.dims = int((store.index_config or {}).get("dims") or 0)
        self.namespaces: dict[Namespace, NamespaceIndex] = {}
        self.dirty: dict[Namespace, set[str]] = defaultdict(set)
        # ``lock`` guards the indexes during a search (worker threads); ``dirty_lock`` only the
        # change log, so a write on the event loop never waits for a search to finish.
        self.lock = threading.Lock()
        self.dirty_lock = threading.Lock()

    def _vector(self, namespace: Namespace, key: str) -> list[float] | None:
        paths: Mapping[str, list[float]] = self.store._vectors.get(namespace, {}).get(key) or {}
        vectors = [vector for vector in paths.values() if vector]
        if not vectors:
            return None
        if len(vectors) == 1:
            return vectors[0]
        return list(np.mean(np.asarray(vectors, dtype=np.float32), axis=0))

    def note_writes(self, keys: Sequence[tuple[Namespace, str]]) -> None:
        """Remember which keys changed; an indexed namespace applies them before its next search."""
        with self.dirty_lock:
            for namespace, key in keys:
                if namespace in self.namespaces:
                    self.dirty[namespace].add(key)

    def _namespace(self, namespace: Namespace) -> NamespaceIndex:
        """The namespace's index, brought up to date with the store (call with ``lock`` held)."""
        items = self.store._data.get(namespace, {})
        with self.dirty_lock:
            index = self.namespaces.get(namespace)
            changed = self.dirty.pop(namespace, set())
            if index is None:
                # Registered before the items are read: a write from now on is logged, and re-applied.
                index = self.namespaces[namespace] = NamespaceIndex(self.dims)
                changed = set(items)
        with _collector_paused(len(changed) > _BULK):
            for key in changed:
                item = items.get(key)
                if item is None:
                    index.delete(key)
                else:
                    index.set(item, self._vector(namespace, key))
        return index

    def candidates(
        self,
        namespace: Namespace,
        query_vector: Sequence[float] | None,
        query_terms: Sequence[str],
        pool: int,
        parameters: lexical.BM25Parameters,
    ) -> Candidates:
        """The top ``pool`` by similarity and the top ``pool`` by BM25, each with both scores. Blocking."""
        with self.lock:
            index = self._namespace(namespace)
            used = len(index.keys)
            live = index.alive[:used]
            similarity = (
                index.similarities(query_vector) if query_vector is not None else np.zeros(used, dtype=np.float32)
            )
            bm25 = index.bm25(query_terms, parameters)
            rows = _top(similarity, live, pool) if query_vector is not None else []
            seen = set(rows)
            rows += [row for row in _top(bm25, live & (bm25 > 0), pool) if row not in seen]
            items = self.store._data.get(namespace, {})
            found = Candidates()
            for row in rows:
                key = index.keys[row]
                item = items.get(key) if key is not None else None
                if key is None or item is None:
                    continue
                found.items[key] = item
                found.similarity[key] = float(similarity[row])
                found.lexical[key] = float(bm25[row])
            return found


_TRACKING_CLASSES: dict[type[InMemoryStore], type[InMemoryStore]] = {}


def _tracking_class(base: type[InMemoryStore]) -> type[InMemoryStore]:
    """``base`` whose writes also tell the store's index which keys changed (same layout)."""
    if getattr(base, "_tells_memory_index", False):
        return base
    tracking = _TRACKING_CLASSES.get(base)
    if tracking is None:

        def _apply_put_ops(self: InMemoryStore, put_ops: dict[tuple[Namespace, str], Any]) -> None:
            base._apply_put_ops(self, put_ops)
            index = (self.index_config or {}).get(_CONFIG_KEY)
            if isinstance(index, StoreIndex):
                index.note_writes(list(put_ops))

        namespace = {"__slots__": (), "_apply_put_ops": _apply_put_ops, "_tells_memory_index": True}
        tracking = _TRACKING_CLASSES[base] = type(base.__name__, (base,), namespace)
    return tracking


def index_of(store: InMemoryStore) -> StoreIndex:
    """The store's search index, created on its first search; from then on it hears every write."""
    index = (store.index_config or {}).get(_CONFIG_KEY)
    if isinstance(index, StoreIndex):
        return index
    index = StoreIndex(store)
    if store.index_config is not None:
        store.__class__ = _tracking_class(type(store))
        store.index_config[_CONFIG_KEY] = index  # type: ignore[literal-required]
    return index
