"""Chat model loading shared by both graphs, with errors that say what to set.

It also counts the HTTP requests a model client sends, retries included (``counting_requests``):
the provider's client retries timeouts, 429 and 5xx on its own, so a model call that looks like
one call from outside may have sent several requests, each taking the server's time.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import openai
from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel

# Providers whose langchain model takes an ``http_async_client`` for the openai client (any
# OpenAI-compatible server: OpenAI, vLLM, llama.cpp, Ollama's /v1, ...).
_OPENAI_CLIENT_PROVIDERS = frozenset({"openai", "azure_openai"})


class ModelConfigurationError(ValueError):
    """The configured model cannot be used; the message says what to change."""


@dataclass
class RequestCount:
    """HTTP requests sent to the provider while it was current (see ``counting_requests``)."""

    sent: int = 0


_current_count: ContextVar[RequestCount | None] = ContextVar("memory_graph_request_count", default=None)


@contextmanager
def counting_requests() -> Iterator[RequestCount]:
    """Count the requests the model clients send inside the block, in this task, retries included.

    Only clients of OpenAI-compatible providers are watched (see ``load_chat_model``); with any
    other provider the count stays 0.
    """
    count = RequestCount()
    token = _current_count.set(count)
    try:
        yield count
    finally:
        _current_count.reset(token)


async def _count_request(request: Any) -> None:
    """Count one request: the event hook the HTTP client calls for every try, first and retried alike."""
    count = _current_count.get()
    if count is not None:
        count.sent += 1


def _watched_http_client() -> Any:
    """An HTTP client for the openai SDK that counts its requests.

    httpx event hooks are httpx's public API for seeing every request, and a client of our own
    is how both the openai SDK and langchain-openai (``http_async_client``) let a caller
    customise HTTP; the openai SDK has no request hook of its own. ``DefaultAsyncHttpxClient``
    keeps the SDK's own defaults (connection limits, redirects); the timeout is set per request
    by the SDK from the model's ``timeout``.
    """
    return openai.DefaultAsyncHttpxClient(event_hooks={"request": [_count_request]})


@lru_cache(maxsize=32)
def load_chat_model(spec: str, *, timeout: float | None = None, max_retries: int | None = None) -> BaseChatModel:
    """Load a chat model from a ``provider:model`` string, e.g. ``openai:gpt-4.1-mini``.

    Loading is deferred to the first run that needs the model, so the server starts
    without credentials and the error reaches the run that can report it.

    ``timeout`` (seconds per request) and ``max_retries`` go to the provider's own client
    (None: its default). We rely on it to retry: the openai and anthropic clients retry
    408, 409, 429 and 5xx answers and timeouts with exponential backoff and jitter, and
    honour the server's ``Retry-After``. An OpenAI-compatible model's async requests are
    counted by ``counting_requests``.
    """
    client: dict[str, Any] = {"timeout": timeout, "max_retries": max_retries}
    provider, sep, model = spec.partition(":")
    if not sep or not provider or not model:
        raise ModelConfigurationError(
            f"Model {spec!r} is not of the form 'provider:model'. "
            "Set the `model` setting to e.g. 'openai:gpt-4.1-mini' or 'anthropic:claude-sonnet-4-5'."
        )
    if provider in _OPENAI_CLIENT_PROVIDERS:
        client["http_async_client"] = _watched_http_client()
    try:
        return init_chat_model(model, model_provider=provider, **{k: v for k, v in client.items() if v is not None})
    except ImportError as error:
        raise ModelConfigurationError(
            f"Model provider {provider!r} needs a package that is not installed: {error}. "
            "Install it, or choose another `model`."
        ) from error
    except Exception as error:
        message = str(error)
        if "api_key" in message.lower() or "credentials" in message.lower():
            variable = f"{provider.upper()}_API_KEY"
            raise ModelConfigurationError(
                f"No API key for model {spec!r}: set {variable} in .env (see .env.example), or choose another `model`."
            ) from error
        raise ModelConfigurationError(
            f"Model {spec!r} cannot be loaded: {message} Check the `model` setting ('provider:model')."
        ) from error
