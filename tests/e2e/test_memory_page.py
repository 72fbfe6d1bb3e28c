"""The memory page (``GET /me/page``) in headless Chromium, on `langgraph dev` with auth off.

Memories are saved through real conversations with the agent (the scripted model calls the
manage-memory tool), two of them markup meant to run in the page. The page must show them as
text, list newest first, rank a search as recall does, and edit and delete what the store
holds. In memory only: the page talks to the /me routes, whose backends are tested elsewhere.
With auth on: tests/e2e/security/test_memory_page.py.
"""

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient
from playwright.sync_api import Browser, Page, expect

from memory.identity import LOCAL_USER_ID
from memory.write_guard import third_person
from tests.e2e.conftest import RULES
from tests.support.dev_server import DevServer
from tests.support.fake_openai import FakeOpenAI, Rule, ToolCallSpec

pytestmark = pytest.mark.parametrize("server", ["inmem"], indirect=True)

# The README's screenshot: written there when UPDATE_SCREENSHOT=1, else to the test's own temporary
# directory (so that a test run leaves the checkout as it was).
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "memory-page.png"
USER = LOCAL_USER_ID  # with auth off the /me routes act for the local user
SCRIPT = "<script>window.__pwned=1</script>"
IMAGE = '<img src=x onerror="window.__pwned=1">'
SEATS = "Please remember that I prefer window seats on long flights"
SISTER = "Please remember that my sister Ana lives in Porto"
COFFEE = "Please remember I take my coffee black"
# The memories in the order they are said; the page lists the newest first.
SAID = [SEATS, SISTER, SCRIPT, IMAGE, COFFEE]

SAY = {SCRIPT: "Save this for me (markup 0)", IMAGE: "And this one (markup 1)"}
# What is stored: the write guard puts the user's words in the third person ("I" -> "User").
SAVED = [third_person(memory) for memory in SAID]


def saving(marker: str, content: str) -> Rule:
    """The model saves ``content`` verbatim when the user's message carries ``marker``."""
    call: ToolCallSpec = {"name": "manage_memory", "arguments": {"action": "create", "content": content}}
    return {"when": {"tool": "manage_memory", "contains": marker}, "then": {"tool_calls": [call]}}


# Markup is saved verbatim; otherwise the session's rules apply (a message with "remember" is
# saved as said). The answer after the tool's result comes first, or the marker would match again.
PAGE_RULES: list[Rule] = [
    {"when": {"tool": "manage_memory", "last_role": "tool"}, "then": {"content": "Noted."}},
    saving("(markup 0)", SCRIPT),
    saving("(markup 1)", IMAGE),
    *RULES,
]


@pytest.fixture
def page_rules(fake_openai: FakeOpenAI) -> Iterator[None]:
    fake_openai.set_rules(PAGE_RULES)
    yield
    fake_openai.set_rules(RULES)


@pytest.fixture
def sdk(server: DevServer) -> SyncLangGraphClient:
    return get_sync_client(url=server.url, api_key=None)


@pytest.fixture
def me(server: DevServer) -> Iterator[httpx.Client]:
    """The /me API as the page sees it (auth off: the local user), starting from nothing."""
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
        client.delete("/me/memories").raise_for_status()
        client.delete("/me/profile").raise_for_status()
        yield client


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the page confirms deletions
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], errors


def stored(sdk: SyncLangGraphClient) -> dict[str, str]:
    """The local user's memories in the store, id -> text."""
    items = sdk.store.search_items(("memories", USER), limit=100)["items"]
    return {item["key"]: item["value"]["content"] for item in items}


def failure_record(thread_id: str) -> dict[str, Any]:
    """A batch the memory graph set aside, as memory_graph.failures stores it."""
    now = datetime.now(UTC).isoformat()
    return {
        "chat_thread_id": thread_id,
        "first_message_id": "m-1",
        "last_message_id": "m-2",
        "start": 0,
        "end": 2,
        "error": "The model's answer could not be used <b>twice</b>",
        "attempts": 3,
        "first_failed_at": now,
        "last_failed_at": now,
        "status": "set_aside",
        "retry_at": None,
    }


def test_the_page_shows_searches_edits_and_deletes_the_memories_of_a_conversation(
    server: DevServer, sdk: SyncLangGraphClient, me: httpx.Client, page: Page, page_rules: None, tmp_path: Path
) -> None:
    screenshot = README_SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "memory-page.png"
    thread = sdk.threads.create()["thread_id"]
    for memory in SAID:
        result = sdk.runs.wait(
            thread,
            "agent",
            input={"messages": [{"role": "user", "content": SAY.get(memory, memory)}]},
            context={"user_id": USER, "background_memory": False},
        )
        assert isinstance(result, dict) and "__error__" not in result, result
    assert sorted(stored(sdk).values()) == sorted(SAVED)
    me.patch("/me/profile", json={"name": "Dana <i>Lee</i>", "timezone": "Europe/Lisbon"}).raise_for_status()
    episode = {"observation": "Asked for a packing list", "thoughts": "-", "action": "A list", "result": "Liked it"}
    sdk.store.put_item(("episodes", USER), "page-episode", episode, index=False)
    failure_key = str(uuid.uuid4())
    sdk.store.put_item(("memory_failures", USER), failure_key, failure_record(thread), index=False)

    try:
        page.goto(f"{server.url}/me/page")
        memories = page.locator("#memory-list li.memory")
        expect(memories).to_have_count(len(SAID))
        # Newest first, and every text as typed: the markup is shown, never run.
        assert memories.locator(".content").all_text_contents() == SAVED[::-1]
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.locator("#memory-list script, #memory-list img").count() == 0
        expect(page.locator("#token-panel")).to_be_hidden()

        # Where each memory came from: the conversation, from its history.
        newest = memories.first
        expect(newest.locator(".origin")).to_contain_text(f"conversation {thread}")
        expect(newest.locator(".origin")).to_contain_text("saved by the assistant during the chat")
        newest.locator("details.history summary").click()
        expect(newest.locator(".history-list")).to_contain_text("Created")
        expect(page.locator("#profile-view")).to_contain_text("Dana <i>Lee</i>")
        expect(page.locator("#profile-view")).to_contain_text("Europe/Lisbon")
        expect(page.locator("#record-list")).to_contain_text("Asked for a packing list")
        failure = page.locator("#failure-list li.failure")
        expect(failure).to_contain_text("set aside")
        expect(failure).to_contain_text("could not be used <b>twice</b>")
        # Provenance is read as memories come into view: scroll through once for the whole-page picture.
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        expect(memories.locator(".origin").filter(has_text="From conversation")).to_have_count(len(SAID))
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 10_000

        failure.locator("button.retry").click()
        expect(failure).to_contain_text("retry requested")
        assert me.get("/me/memory-failures").json()["items"][0]["status"] == "retry_requested"

        with page.expect_download() as download:
            page.click("#export-button")
        exported = json.loads(Path(download.value.path()).read_text())
        assert sorted(m["content"] for m in exported["memories"]) == sorted(SAVED)

        # Search ranks as recall does.
        page.fill("#search-input", "window seats")
        page.click("#search-form button[type=submit]")
        expect(page.locator("#memory-note")).to_contain_text("window seats")
        expect(memories.first.locator(".content")).to_have_text(third_person(SEATS))
        page.click("#clear-search")
        expect(memories).to_have_count(len(SAID))

        # Edit one: the store holds the new text; an invalid edit shows the API's reason.
        sister = memories.filter(has_text=third_person(SISTER))
        sister_id = sister.get_attribute("data-id")
        assert sister_id
        sister.locator("button.edit").click()
        page.fill(f'li[data-id="{sister_id}"] textarea.edit-text', "   ")
        page.click(f'li[data-id="{sister_id}"] button.save')
        expect(page.locator("#errors")).to_contain_text("Could not save the memory: Invalid body field `content`")
        page.fill(f'li[data-id="{sister_id}"] textarea.edit-text', "My sister Ana moved to Lisbon")
        page.click(f'li[data-id="{sister_id}"] button.save')
        expect(page.locator("#notice")).to_have_text("Memory saved.")
        assert stored(sdk)[sister_id] == "My sister Ana moved to Lisbon"
        edited = page.locator(f'li[data-id="{sister_id}"]')
        edited.locator("details.history summary").click()
        expect(edited.locator(".history-list")).to_contain_text("Changed, changed by you")
        expect(edited.locator(".history-list")).to_contain_text(f"Before: {third_person(SISTER)}")

        # Edit the profile.
        page.click("#profile-edit-button")
        page.fill('#profile-view input[name="preferred_name"]', "Dee")
        page.click("#profile-view button[type=submit]")
        expect(page.locator("#notice")).to_have_text("Profile saved.")
        assert me.get("/me/profile").json()["profile"]["preferred_name"] == "Dee"

        # Delete one, then all (the page asks first; the dialog is accepted).
        image_id = memories.filter(has_text=IMAGE).get_attribute("data-id")
        memories.filter(has_text=IMAGE).locator("button.delete").click()
        expect(memories).to_have_count(len(SAID) - 1)
        assert image_id and image_id not in stored(sdk)
        page.click("#delete-all-button")
        expect(page.locator("#notice")).to_have_text(f"Deleted {len(SAID) - 1} memories.")
        expect(memories).to_have_count(0)
        assert stored(sdk) == {}
        assert page.evaluate("typeof window.__pwned") == "undefined"
    finally:
        me.delete("/me/profile")
        sdk.store.delete_item(("episodes", USER), "page-episode")
        sdk.store.delete_item(("memory_failures", USER), failure_key)


ANA = "Ana lives in Lisbon and works as a nurse."
CAT = "Has a cat named Miso"
# A wrong correction: related enough to pass the write guard (which refuses an unrelated one).
WRONG = "Ana lives in Porto, works as a teacher."


def calling(marker: str, arguments: dict[str, Any]) -> Rule:
    """The model calls manage_memory with ``arguments`` when the user's message carries ``marker``."""
    call: ToolCallSpec = {"name": "manage_memory", "arguments": arguments}
    return {"when": {"tool": "manage_memory", "contains": marker}, "then": {"tool_calls": [call]}}


def test_a_wrong_update_and_a_deletion_by_the_assistant_are_undone_from_the_page(
    server: DevServer,
    sdk: SyncLangGraphClient,
    me: httpx.Client,
    page: Page,
    page_rules: None,
    fake_openai: FakeOpenAI,
) -> None:
    thread = sdk.threads.create()["thread_id"]

    def say(text: str, *rules: Rule) -> None:
        fake_openai.set_rules([PAGE_RULES[0], *rules])
        result = sdk.runs.wait(
            thread,
            "agent",
            input={"messages": [{"role": "user", "content": text}]},
            context={"user_id": USER, "background_memory": False},
        )
        assert isinstance(result, dict) and "__error__" not in result, result

    say("Note this (fact 1)", saving("(fact 1)", ANA))
    say("And this (fact 2)", saving("(fact 2)", CAT))
    ids = {text: key for key, text in stored(sdk).items()}
    say("Anything (oops 1)", calling("(oops 1)", {"action": "update", "id": ids[ANA], "content": WRONG}))
    say("Anything (oops 2)", calling("(oops 2)", {"action": "delete", "id": ids[CAT]}))
    assert stored(sdk) == {ids[ANA]: WRONG}

    page.goto(f"{server.url}/me/page")
    memories = page.locator("#memory-list li.memory")
    deleted = page.locator("#deleted-list li.deleted-memory")
    expect(memories.locator(".content")).to_have_text([WRONG])
    expect(deleted.locator(".content")).to_have_text([CAT])
    expect(deleted).to_contain_text("deleted by the assistant during a chat")

    # The wrong update is the latest entry of the memory's history: its Undo button names the memory.
    memories.first.locator("details.history summary").click()
    expect(memories.first.locator(".history-list")).to_contain_text(f"Before: {ANA}")
    page.get_by_role("button", name=f"Undo this change to memory: {WRONG}").click()
    expect(page.locator("#notice")).to_have_text("Change undone.")
    expect(memories.locator(".content")).to_have_text([ANA])
    assert stored(sdk) == {ids[ANA]: ANA}

    page.get_by_role("button", name=f"Restore memory: {CAT}").click()
    expect(page.locator("#notice")).to_have_text("Memory restored.")
    expect(memories.locator(".content")).to_have_text([CAT, ANA])
    expect(deleted).to_have_count(0)
    expect(page.locator("#deleted-list")).to_contain_text("Nothing deleted recently.")
    assert stored(sdk) == {ids[ANA]: ANA, ids[CAT]: CAT}
    restored = me.get(f"/me/memories/{ids[CAT]}/history").json()["items"]
    assert [(entry["action"], entry["source"]) for entry in restored] == [
        ("create", "hot_path"),
        ("delete", "hot_path"),
        ("undo", "user"),
    ]

    # Recall finds the restored fact again.
    page.fill("#search-input", "Where does Ana live?")
    page.click("#search-form button[type=submit]")
    expect(memories.first.locator(".content")).to_have_text(ANA)
