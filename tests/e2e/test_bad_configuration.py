"""Bad configuration on a running server: the server starts, the run says what to fix."""

from collections.abc import Iterator
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.e2e.conftest import CONFIG
from tests.support.dev_server import DevServer
from tests.support.fake_openai import FakeOpenAI


@pytest.fixture(scope="module")
def keyless_server(fake_openai: FakeOpenAI) -> Iterator[DevServer]:
    env = {"OPENAI_BASE_URL": fake_openai.base_url}
    with DevServer(CONFIG, env=env, unset=["OPENAI_API_KEY"]) as dev_server:
        yield dev_server


async def failed_run_error(client: LangGraphClient, context: dict[str, Any]) -> str:
    thread = await client.threads.create()
    result = await client.runs.wait(
        thread["thread_id"],
        "agent",
        input={"messages": [{"role": "user", "content": "hi"}]},
        context=context,
        raise_error=False,
    )
    assert isinstance(result, dict) and "__error__" in result, result
    return str(result["__error__"])


async def test_missing_api_key_names_the_variable_and_the_server_stays_up(keyless_server: DevServer) -> None:
    client = get_client(url=keyless_server.url, api_key=None)
    error = await failed_run_error(client, {"recall_limit": 0, "background_memory": False})
    assert "set OPENAI_API_KEY in .env" in error
    assert (await client.assistants.search(graph_id="agent"))[0]["graph_id"] == "agent"


@pytest.mark.parametrize(
    ("context", "named"),
    [({"recall_limit": -1}, "recall_limit"), ({"model": "gpt-4o"}, "'provider:model'")],
)
async def test_invalid_settings_fail_the_run_with_a_clear_error(
    client: LangGraphClient, context: dict[str, Any], named: str
) -> None:
    error = await failed_run_error(client, {**context, "background_memory": False})
    assert named in error
