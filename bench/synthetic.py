"""Synthetic memories with dense embeddings, a throwaway embedded PostgreSQL, and bulk loading.

Shared by the store benchmarks (``recall_latency``, ``multi_tenant``, ``turn_overhead``, ``write_throughput``).

* Texts: "<subject> <verb> <object> <qualifier>; note <i>." for i = 0, 1, 2 ...
* Embeddings: dense and 1536-dimensional like a real model's, with meaning: each word has a
  fixed random unit direction (seeded by the word), a text's vector is the normalised sum of
  its words' directions plus a direction of its own (its unique "note"). Texts sharing words
  are close; every text is distinct. The hashed test embeddings are far too sparse (a few
  dozen non-zero values) to exercise an HNSW index the way real embeddings do.
* ``LookupEmbeddings`` returns precomputed vectors, so timings exclude embedding cost.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import os
import random
import re
import shutil
import struct
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from langchain_core.embeddings import Embeddings
from langgraph.store.postgres.base import PostgresIndexConfig
from psycopg import sql

from deployment import embedded_postgres
from deployment.postgres import prepare_database

DIMS = 1536
# An admin URI: run the Postgres benchmarks on that server instead of the embedded one.
EXTERNAL_SERVER_VARIABLE = "BENCH_POSTGRES_URI"
# Weight of a text's own direction relative to one word's.
_UNIQUE_WEIGHT = 0.8
_CHUNK = 5_000
_WORD = re.compile(r"[a-z']+")

_SUBJECTS = ["User", "The user", "User's sister", "User's manager", "User's friend", "User's daughter"]
_VERBS = ["loves", "dislikes", "is learning", "recommended", "wants to try", "gave up on", "is allergic to", "collects"]
_OBJECTS = [
    "sourdough baking",
    "trail running",
    "Portuguese grammar",
    "jazz piano",
    "Rust programming",
    "vintage cameras",
    "peanuts",
    "board games",
    "birdwatching",
    "Japanese whisky",
    "climbing in the Alps",
    "watercolour painting",
    "chess openings",
    "electric bikes",
    "the history of Rome",
    "houseplants",
    "sailing lessons",
    "espresso machines",
    "science fiction novels",
    "woodworking",
]
_QUALIFIERS = [
    "since 2019",
    "every Sunday morning",
    "with friends from university",
    "when the weather is bad",
    "on long train journeys",
    "as a way to relax",
    "despite the cost",
    "mostly in the summer",
]
QUERIES = [
    "Any ideas for what I could do this weekend?",
    "Can you suggest a gift for my sister's birthday?",
    "What should I cook for dinner tonight, something with sourdough?",
    "I have a free afternoon, how should I spend it?",
    "Recommend a book for my train journey tomorrow.",
    "What hobby could I pick up to relax in the evenings?",
    "Is there anything I should avoid eating at the party, peanuts maybe?",
    "How can I practise my Portuguese every day?",
    "Suggest a project I could do with my daughter, maybe woodworking.",
    "Which camera should I take climbing in the Alps?",
    "My manager wants to play chess, any openings to learn?",
    "Where could I go sailing this summer?",
]


def memory_texts(count: int, seed: int = 7) -> list[str]:
    """``count`` distinct memory sentences."""
    rng = random.Random(seed)
    return [
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_QUALIFIERS)}; note {i}."
        for i in range(count)
    ]


def _word_vector(word: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.md5(word.encode(), usedforsecurity=False).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(DIMS).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _words(text: str) -> list[str]:
    words: list[str] = _WORD.findall(text.lower().split(";")[0])
    return words


def embed(texts: Sequence[str], unique: bool, seed: int = 11) -> np.ndarray:
    """Unit vectors (float32, one row per text), as described in the module docstring."""
    vocabulary: dict[str, int] = {}
    rows = [[vocabulary.setdefault(word, len(vocabulary)) for word in _words(text)] for text in texts]
    table = np.vstack([np.zeros(DIMS, np.float32), *(_word_vector(word) for word in vocabulary)])
    width = max((len(row) for row in rows), default=1)
    index = np.zeros((len(texts), width), dtype=np.int64)
    for i, row in enumerate(rows):
        index[i, : len(row)] = np.array(row, dtype=np.int64) + 1
    vectors = np.empty((len(texts), DIMS), dtype=np.float32)
    rng = np.random.default_rng(seed)
    for start in range(0, len(texts), _CHUNK):
        chunk = table[index[start : start + _CHUNK]].sum(axis=1)
        if unique:
            own = rng.standard_normal(chunk.shape, dtype=np.float32)
            chunk += _UNIQUE_WEIGHT * own / np.linalg.norm(own, axis=1, keepdims=True)
        vectors[start : start + _CHUNK] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return vectors


class LookupEmbeddings(Embeddings):
    """Precomputed vectors by text: 'embedding' is a dictionary lookup, so it costs ~nothing."""

    def __init__(self, table: Mapping[str, list[float]]) -> None:
        self.table = table

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Look the texts up."""
        return [self.table[text] for text in texts]

    def embed_query(self, text: str) -> list[float]:
        """Look the text up."""
        return self.table[text]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Look the texts up, without the default hop to a thread."""
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Look the text up, without the default hop to a thread."""
        return self.table[text]


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL server for one benchmark; yields its admin URI.

    The embedded one (pgserver: PostgreSQL 16 + pgvector 0.6.2) in a temporary directory, removed
    afterwards; or, when ``BENCH_POSTGRES_URI`` is set, that server (e.g. one with pgvector >= 0.8),
    whose throwaway databases ``create_database`` names uniquely and drops again.
    """
    external = os.environ.get(EXTERNAL_SERVER_VARIABLE)
    if external:
        yield external
        return
    directory = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
    try:
        with embedded_postgres.embedded_postgres(directory / "data") as uri:
            yield uri
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def create_database(admin_uri: str, name: str) -> str:
    """A new database on the server of ``admin_uri``; returns its URI."""
    if os.environ.get(EXTERNAL_SERVER_VARIABLE):
        name = f"{name}_{uuid.uuid4().hex[:8]}"
        atexit.register(_drop_database, admin_uri, name)
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(admin_uri, dbname=name)


def _drop_database(admin_uri: str, name: str) -> None:
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def pgvector_version(uri: str) -> str:
    """The pgvector version of the database at ``uri``."""
    async with await psycopg.AsyncConnection.connect(uri) as conn:
        cursor = await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row: Any = await cursor.fetchone()
        return str(row[0]) if row else "none"


def _prefixes(prefix: str | Sequence[str], count: int) -> Sequence[str]:
    return [prefix] * count if isinstance(prefix, str) else prefix


def _copy_vectors(prefix: str | Sequence[str], keys: Sequence[str], vectors: np.ndarray) -> Iterator[bytes]:
    """``store_vectors`` rows in COPY's binary format, in chunks (pgvector's binary ``vector``)."""
    yield b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    big_endian = vectors.astype(">f4")
    head = struct.pack(">hh", vectors.shape[1], 0)
    field_name = b"content"
    buffer = io.BytesIO()
    for row_prefix, key, vector in zip(_prefixes(prefix, len(keys)), keys, big_endian, strict=True):
        fields = [row_prefix.encode(), key.encode(), field_name, head + vector.tobytes()]
        buffer.write(struct.pack(">h", len(fields)))
        for field in fields:
            buffer.write(struct.pack(">i", len(field)))
            buffer.write(field)
        if buffer.tell() > 8_000_000:
            yield buffer.getvalue()
            buffer = io.BytesIO()
    buffer.write(struct.pack(">h", -1))
    yield buffer.getvalue()


async def bulk_load(
    uri: str, prefix: str | Sequence[str], keys: Sequence[str], texts: Sequence[str], vectors: np.ndarray
) -> None:
    """Insert memories into the store's tables with COPY, as a bulk import would.

    ``prefix`` is the namespace (as the store writes it, e.g. ``memories.<user>``) of every row, or one per row.
    """
    import json

    async with await psycopg.AsyncConnection.connect(uri, autocommit=True) as conn:
        async with conn.cursor() as cur, cur.copy("COPY store (prefix, key, value) FROM STDIN") as copy:
            for row_prefix, key, text in zip(_prefixes(prefix, len(keys)), keys, texts, strict=True):
                await copy.write_row((row_prefix, key, json.dumps({"content": text})))
        statement = "COPY store_vectors (prefix, key, field_name, embedding) FROM STDIN (FORMAT BINARY)"
        async with conn.cursor() as cur, cur.copy(statement) as copy:
            for chunk in _copy_vectors(prefix, keys, vectors):
                await copy.write(chunk)


async def drop_vector_index(uri: str) -> None:
    """Drop the store's vector index, so that a bulk load does not update it row by row."""
    async with await psycopg.AsyncConnection.connect(uri, autocommit=True) as conn:
        await conn.execute("DROP INDEX IF EXISTS store_vectors_embedding_idx")


async def build_vector_index(uri: str, statement: str) -> None:
    """Build the store's vector index over all rows (in parallel), then refresh the planner's statistics."""
    async with await psycopg.AsyncConnection.connect(uri, autocommit=True) as conn:
        await conn.execute("SET maintenance_work_mem = '2GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 2")
        await conn.execute(statement)
        await conn.execute("ANALYZE store")
        await conn.execute("ANALYZE store_vectors")


def vector_dump_ms(samples: int = 50) -> float:
    """Client CPU to send one vector as the Postgres store does: psycopg dumping a list of floats.

    ``AsyncPostgresStore`` passes vectors as Python lists, which psycopg writes as text,
    float by float: a cost of the client, paid per search (twice) and per write.
    """
    import statistics

    from psycopg.adapt import PyFormat, Transformer

    vector = [random.random() for _ in range(DIMS)]
    dumper = Transformer().get_dumper(vector, PyFormat.AUTO)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        dumper.dump(vector)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def index_definition(uri: str) -> str:
    """The ``CREATE INDEX`` statement of the store's vector index, as the store's setup made it."""
    async with await psycopg.AsyncConnection.connect(uri) as conn:
        cursor = await conn.execute("SELECT pg_get_indexdef('store_vectors_embedding_idx'::regclass)")
        row: Any = await cursor.fetchone()
        return str(row[0])


def exact_top(vectors: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Rows of the ``k`` vectors most similar to ``query`` (unit vectors: cosine), best first."""
    scores = vectors @ query
    if len(scores) > k:
        best = np.argpartition(-scores, k - 1)[:k]
        return best[np.argsort(-scores[best])]
    return np.argsort(-scores)


async def empty_store_tables(uri: str) -> None:
    """Delete every memory and vector from the store's tables (the indexes stay)."""
    async with await psycopg.AsyncConnection.connect(uri, autocommit=True) as conn:
        await conn.execute("TRUNCATE store, store_vectors")


@dataclass(frozen=True)
class StoreDatabase:
    """A database migrated as the project migrates it, and the store's ``CREATE INDEX`` for its vectors."""

    uri: str
    create_vector_index: str

    async def load(
        self, prefix: str | Sequence[str], keys: Sequence[str], texts: Sequence[str], vectors: np.ndarray
    ) -> tuple[float, float]:
        """Bulk-load memories with the vector index dropped, then rebuild it; seconds spent on each."""
        await drop_vector_index(self.uri)
        start = time.perf_counter()
        await bulk_load(self.uri, prefix, keys, texts, vectors)
        loaded = time.perf_counter()
        await build_vector_index(self.uri, self.create_vector_index)
        return loaded - start, time.perf_counter() - loaded


@contextlib.asynccontextmanager
async def throwaway_store_database(name: str, index: PostgresIndexConfig) -> AsyncIterator[StoreDatabase]:
    """A throwaway embedded PostgreSQL whose database ``deployment.postgres`` prepared (HNSW and full-text indexes)."""
    with throwaway_postgres() as admin_uri:
        uri = create_database(admin_uri, name)
        await prepare_database(uri, index)
        yield StoreDatabase(uri, await index_definition(uri))
