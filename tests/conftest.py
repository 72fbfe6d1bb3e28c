"""Shared fixtures: an in-memory store with hashed embeddings and a scripted model."""

from collections.abc import Callable, Iterator, Sequence

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langgraph.store.memory import InMemoryStore

import agent.graph
import memory_graph.graph
from agent.summarization import SUMMARIZER_PROMPT
from memory_graph.models import load_chat_model
from tests.support.fake_openai import FakeOpenAI
from tests.support.fakes import HashedEmbeddings, ScriptedChatModel, tool_call
from tests.support.postgres import test_postgres  # noqa: F401 (a session fixture: the embedded PostgreSQL)

Handler = Callable[[Sequence[BaseMessage]], AIMessage]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    """The scripted OpenAI-compatible server on loopback, one per test module."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def openai(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """The fake as the provider of every model, its rules reset (models are cached with their clients)."""
    fake.reset()
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    load_chat_model.cache_clear()
    yield fake
    load_chat_model.cache_clear()


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore(index={"embed": HashedEmbeddings(), "dims": 1536, "fields": ["content"]})


class Script:
    """Routes each model call to a handler by what it is for, and records the calls.

    The agent is offered ``manage_memory``; fact extraction ``Memory``; episode extraction
    ``Episode``; langmem's prompt optimizer ``GeneralResponse``; anything else (the profile:
    ``UserProfile`` the first time, then only ``PatchDoc``; custom types) goes to ``other``
    unless ``by_tool`` names one of the offered tools. The agent's history summarizer is offered
    no tools and goes to ``summarize``.
    """

    def __init__(self) -> None:
        self.agent: Handler = lambda messages: AIMessage(content="OK")
        self.extract: Handler = lambda messages: AIMessage(content="")
        self.episode: Handler = lambda messages: AIMessage(content="")
        self.optimize: Handler = lambda messages: tool_call(
            "GeneralResponse", logic="no feedback", update_prompt=False, new_prompt=""
        )
        self.profile: Handler = lambda messages: AIMessage(content="")
        self.summarize: Handler = lambda messages: AIMessage(content="Summary of the earlier turns.")
        self.by_tool: dict[str, Handler] = {}
        self.model = ScriptedChatModel(respond=self._respond)

    def _respond(self, messages: Sequence[BaseMessage], tools: list[str]) -> AIMessage:
        return self._handler(messages, tools)(messages)

    def _handler(self, messages: Sequence[BaseMessage], tools: list[str]) -> Handler:
        if messages and messages[0].text == SUMMARIZER_PROMPT:
            return self.summarize
        for name in tools:
            if name in self.by_tool:
                return self.by_tool[name]
        for name, handler in (
            ("manage_memory", self.agent),
            ("Memory", self.extract),
            ("Episode", self.episode),
            ("GeneralResponse", self.optimize),
        ):
            if name in tools:
                return handler
        return self.profile

    def calls(self, kind: str) -> list[list[BaseMessage]]:
        """Prompts sent for ``kind`` (a handler's name, e.g. 'agent' or 'summarize'), oldest first."""
        handler = getattr(self, kind)
        return [messages for messages, tools in self.model.calls if self._handler(messages, tools) is handler]


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    script = Script()
    monkeypatch.setattr(agent.graph, "load_chat_model", lambda spec, **client: script.model)
    monkeypatch.setattr(memory_graph.graph, "load_chat_model", lambda spec, **client: script.model)
    return script


def prompt_text(messages: Sequence[BaseMessage]) -> str:
    """Everything a model call was shown, as one string."""
    return "\n".join(message.text for message in messages)
