"""What a real model did to the store, scripted: every write passes the guard, whoever makes it.

The misbehaviours are those of a small local model in a recorded run (see the real-model
benchmark): the same fact inserted in every batch, an update of the wrong id with unrelated
text, invented profile values, first-person memories, a write on a batch that is only a
question, and a batch whose deletion stayed while another memory type failed.
"""

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres.aio import AsyncPostgresStore
from pydantic import BaseModel

import agent.graph
from agent.recall import distinct_memories
from deployment.postgres import open_pool, prepare_database, store_index_config
from memory import write_guard
from memory.history import Provenance, history
from memory.records import PROFILE_KEY, Episode, Memory, Triple, UserProfile, memory_namespace, memory_text
from memory.records import profile_namespace as profile_ns
from memory.search import RankingWeights
from memory.write_guard import Stored, guarded_write, judge_new, third_person
from memory_graph import failures
from memory_graph.consolidation import NothingToSave
from memory_graph.context import MemoryContext
from memory_graph.graph import builder as memory_builder
from tests.conftest import Script
from tests.support.fakes import HashedEmbeddings, tool_call
from tests.support.postgres import TestPostgres

NS = memory_namespace("ana")
LISBON = "Ana lives in Lisbon and works as a nurse."


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        ("I moved to Porto last week.", "User moved to Porto last week."),
        ("I'm vegetarian, so no meat in recipes please.", "User is vegetarian, so no meat in recipes please."),
        ("I live in Lisbon and I work as a nurse.", "User lives in Lisbon and User works as a nurse."),
        ("My sister Marta is getting married in June.", "User's sister Marta is getting married in June."),
        ("I also really enjoy hiking with my dog.", "User also really enjoys hiking with User's dog."),
        ("I don't eat meat.", "User doesn't eat meat."),
        ("User likes tea.", "User likes tea."),
    ],
)
def test_memories_are_about_the_user_in_the_third_person(said: str, stored: str) -> None:
    assert third_person(said) == stored


def test_a_fact_said_again_is_a_duplicate_and_a_fuller_one_a_merge() -> None:
    porto = Stored("k", "User moved to Porto last week.")
    assert judge_new("I moved to Porto last week", [porto]).action == "duplicate"
    assert judge_new("User moved to Porto.", [porto]).action == "duplicate"
    lisbon = Stored("k", "User lives in Lisbon")
    assert judge_new("User lives in Lisbon and works as a nurse", [lisbon]) == write_guard.Verdict("merge", lisbon)


def test_a_different_fact_is_new_however_close() -> None:
    assert judge_new("User lives in Porto", [Stored("k", "User lives in Lisbon", 0.97)]).action == "new"
    assert judge_new("User is not vegetarian", [Stored("k", "User is vegetarian", 0.99)]).action == "new"
    # A fuller text about someone else is not a merge: it would drop the user's own fact.
    assert judge_new("User's sister Marta is vegetarian", [Stored("k", "User is vegetarian")]).action == "new"


def test_an_update_must_share_a_fact_with_what_it_replaces() -> None:
    assert not write_guard.is_related(LISBON, "No meat in recipes please.", 0.8)
    assert not write_guard.is_related(LISBON, "Ana is vegetarian.", 0.8, frozenset({"ana"}))
    assert write_guard.is_related("User lives in Lisbon", "User lives in Porto", 0.9)


def test_no_schema_shows_the_extractor_an_example_value() -> None:
    models: list[type[BaseModel]] = [Memory, Triple, UserProfile, Episode, NothingToSave]
    texts = [model.__doc__ or "" for model in models]
    texts += [field.description or "" for model in models for field in model.model_fields.values()]
    examples = re.compile(r"e\.g\.|for example|such as|(?<!\w)'[^']+'")
    assert [text for text in texts if examples.search(text)] == []


# The hot path: the agent's manage_memory tool.


async def turn(script: Script, store: InMemoryStore, *calls: AIMessage) -> list[Any]:
    """One chat turn in which the model makes ``calls`` in turn, then answers."""
    pending = list(calls)
    script.agent = lambda messages: pending.pop(0) if pending else AIMessage(content="Done.")
    graph = agent.graph.builder.compile(checkpointer=InMemorySaver(), store=store)
    result = await graph.ainvoke(
        {"messages": [("user", "hello")]},
        {"configurable": {"thread_id": str(uuid.uuid4())}},
        context={"user_id": "ana", "background_memory": False},
    )
    return [message for message in result["messages"] if isinstance(message, ToolMessage)]


async def texts(store: InMemoryStore) -> list[str]:
    return sorted(memory_text(item.value) for item in await store.asearch(NS, limit=100))


async def test_a_wrong_id_update_with_unrelated_text_is_refused(script: Script, store: InMemoryStore) -> None:
    key = str(uuid.uuid4())
    await store.aput(NS, key, {"content": LISBON})
    update = tool_call("manage_memory", action="update", id=key, content="No meat in recipes please.")
    (answer,) = await turn(script, store, update)
    assert answer.status == "error" and "create" in answer.text and "Lisbon" in answer.text
    assert await texts(store) == [LISBON]


async def test_saving_a_fact_twice_keeps_one_copy(script: Script, store: InMemoryStore) -> None:
    create = tool_call("manage_memory", action="create", content="I moved to Porto last week.")
    await turn(script, store, create)
    (again,) = await turn(script, store, tool_call("manage_memory", action="create", content="I moved to Porto."))
    assert "already says this" in again.text and again.status != "error"
    assert await texts(store) == ["User moved to Porto last week."]


async def test_an_update_to_the_same_text_changes_nothing(script: Script, store: InMemoryStore) -> None:
    key = str(uuid.uuid4())
    await store.aput(NS, key, {"content": "User moved to Porto last week."})
    update = tool_call("manage_memory", action="update", id=key, content="I moved to Porto last week.")
    (answer,) = await turn(script, store, update)
    assert "nothing was changed" in answer.text
    assert await history(store, "ana", key, NS) == []


# The background: the memory graph's extraction.


def conversation(*said: str) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for index, text in enumerate(said):
        messages += [HumanMessage(text, id=f"h{index}"), AIMessage(f"Noted ({index}).", id=f"a{index}")]
    return messages


async def memory_run(store: InMemoryStore, messages: Sequence[BaseMessage], **context: Any) -> dict[str, Any]:
    graph = memory_builder.compile(store=store)
    settings = {"user_id": "ana", "retry_delay_seconds": 0, **context}
    result: dict[str, Any] = await graph.ainvoke(
        {"messages": list(messages), "chat_thread_id": "chat"},
        {"recursion_limit": 200},
        context=MemoryContext.model_validate(settings),
    )
    return result


async def test_a_fact_inserted_again_in_every_batch_is_stored_once(script: Script, store: InMemoryStore) -> None:
    await store.aput(NS, str(uuid.uuid4()), {"content": "User moved to Porto last week."})
    script.extract = lambda messages: tool_call("Memory", content="I moved to Porto last week.")
    said = conversation("I moved to Porto last week.", "It is rainy.", "Any tips?", "Thanks!")
    result = await memory_run(store, said, max_messages_per_batch=2, overlap_messages=0)
    assert len(script.calls("extract")) >= 3
    assert await texts(store) == ["User moved to Porto last week."]
    assert result["report"]["writes"]["duplicates_skipped"] == len(script.calls("extract"))


async def test_a_wrong_background_update_keeps_the_old_fact(script: Script, store: InMemoryStore) -> None:
    key = str(uuid.uuid4())
    await store.aput(NS, key, {"content": LISBON})
    patch = {
        "json_doc_id": key,
        "planned_edits": "diet",
        "patches": [{"op": "replace", "path": "/content", "value": "No meat in recipes please."}],
    }
    script.extract = lambda messages: AIMessage(content="", tool_calls=[{"name": "PatchDoc", "args": patch, "id": "p"}])
    result = await memory_run(store, conversation("I'm vegetarian, so no meat in recipes please."))
    assert await texts(store) == [LISBON, "No meat in recipes please."]
    assert result["report"]["writes"]["unrelated_kept_apart"] == 1


async def test_invented_profile_values_are_dropped_and_counted(script: Script, store: InMemoryStore) -> None:
    script.profile = lambda messages: tool_call(
        "UserProfile",
        name="Ana",
        preferred_name="Porto",
        language="Portuguese",
        response_style="length",
        timezone="Europe/Lisbon",
        interests=["nurse", "martial law", "moving", "hiking"],
    )
    said = conversation(
        "Hi! I'm Ana, I live in Lisbon and I work as a nurse.", "I moved to Porto last week.", "I love hiking."
    )
    result = await memory_run(store, said)
    script.profile = lambda messages: tool_call("UserProfile", timezone="Porto")
    again = await memory_run(store, [*said, HumanMessage("Porto is lovely.", id="h9")])
    assert again["report"]["writes"]["unsupported_profile_values"] == 1
    profile = await store.aget(profile_ns("ana"), PROFILE_KEY)
    assert profile is not None
    assert profile.value == {"name": "Ana", "timezone": "Europe/Lisbon", "interests": ["hiking"]}
    # preferred_name, language, response_style, and the interests she never said she has.
    assert result["report"]["writes"]["unsupported_profile_values"] == 6


async def test_a_batch_that_is_only_a_question_writes_nothing(script: Script, store: InMemoryStore) -> None:
    await store.aput(NS, str(uuid.uuid4()), {"content": "User lives in Porto."})
    script.extract = lambda messages: tool_call("NothingToSave", reason="only a question")
    result = await memory_run(store, conversation("Where do I live now?"))
    assert "NothingToSave" in script.model.calls[0][1]
    assert await texts(store) == ["User lives in Porto."]
    assert result["report"]["batches_processed"] == 1 and result["report"]["stopped"] is None
    assert await failures.all_records(store, "ana") == []


async def test_a_batch_is_written_all_or_nothing(script: Script, store: InMemoryStore) -> None:
    key = str(uuid.uuid4())
    await store.aput(NS, key, {"content": "User lives in Lisbon and works as a nurse."})
    remove = {"name": "RemoveDoc", "args": {"json_doc_id": key}, "id": "r"}
    script.extract = lambda messages: AIMessage(content="", tool_calls=[remove])

    def provider_down(messages: Sequence[BaseMessage]) -> AIMessage:
        raise TimeoutError("the provider answered 500")

    script.profile = provider_down
    await memory_run(store, conversation("I moved to Porto last week."))
    assert await texts(store) == ["User lives in Lisbon and works as a nurse."]
    assert await history(store, "ana", key, NS) == []
    [(_, failure)] = await failures.all_records(store, "ana")
    assert failure["status"] == "retrying"


# Both backends, among many users: the guard compares a user's write with that user's memories only.


@pytest.fixture(params=["inmem", "postgres"])
async def any_store(request: pytest.FixtureRequest) -> AsyncIterator[BaseStore]:
    if request.param == "inmem":
        yield InMemoryStore(index={"embed": HashedEmbeddings(), "dims": 1536, "fields": ["content"]})
        return
    test_postgres: TestPostgres = request.getfixturevalue("test_postgres")
    uri = test_postgres.fresh_uri("guard")
    await prepare_database(uri, store_index_config(HashedEmbeddings()))
    async with open_pool(uri) as pool:
        yield AsyncPostgresStore(pool, index=store_index_config(HashedEmbeddings()))


async def test_the_guard_holds_on_every_backend_among_many_users(any_store: BaseStore) -> None:
    provenance = Provenance("hot_path", "chat", [])
    fact = "User moved to Porto last week."
    await any_store.abatch(
        [
            PutOp(memory_namespace(f"user-{u}"), str(uuid.uuid4()), {"content": f"{fact} Note {u}-{m}."})
            for u in range(40)
            for m in range(25)
        ]
    )
    first = await guarded_write(any_store, "ana", NS, {"content": fact}, provenance)
    again = await guarded_write(any_store, "ana", NS, {"content": "User moved to Porto."}, provenance)
    fuller = await guarded_write(any_store, "ana", NS, {"content": f"{fact} User loves it there."}, provenance)
    other_user = await guarded_write(any_store, "ben", memory_namespace("ben"), {"content": fact}, provenance)
    assert (first.outcome, again.outcome, fuller.outcome, other_user.outcome) == (
        "created",
        "duplicate",
        "merged",
        "created",
    )
    assert [memory_text(item.value) for item in await any_store.asearch(NS)] == [f"{fact} User loves it there."]


async def test_copies_stored_before_the_guard_fill_one_recall_slot(store: InMemoryStore) -> None:
    others = ["User works as a nurse in Porto.", "User's sister Marta lives in Porto."]
    for text in ["I moved to Porto last week."] * 8 + others:
        await store.aput(NS, str(uuid.uuid4()), {"content": text})
    recalled = await distinct_memories(store, NS, "Where do I live? Porto?", 3, RankingWeights())
    assert sorted(memory_text(item.value) for item in recalled) == sorted(["I moved to Porto last week.", *others])
