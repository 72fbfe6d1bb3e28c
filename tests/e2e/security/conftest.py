"""`langgraph dev` with auth on (HS256 tokens plus a static development token), models scripted.

One server per persistence backend: every test using ``secure_server`` runs on both. The
servers live as long as this package's tests, so they stop before the rest of the suite runs.
"""

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import BACKENDS, CONFIG, backend_env
from tests.e2e.security.attacks import BACKGROUND_FACT, A, Ledger, Victim, prepare_victim
from tests.support.dev_server import DevServer
from tests.support.fake_openai import FakeOpenAI, Rule
from tests.support.tokens import hs256_env

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
        "then": {"tool_calls": [{"name": "Memory", "arguments": {"content": BACKGROUND_FACT}}]},
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


@pytest.fixture(scope="package")
def security_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(RULES) as fake:
        yield fake


@pytest.fixture(scope="package", params=BACKENDS)
def secure_backend(request: pytest.FixtureRequest) -> str:
    """The persistence backend of ``secure_server``."""
    backend: str = request.param
    return backend


@pytest.fixture(scope="package")
def secure_server(
    request: pytest.FixtureRequest, secure_backend: str, security_fake: FakeOpenAI
) -> Iterator[DevServer]:
    env = {
        **security_fake.env(),
        **backend_env(request, secure_backend),
        **hs256_env(),
        "AUTH_STATIC_TOKENS": f"{CAROL_STATIC_TOKEN}=carol",
    }
    with DevServer(CONFIG, env=env) as dev_server:
        yield dev_server


@pytest.fixture(scope="module")
def victim(secure_server: DevServer) -> Victim:
    """User A with data of every kind on ``secure_server``: a user of its own per test module and backend."""
    return asyncio.run(prepare_victim(secure_server, f"{A}-{uuid.uuid4().hex[:8]}"))


@pytest.fixture(scope="module")
def ledger(request: pytest.FixtureRequest, secure_backend: str) -> Iterator[Ledger]:
    """The attempts of a test module on one backend; reported after the run, failing on any leak."""
    book = Ledger()
    yield book
    line = book.summary(f"{request.module.__name__.rsplit('.', 1)[-1]} [{secure_backend}]")
    SUMMARIES.append(line)
    assert not book.leaks, line
