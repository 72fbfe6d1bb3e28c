"""Chat model loading shared by both graphs, with errors that say what to set."""

from functools import lru_cache
from typing import Any

from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel


class ModelConfigurationError(ValueError):
    """The configured model cannot be used; the message says what to change."""


@lru_cache(maxsize=32)
def load_chat_model(spec: str, *, timeout: float | None = None, max_retries: int | None = None) -> BaseChatModel:
    """Load a chat model from a ``provider:model`` string, e.g. ``openai:gpt-4.1-mini``.

    Loading is deferred to the first run that needs the model, so the server starts
    without credentials and the error reaches the run that can report it.

    ``timeout`` (seconds per request) and ``max_retries`` go to the provider's own client
    (None: its default). We rely on it to retry: the openai and anthropic clients retry
    408, 409, 429 and 5xx answers and timeouts with exponential backoff and jitter, and
    honour the server's ``Retry-After``.
    """
    client: dict[str, Any] = {"timeout": timeout, "max_retries": max_retries}
    provider, sep, model = spec.partition(":")
    if not sep or not provider or not model:
        raise ModelConfigurationError(
            f"Model {spec!r} is not of the form 'provider:model'. "
            "Set the `model` setting to e.g. 'openai:gpt-4.1-mini' or 'anthropic:claude-sonnet-4-5'."
        )
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
