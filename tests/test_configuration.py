"""Configuration: defaults, precedence over the environment, and errors that say what to set."""

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore
from pydantic import ValidationError

from agent.context import Context
from agent.graph import builder
from memory.embeddings import LazyEmbeddings
from memory_graph.context import MemoryContext
from memory_graph.models import ModelConfigurationError, load_chat_model


def test_environment_supplies_defaults_but_never_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_MODEL", "openai:from-env")
    monkeypatch.setenv("MEMORY_DELAY_SECONDS", "90")
    assert Context().model == "openai:from-env"
    assert Context().memory_delay_seconds == 90
    explicit = Context(model="anthropic:claude-x", memory_delay_seconds=0)
    assert explicit.model == "anthropic:claude-x"
    assert explicit.memory_delay_seconds == 0
    assert MemoryContext().model == "openai:from-env"
    monkeypatch.setenv("MEMORY_MODEL", "openai:memory-env")
    assert MemoryContext().model == "openai:memory-env"


async def test_invalid_configuration_fails_the_run_naming_the_setting(store: InMemoryStore) -> None:
    graph = builder.compile(checkpointer=InMemorySaver(), store=store)
    with pytest.raises(ValidationError, match="recall_limit"):
        await graph.ainvoke(
            {"messages": [("user", "hi")]},
            {"configurable": {"thread_id": "t"}},
            context={"recall_limit": -3},
        )
    with pytest.raises(ValidationError, match="memory_without_server"):
        Context(memory_without_server="sometimes")


def test_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelConfigurationError, match=r"set OPENAI_API_KEY in \.env"):
        load_chat_model("openai:gpt-test-no-key")


@pytest.mark.parametrize("spec", ["gpt-4.1-mini", "openai:", ":model"])
def test_model_string_without_provider_says_the_format(spec: str) -> None:
    with pytest.raises(ModelConfigurationError, match="'provider:model'"):
        load_chat_model(spec)


def test_unknown_provider_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelConfigurationError, match="no-such-provider"):
        load_chat_model("no-such-provider:model")


async def test_missing_api_key_fails_the_run_not_the_server(
    monkeypatch: pytest.MonkeyPatch, store: InMemoryStore
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    graph = builder.compile(checkpointer=InMemorySaver(), store=store)
    with pytest.raises(ModelConfigurationError, match="OPENAI_API_KEY"):
        await graph.ainvoke(
            {"messages": [("user", "hi")]},
            {"configurable": {"thread_id": "t"}},
            context={"model": "openai:gpt-run-no-key", "recall_limit": 0},
        )


async def test_embeddings_without_a_key_say_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("EMBEDDING_MODEL", raising=False)
    with pytest.raises(ValueError, match="EMBEDDING_MODEL"):
        await LazyEmbeddings().aembed_query("hello")
