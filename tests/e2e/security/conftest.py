"""One `langgraph dev` with auth on (HS256 tokens plus a static development token), models scripted."""

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import CONFIG
from tests.support.dev_server import DevServer
from tests.support.fake_openai import FakeOpenAI, Rule
from tests.support.tokens import bearer, hs256, hs256_env

# Everything user A tells the service carries this marker: if it appears in anything another
# user receives (a response, or a prompt of their runs), A's data leaked.
SECRET = f"S3CR3T-{uuid.uuid4().hex[:12]}"
CAROL_STATIC_TOKEN = f"carol-dev-token-{uuid.uuid4().hex}"

RULES: list[Rule] = [
    {"when": {"tool": "manage_memory", "last_role": "tool"}, "then": {"content": "Done."}},
    {
        "when": {"tool": "manage_memory", "contains": "remember"},
        "then": {
            "tool_calls": [{"name": "manage_memory", "arguments": {"action": "create", "content": "{last_user}"}}]
        },
    },
    {
        "when": {"tool": "Memory", "any_contains": "locker"},
        "then": {"tool_calls": [{"name": "Memory", "arguments": {"content": f"User's locker code is {SECRET}"}}]},
    },
]


# Lines the security tests report (attempt counts, fuzzing statistics), shown after the run.
SUMMARIES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show what the security tests counted, whatever the capture mode."""
    if SUMMARIES:
        terminalreporter.section("security")
        for line in SUMMARIES:
            terminalreporter.write_line(line)


def token(user_id: str, *, admin: bool = False) -> str:
    """A valid token for ``user_id`` on ``secure_server``."""
    return hs256(user_id, roles=["admin"] if admin else [])


def http_client(server: DevServer, token: str | None) -> httpx.AsyncClient:
    """Raw HTTP as the holder of ``token`` (no Authorization header when None)."""
    # trust_env=False: a proxy configured for package registries must not see loopback calls.
    return httpx.AsyncClient(base_url=server.url, headers=bearer(token) if token else {}, trust_env=False, timeout=60)


@pytest.fixture(scope="session")
def security_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(RULES) as fake:
        yield fake


@pytest.fixture(scope="session")
def secure_server(security_fake: FakeOpenAI) -> Iterator[DevServer]:
    env = {**security_fake.env(), **hs256_env(), "AUTH_STATIC_TOKENS": f"{CAROL_STATIC_TOKEN}=carol"}
    with DevServer(CONFIG, env=env) as dev_server:
        yield dev_server
