"""One `langgraph dev` server from the project's langgraph.json, with models scripted."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from playwright.sync_api import Browser, sync_playwright

from agent.scheduling import memory_thread_id
from tests.support.dev_server import MEMORY_THREAD_SECRET, DevServer
from tests.support.fake_openai import FakeOpenAI, LoggedRequest, Rule, flatten_content
from tests.support.postgres import TestPostgres

CONFIG = Path(__file__).resolve().parents[2] / "langgraph.json"
# Persistence backends of the server: langgraph dev's in-memory default, and Postgres mode.
BACKENDS = ["inmem", "postgres"]
# Debian's chromium package (scripts/check.sh installs it); Playwright never downloads a browser here.
CHROMIUM = Path("/usr/bin/chromium")
# As root Chromium needs --no-sandbox; the others stop it calling Google's services (no internet here).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# The scripted model: the agent saves what it is asked to remember; the extractor pulls
# facts that carry a marker word; everything else gets a plain answer.
RULES: list[Rule] = [
    {"when": {"tool": "manage_memory", "last_role": "tool"}, "then": {"content": "Noted."}},
    {
        "when": {"tool": "manage_memory", "contains": "remember"},
        "then": {
            "tool_calls": [{"name": "manage_memory", "arguments": {"action": "create", "content": "{last_user}"}}]
        },
    },
    {
        "when": {"tool": "Memory", "any_contains": "marathon"},
        "then": {"tool_calls": [{"name": "Memory", "arguments": {"content": "User is training for a marathon"}}]},
    },
]


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(RULES) as fake:
        yield fake


def backend_env(request: pytest.FixtureRequest, backend: str) -> dict[str, str]:
    """Server environment for a backend: Postgres mode on a fresh database of the embedded server."""
    if backend == "inmem":
        return {"POSTGRES_URI": ""}
    test_postgres: TestPostgres = request.getfixturevalue("test_postgres")
    return {"POSTGRES_URI": test_postgres.fresh_uri("e2e")}


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest, fake_openai: FakeOpenAI) -> Iterator[DevServer]:
    """The server, once per persistence backend: every test using it runs on both."""
    with DevServer(CONFIG, env={**fake_openai.env(), **backend_env(request, request.param)}) as dev_server:
        yield dev_server


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Chromium for one test.

    Not shared across tests: while sync Playwright is open it keeps an event loop running in
    the thread, so every asyncio.run and async test after it would fail until it closes.
    """
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/check.sh does, as root).")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def client(server: DevServer) -> LangGraphClient:
    return get_client(url=server.url, api_key=None)


def agent_prompts(fake: FakeOpenAI, marker: str) -> list[str]:
    """System prompts of the agent's model calls whose conversation mentions ``marker``."""
    return [
        flatten_content(request["messages"][0]["content"])
        for request in fake.requests()
        if "manage_memory" in request["tools"] and marker in _conversation(request)
    ]


def extraction_requests(fake: FakeOpenAI, marker: str) -> list[LoggedRequest]:
    """The memory graph's extraction calls whose input mentions ``marker``."""
    return [r for r in fake.requests() if "Memory" in r["tools"] and marker in _conversation(r)]


def _conversation(request: LoggedRequest) -> str:
    return "\n".join(flatten_content(m.get("content")) for m in request["messages"])


async def chat(
    client: LangGraphClient, thread_id: str, text: str, context: dict[str, Any], assistant: str = "agent"
) -> dict[str, Any]:
    """One chat turn; returns the thread's final values."""
    result = await client.runs.wait(
        thread_id, assistant, input={"messages": [{"role": "user", "content": text}]}, context=context
    )
    assert isinstance(result, dict) and "__error__" not in result, result
    return result


async def settled_memory_runs(
    client: LangGraphClient, user_id: str, chat_thread_id: str, timeout: float = 30
) -> list[dict[str, Any]]:
    """The memory thread's runs once none is pending or running any more."""
    thread_id = memory_thread_id(user_id, chat_thread_id, MEMORY_THREAD_SECRET)
    deadline = time.monotonic() + timeout
    while True:
        runs = [dict(run) for run in await client.runs.list(thread_id)]
        if runs and all(run["status"] not in ("pending", "running") for run in runs):
            return runs
        if time.monotonic() > deadline:
            raise AssertionError(f"memory runs did not settle in {timeout} s: {runs}")
        await asyncio.sleep(0.5)
