"""Tests of the test harness: the fake OpenAI server and the ``langgraph dev`` runner.

They use the real ``openai`` client and langchain-openai, since the point of the
fake is that the product's clients parse its answers exactly as OpenAI's.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from langgraph_sdk import get_client
from pydantic import SecretStr

from tests.support.dev_server import DevServer
from tests.support.fake_openai import FAKE_API_KEY, FakeOpenAI, FakeOpenAIClient, embed_text, misbehaving_rules


@tool
def remember(fact: str) -> str:
    """Store a fact about the user."""
    return "stored"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def chat_model(fake: FakeOpenAI, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model="fake-chat", base_url=fake.base_url, api_key=SecretStr(FAKE_API_KEY), max_retries=0, **kwargs
    )


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_chat_openai_invoke_parses_scripted_tool_call_and_usage(fake: FakeOpenAI) -> None:
    fake.set_rules(
        [
            {
                "when": {"tool": "remember"},
                "then": {"tool_calls": [{"name": "remember", "arguments": {"fact": "{last_user}"}}]},
            }
        ]
    )
    reply = chat_model(fake).bind_tools([remember]).invoke("I live in Lyon")

    assert [(call["name"], call["args"]) for call in reply.tool_calls] == [("remember", {"fact": "I live in Lyon"})]
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    assert reply.usage_metadata is not None and reply.usage_metadata["input_tokens"] > 0
    [logged] = fake.requests()
    assert logged["tools"] == ["remember"]
    assert logged["stream"] is False
    assert logged["messages"] == [{"role": "user", "content": "I live in Lyon"}]


@pytest.mark.asyncio
async def test_chat_openai_astream_accumulates_content_tool_calls_and_usage(fake: FakeOpenAI) -> None:
    fake.set_rules(
        [
            {
                "when": {"contains": "Lyon"},
                "then": {
                    "content": "Noted, you said: {last_user}",
                    "tool_calls": [{"name": "remember", "arguments": {"fact": "lives in Lyon"}}],
                },
            }
        ]
    )
    model = chat_model(fake, stream_usage=True).bind_tools([remember])
    chunks: list[AIMessageChunk] = []
    async for chunk in model.astream("I live in Lyon"):
        assert isinstance(chunk, AIMessageChunk)
        chunks.append(chunk)

    assert len(chunks) > 3, "the reply should arrive in pieces"
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.content == "Noted, you said: I live in Lyon"
    assert [(call["name"], call["args"]) for call in total.tool_calls] == [("remember", {"fact": "lives in Lyon"})]
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] > 0
    assert fake.requests()[0]["stream"] is True


def test_rules_times_last_role_and_fallback(fake: FakeOpenAI) -> None:
    fake.set_rules(
        [
            {"when": {"last_role": "tool"}, "then": {"content": "done"}},
            {"when": {"any_contains": "pirate"}, "then": {"content": "arr"}, "times": 1},
        ]
    )
    model = chat_model(fake)
    conversation: list[BaseMessage] = [
        HumanMessage("remember this"),
        AIMessage("", tool_calls=[{"id": "c1", "name": "remember", "args": {"fact": "x"}}]),
        ToolMessage("stored", tool_call_id="c1"),
    ]

    assert model.invoke([("system", "talk like a pirate"), ("user", "hi")]).content == "arr"
    assert model.invoke([("system", "talk like a pirate"), ("user", "hi")]).content == "OK"
    assert model.invoke(conversation).content == "done"
    assert len(fake.requests()) == 3


def test_content_parts_are_flattened_and_prompt_tokens_estimated(fake: FakeOpenAI) -> None:
    fake.set_rules([{"when": {"contains": "second part"}, "then": {"content": "seen: {last_user}"}}])
    client = openai.OpenAI(base_url=fake.base_url, api_key=FAKE_API_KEY, max_retries=0)
    tools: list[Any] = [{"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}}]
    parts: list[Any] = [{"type": "text", "text": "first part"}, {"type": "text", "text": "second part"}]

    reply = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": parts}], tools=tools, tool_choice="auto"
    )

    assert reply.choices[0].message.content == "seen: first part\nsecond part"
    [logged] = fake.requests()
    assert logged["prompt_tokens"] == (len("first part\nsecond part") + len(json.dumps(tools))) // 4
    assert reply.usage is not None and reply.usage.prompt_tokens == logged["prompt_tokens"]
    assert (logged["tools"], logged["tool_choice"]) == (["noop"], "auto")


def test_error_rule_returns_http_error(fake: FakeOpenAI) -> None:
    fake.set_rules([{"when": {"model": "broken"}, "then": {"error": 503}}])
    client = openai.OpenAI(base_url=fake.base_url, api_key=FAKE_API_KEY, max_retries=0)

    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "hi"}])
    reply = client.chat.completions.create(model="fine", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "OK"
    assert [r["model"] for r in fake.requests()] == ["broken", "fine"]


def test_misbehaving_rules_send_retry_after_and_arguments_that_are_not_json(fake: FakeOpenAI) -> None:
    fake.set_rules(
        [
            {"when": {"model": "limited"}, "then": {"error": 429, "retry_after": 7}},
            {"when": {"model": "sloppy"}, "then": {"tool_calls": [{"name": "remember", "raw_arguments": '{"fact": '}]}},
        ]
    )
    with httpx.Client(trust_env=False) as client:
        body = {"model": "limited", "messages": [{"role": "user", "content": "hi"}]}
        response = client.post(f"{fake.base_url}/chat/completions", json=body)
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    sloppy = ChatOpenAI(model="sloppy", base_url=fake.base_url, api_key=SecretStr(FAKE_API_KEY), max_retries=0)
    reply = sloppy.bind_tools([remember]).invoke("remember this")
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls == [] and [call["name"] for call in reply.invalid_tool_calls] == ["remember"]


def test_misbehaving_modes_script_only_the_memory_graphs_calls(fake: FakeOpenAI) -> None:
    fake.set_rules(misbehaving_rules("unknown_tool"))
    assert chat_model(fake).bind_tools([remember]).invoke("hello").content == "OK"
    with pytest.raises(ValueError, match="unknown misbehaviour"):
        misbehaving_rules("polite")
    with pytest.raises(ValueError, match="retry_after: only goes with 'error'"):
        fake.set_rules([{"then": {"content": "x", "retry_after": 1}}])


def test_malformed_rules_are_rejected(fake: FakeOpenAI) -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        fake.set_rules([{"when": {"containz": "x"}, "then": {"content": "y"}}])  # type: ignore[typeddict-unknown-key]
    with pytest.raises(ValueError, match="unknown keys"):
        FakeOpenAIClient(fake.base_url).set_rules([{"then": {"text": "y"}}])  # type: ignore[typeddict-unknown-key]


def test_embeddings_share_words_and_honour_formats(fake: FakeOpenAI) -> None:
    embeddings = OpenAIEmbeddings(
        model="text-embedding-3-small",
        base_url=fake.base_url,
        api_key=SecretStr(FAKE_API_KEY),
        check_embedding_ctx_length=False,
    )
    coffee, tea, cars = embeddings.embed_documents(
        ["The user drinks black coffee.", "The user drinks green tea!", "Engines, gearboxes and tyres"]
    )
    assert len(coffee) == 1536
    assert math.isclose(cosine(coffee, coffee), 1.0, rel_tol=1e-5)
    assert cosine(coffee, tea) > cosine(coffee, cars)
    # The openai client asked for base64 float32; the decoded vector must match the float form.
    assert coffee == pytest.approx(embed_text("the USER drinks black coffee"), abs=1e-6)

    body = {"model": "m", "input": [[1, 2, 3], "hello"], "dimensions": 8, "encoding_format": "base64"}
    data = httpx.post(f"{fake.base_url}/embeddings", json=body, trust_env=False).json()["data"]
    vectors = [struct.unpack("<8f", base64.b64decode(item["embedding"])) for item in data]
    assert vectors[1] == pytest.approx(embed_text("hello", dims=8), abs=1e-6)
    floats = httpx.post(f"{fake.base_url}/embeddings", json={"input": "hello", "dimensions": 8}, trust_env=False)
    assert floats.json()["data"][0]["embedding"] == pytest.approx(vectors[1], abs=1e-6)
    assert fake.embeddings_count() == 6


def test_http_client_controls_the_server(fake: FakeOpenAI) -> None:
    control = FakeOpenAIClient(fake.base_url)
    control.set_rules([{"when": {"contains": "ping"}, "then": {"content": "pong"}}])
    assert chat_model(fake).invoke("ping").content == "pong"
    assert [r["messages"][-1]["content"] for r in control.requests()] == ["ping"]
    httpx.post(f"{fake.base_url}/embeddings", json={"input": "x"}, trust_env=False)
    assert control.embeddings_count() == 1

    control.reset()
    assert control.requests() == []
    assert control.embeddings_count() == 0
    assert chat_model(fake).invoke("ping").content == "OK"


ECHO_GRAPH = '''
"""A one-node graph asking the (fake) OpenAI model, as the product's graphs do."""

import os
from typing import TypedDict

from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

model = ChatOpenAI(model="fake-chat", max_retries=0)


class State(TypedDict, total=False):
    question: str
    answer: str


async def ask(state: State) -> State:
    reply = await model.ainvoke(state["question"])
    return {"answer": os.environ["ECHO_PREFIX"] + str(reply.content)}


graph = StateGraph(State).add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END).compile()
'''


@pytest.mark.asyncio
async def test_dev_server_starts_and_serves_a_graph(tmp_path: Path, fake: FakeOpenAI) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "echo.py").write_text(ECHO_GRAPH)
    # The .env must be found next to the config, and must not beat the harness's variables.
    (project / ".env").write_text('ECHO_PREFIX="echo: "\nOPENAI_BASE_URL=http://127.0.0.1:9/v1\n')
    config = {"dependencies": ["."], "graphs": {"echo": "./echo.py:graph"}, "env": ".env"}
    (project / "langgraph.json").write_text(json.dumps(config))
    fake.set_rules([{"when": {"contains": "hello"}, "then": {"content": "hi from the fake"}}])

    with DevServer(project / "langgraph.json", env=fake.env()) as server:
        client = get_client(url=server.url)
        thread = await client.threads.create()
        result = await client.runs.wait(thread["thread_id"], "echo", input={"question": "hello"})
        assert isinstance(result, dict)
        assert result["answer"] == "echo: hi from the fake"
        assert fake.requests()[-1]["messages"] == [{"role": "user", "content": "hello"}]

        server.restart()
        assert (await client.threads.get(thread["thread_id"]))["thread_id"] == thread["thread_id"]
        assert (server.workdir / ".langgraph_api").is_dir()
        workdir = server.workdir

    assert not (project / ".langgraph_api").exists()
    assert not workdir.exists()
