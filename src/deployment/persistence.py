"""Where the graphs keep conversations and memories: Postgres, or the server's own persistence.

``langgraph.json`` points the server at ``checkpointer`` and ``store`` below, which choose:

* **LangGraph Platform** (any server whose runtime is not ``langgraph dev``'s in-memory one,
  told by ``LANGGRAPH_RUNTIME_EDITION``): the platform's own persistence, always;
  ``POSTGRES_URI`` is ignored there.
* **langgraph dev without** ``POSTGRES_URI``: the in-memory default, kept in
  ``.langgraph_api/`` as before.
* **langgraph dev with** ``POSTGRES_URI``: checkpoints in Postgres (``AsyncPostgresSaver``)
  and memories in a pgvector store (``AsyncPostgresStore``, HNSW index) on that server;
  ``POSTGRES_URI=embedded`` starts an embedded PostgreSQL in ``.pgdata/`` first.

In your own process, ``postgres_graphs()`` compiles both graphs on Postgres.

The server loads this file by path, possibly more than once, and without registering it as
a module (so no dataclasses here: they look their module up); it keeps no state of its own.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, NamedTuple

from langchain_core.embeddings import Embeddings
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore
from langgraph.store.postgres.aio import AsyncPostgresStore

from deployment import embedded_postgres
from deployment.postgres import (
    PostgresCheckpointer,
    open_pool,
    postgres_persistence,
    prepare_database,
    redact,
    store_index_config,
)

logger = logging.getLogger(__name__)

POSTGRES_URI_ENV = "POSTGRES_URI"
EMBEDDED = "embedded"
RUNTIME_EDITION_ENV = "LANGGRAPH_RUNTIME_EDITION"
# The runtime of `langgraph dev`; every other one (the platform's) persists on its own.
DEV_RUNTIME_EDITION = "inmem"

Kind = Literal["platform", "memory", "postgres"]


class Mode(NamedTuple):
    """The persistence a server process uses."""

    kind: Kind
    uri: str | None = None
    """For ``postgres``: a connection URI, or ``embedded``."""

    def describe(self) -> str:
        """One line for the server log."""
        if self.kind == "platform":
            return "the platform's own persistence (LangGraph Platform)"
        if self.kind == "memory":
            return "in-memory, saved in .langgraph_api/ (set POSTGRES_URI for Postgres)"
        if self.uri == EMBEDDED:
            return f"Postgres, embedded in {embedded_postgres.data_dir()}"
        return f"Postgres at {redact(self.uri or '')}"


def persistence_mode() -> Mode:
    """Choose the persistence from the server's runtime and ``POSTGRES_URI``."""
    uri = (os.environ.get(POSTGRES_URI_ENV) or "").strip()
    edition = os.environ.get(RUNTIME_EDITION_ENV) or DEV_RUNTIME_EDITION
    if edition != DEV_RUNTIME_EDITION:
        if uri:
            logger.warning("POSTGRES_URI is ignored on LangGraph Platform: the platform's own Postgres is used.")
        return Mode("platform")
    return Mode("postgres", uri) if uri else Mode("memory")


@asynccontextmanager
async def _resolved_uri(uri: str | None) -> AsyncIterator[str]:
    """The URI to connect to; for ``embedded`` (or none), the embedded server's, held meanwhile."""
    if uri and uri != EMBEDDED:
        yield uri
        return
    resolved = await asyncio.to_thread(embedded_postgres.acquire)
    try:
        yield resolved
    finally:
        await asyncio.to_thread(embedded_postgres.release)


def _runtime(module: str) -> Any:
    """A module of the server's runtime (``langgraph_runtime.checkpoint`` or ``.store``)."""
    return importlib.import_module(f"langgraph_runtime.{module}")


class InMemoryRunCleanup(BaseCheckpointSaver[str]):
    """``langgraph dev``'s in-memory checkpointer, plus ``adelete_for_runs``.

    With a ``checkpointer`` entry in langgraph.json, the server deletes a rolled-back run's
    checkpoints through ``adelete_for_runs`` (without one, it edits its in-memory saver
    directly). The in-memory saver lacks that method, so it is added here; all else is
    passed through, and the data stays where it always was.
    """

    def __init__(self, inner: Any) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Pass through."""
        result: CheckpointTuple | None = await self.inner.aget_tuple(config)
        return result

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Pass through."""
        async for item in self.inner.alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Pass through."""
        result: RunnableConfig = await self.inner.aput(config, checkpoint, metadata, new_versions)
        return result

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Pass through."""
        await self.inner.aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """Pass through."""
        await self.inner.adelete_thread(thread_id)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Pass through."""
        version: str = self.inner.get_next_version(current, channel)
        return version

    async def adelete_for_runs(self, run_ids: Iterable[str]) -> None:
        """Delete the checkpoints these runs wrote, as the in-memory runtime itself does."""
        ids = {str(run_id) for run_id in run_ids}
        storage = self.inner.storage
        for thread_id in list(storage):
            for namespace, checkpoints in list(storage[thread_id].items()):
                for checkpoint_id, (_, metadata, _) in list(checkpoints.items()):
                    if self.inner.serde.loads_typed(metadata).get("run_id") in ids:
                        del checkpoints[checkpoint_id]
                        self.inner.writes.pop((thread_id, namespace, checkpoint_id), None)
                if not checkpoints:
                    del storage[thread_id][namespace]


@asynccontextmanager
async def checkpointer() -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The server's checkpointer (``checkpointer.path`` in langgraph.json)."""
    mode = persistence_mode()
    logger.info("Checkpoints: %s.", mode.describe())
    if mode.kind == "platform":
        yield _runtime("checkpoint").Checkpointer()
        return
    if mode.kind == "memory":
        yield InMemoryRunCleanup(_runtime("checkpoint").Checkpointer())
        return
    async with _resolved_uri(mode.uri) as uri:
        await prepare_database(uri, store_index_config())
        async with open_pool(uri) as pool:
            yield PostgresCheckpointer(pool)


@asynccontextmanager
async def store() -> AsyncIterator[BaseStore]:
    """The server's long-term memory store (``store.path`` in langgraph.json).

    In Postgres mode the pgvector index uses the embeddings, dimensions and fields of
    ``memory.embeddings.index_config()``, the ones langgraph.json's ``store.index``
    gives the in-memory store, so both modes index the same text the same way.
    """
    mode = persistence_mode()
    logger.info("Memory store: %s.", mode.describe())
    if mode.kind != "postgres":
        yield _runtime("store").Store()
        return
    index = store_index_config()
    async with _resolved_uri(mode.uri) as uri:
        await prepare_database(uri, index)
        async with open_pool(uri) as pool:
            yield AsyncPostgresStore(pool, index=index)


class PostgresGraphs(NamedTuple):
    """Both graphs compiled on one Postgres checkpointer and store."""

    agent: CompiledStateGraph[Any, Any, Any, Any]
    memory_graph: CompiledStateGraph[Any, Any, Any, Any]
    checkpointer: PostgresCheckpointer
    store: AsyncPostgresStore


@asynccontextmanager
async def postgres_graphs(
    uri: str | None = None, *, embeddings: Embeddings | None = None, pool_max_size: int | None = None
) -> AsyncIterator[PostgresGraphs]:
    """Compile ``agent`` and ``memory_graph`` with a Postgres checkpointer and store, in your process.

    ``uri`` defaults to ``$POSTGRES_URI``; without either (or with ``embedded``) an embedded
    PostgreSQL starts in ``.pgdata/`` and stops when the block ends. The database is
    checked and migrated first (safely when several processes start together); both
    graphs share one connection pool. ``embeddings`` replaces the configured embedding
    model (the index keeps its dimensions and fields).
    """
    from agent.graph import builder as agent_builder
    from memory_graph.graph import builder as memory_builder

    async with (
        _resolved_uri(uri or os.environ.get(POSTGRES_URI_ENV) or None) as resolved,
        postgres_persistence(resolved, embeddings=embeddings, max_size=pool_max_size) as (saver, pg_store),
    ):
        yield PostgresGraphs(
            agent=agent_builder.compile(checkpointer=saver, store=pg_store, name="agent"),
            memory_graph=memory_builder.compile(checkpointer=saver, store=pg_store, name="memory_graph"),
            checkpointer=saver,
            store=pg_store,
        )
