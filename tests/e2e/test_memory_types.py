"""Every memory type end to end on `langgraph dev`: extracted, stored, recalled, per assistant."""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langgraph_sdk.client import LangGraphClient

from tests.e2e.conftest import RULES, agent_prompts, chat, settled_memory_runs
from tests.support.fake_openai import FakeOpenAI, Rule

LEARNED_PROMPT = "You are a helpful assistant. Never use bullet points."
FRENCH_PROMPT = "You are a helpful assistant. Never use bullet points. Answer in French."
TYPE_RULES: list[Rule] = [
    {
        "when": {"any_contains": "<current_prompt>", "contains": "answer in French please"},
        "then": {"content": json.dumps({"logic": "feedback", "update_prompt": True, "new_prompt": FRENCH_PROMPT})},
    },
    {
        "when": {"tool": "Triple", "any_contains": "I live in Berlin"},
        "then": {
            "tool_calls": [
                {"name": "Triple", "arguments": {"subject": "User", "predicate": "lives in", "object": "Berlin"}}
            ]
        },
    },
    {
        "when": {"tool": "UserProfile", "any_contains": "Call me Ada"},
        "then": {
            "tool_calls": [{"name": "UserProfile", "arguments": {"name": "Ada Lovelace", "preferred_name": "Ada"}}]
        },
    },
    {
        "when": {"tool": "Episode", "any_contains": "pytest test is flaky"},
        "then": {
            "tool_calls": [
                {
                    "name": "Episode",
                    "arguments": {
                        "observation": "User had a flaky pytest test",
                        "thoughts": "Flakiness usually comes from shared state",
                        "action": "Suggested isolating fixtures",
                        "result": "The test passed reliably",
                    },
                }
            ]
        },
    },
    {
        "when": {"tool": "recipes", "any_contains": "green curry"},
        "then": {"tool_calls": [{"name": "recipes", "arguments": {"dish": "green curry", "spicy": True}}]},
    },
    {
        "when": {"any_contains": "<current_prompt>", "contains": "stop using bullet points"},
        "then": {"content": json.dumps({"logic": "feedback", "update_prompt": True, "new_prompt": LEARNED_PROMPT})},
    },
]
COACH_MEMORY: dict[str, Any] = {
    "semantic": {"format": "triple"},
    "episodic": {"enabled": True},
    "procedural": {"enabled": True},
    "custom_types": [
        {
            "name": "recipes",
            "json_schema": {
                "type": "object",
                "description": "A dish the user cooked.",
                "properties": {"dish": {"type": "string"}, "spicy": {"type": "boolean"}},
                "required": ["dish"],
            },
        }
    ],
}


@pytest.fixture(autouse=True, scope="module")
def type_rules(fake_openai: FakeOpenAI) -> Iterator[None]:
    fake_openai.set_rules([*TYPE_RULES, *RULES])
    yield
    fake_openai.set_rules(RULES)


async def test_each_memory_type_is_extracted_stored_and_recalled_per_assistant(
    client: LangGraphClient, fake_openai: FakeOpenAI
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    coach = await client.assistants.create(
        graph_id="agent", context={"memory": COACH_MEMORY, "memory_delay_seconds": 1}, name="coach"
    )
    plain = await client.assistants.create(graph_id="agent", context={"background_memory": False}, name="plain")
    thread = (await client.threads.create())["thread_id"]
    text = (
        "Call me Ada. I live in Berlin. My pytest test is flaky. "
        "Yesterday I cooked a spicy green curry. And please stop using bullet points."
    )
    await chat(client, thread, text, {"user_id": user}, assistant=coach["assistant_id"])
    runs = await settled_memory_runs(client, user, thread)
    assert [run["status"] for run in runs] == ["success"], runs

    async def items(*namespace: str) -> list[dict[str, Any]]:
        return list((await client.store.search_items(namespace))["items"])

    [fact] = await items("memories", user)
    assert fact["value"]["content"] == "User lives in Berlin" and fact["value"]["triple"]["object"] == "Berlin"
    [profile] = await items("profile", user)
    assert profile["value"]["preferred_name"] == "Ada"
    [episode] = await items("episodes", user)
    assert episode["value"]["episode"]["action"] == "Suggested isolating fixtures"
    [recipe] = await items("custom", user, "recipes")
    assert recipe["value"]["data"] == {"dish": "green curry", "spicy": True}
    [instructions] = await items("instructions", user)
    assert instructions["key"] == coach["assistant_id"] and instructions["value"]["prompt"] == LEARNED_PROMPT
    changes = await items("memory_history", user)
    assert {c["value"]["namespace"][0] for c in changes} == {
        "memories",
        "profile",
        "episodes",
        "custom",
        "instructions",
    }
    assert all(c["value"]["source"] == "background" and c["value"]["thread_id"] == thread for c in changes)

    await chat(
        client,
        (await client.threads.create())["thread_id"],
        "another flaky test (coach)",
        {"user_id": user},
        assistant=coach["assistant_id"],
    )
    coach_prompt = agent_prompts(fake_openai, "(coach)")[-1]
    assert coach_prompt.startswith(LEARNED_PROMPT)
    assert "Action: Suggested isolating fixtures" in coach_prompt
    assert "dish: green curry" in coach_prompt
    assert "preferred_name: Ada" in coach_prompt

    await chat(
        client,
        (await client.threads.create())["thread_id"],
        "another flaky test (plain)",
        {"user_id": user},
        assistant=plain["assistant_id"],
    )
    plain_prompt = agent_prompts(fake_openai, "(plain)")[-1]
    assert not plain_prompt.startswith(LEARNED_PROMPT)
    assert "isolating fixtures" not in plain_prompt and "green curry" not in plain_prompt
    assert "preferred_name: Ada" in plain_prompt


async def test_feedback_on_a_thread_refines_instructions_and_the_original_can_be_restored(
    client: LangGraphClient, fake_openai: FakeOpenAI
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    memory = {"procedural": {"enabled": True}}
    coach = await client.assistants.create(
        graph_id="agent", context={"memory": memory, "memory_delay_seconds": 1, "system_prompt": "Be a coach."}
    )
    thread = (await client.threads.create())["thread_id"]
    await chat(client, thread, "Please stop using bullet points.", {"user_id": user}, assistant=coach["assistant_id"])
    await settled_memory_runs(client, user, thread)

    await client.runs.wait(
        None,
        "memory_graph",
        input={"chat_thread_id": thread, "feedback": {"score": 0.2, "comment": "answer in French please"}},
        context={"user_id": user, "memory": memory, "agent_assistant_id": coach["assistant_id"]},
    )
    learned = await client.store.get_item(("instructions", user), coach["assistant_id"])
    assert learned["value"]["prompt"] == FRENCH_PROMPT and learned["value"]["base_prompt"] == "Be a coach."
    changes = (await client.store.search_items(("memory_history", user)))["items"]
    assert sorted(c["value"]["source"] for c in changes) == ["background", "feedback"]

    await client.store.delete_item(("instructions", user), coach["assistant_id"])
    other = (await client.threads.create())["thread_id"]
    await chat(client, other, "hello (restored)", {"user_id": user}, assistant=coach["assistant_id"])
    assert agent_prompts(fake_openai, "(restored)")[-1].startswith("Be a coach.")
