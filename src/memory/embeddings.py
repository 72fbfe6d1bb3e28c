"""Embeddings for the store's semantic index, referenced from ``langgraph.json``.

We wrap langchain's embeddings instead of naming ``openai:text-embedding-3-small`` in
``langgraph.json`` directly for two reasons: the real model is built on first use, so the
server starts without an API key; and OpenAI's input-length check is turned off, because it
downloads a tokenizer file at run time, which fails on machines without internet.
"""

import os

from langchain.embeddings import init_embeddings
from langchain_core.embeddings import Embeddings

DEFAULT_EMBEDDING_MODEL = "openai:text-embedding-3-small"
EMBEDDING_DIMS = 1536


class LazyEmbeddings(Embeddings):
    """Embeddings built from the ``EMBEDDING_MODEL`` environment variable on first use."""

    def __init__(self) -> None:
        self._model: Embeddings | None = None

    def _get(self) -> Embeddings:
        if self._model is None:
            spec = os.environ.get("EMBEDDING_MODEL") or DEFAULT_EMBEDDING_MODEL
            provider, _, model = spec.partition(":")
            kwargs: dict[str, object] = {}
            if provider == "openai":
                kwargs = {"check_embedding_ctx_length": False}
            try:
                self._model = init_embeddings(model, provider=provider, **kwargs)
            except Exception as error:
                raise ValueError(
                    f"Embeddings {spec!r} cannot be loaded: {error}. Set EMBEDDING_MODEL "
                    "('provider:model') and the provider's API key (see .env.example)."
                ) from error
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts for indexing."""
        return self._get().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        return self._get().embed_query(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts for indexing."""
        return await self._get().aembed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        return await self._get().aembed_query(text)


embeddings = LazyEmbeddings()


def index_config(embed: Embeddings | None = None) -> dict[str, object]:
    """The store index configuration used outside the server (same as langgraph.json)."""
    return {"embed": embed or embeddings, "dims": EMBEDDING_DIMS, "fields": ["content"]}
