"""The memory page with auth on: the page is public, the data is not, and a token shows its user's only.

On the secure server in memory only (the page calls the /me routes, tested on both backends).
The page itself, with auth off: tests/e2e/test_memory_page.py.
"""

import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.security.attacks import token
from tests.support.dev_server import DevServer
from tests.support.tokens import bearer

pytestmark = pytest.mark.parametrize("secure_backend", ["inmem"], indirect=True)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    yield context.new_page()
    context.close()


def put_memory(server: DevServer, user: str, text: str) -> None:
    body = {"namespace": ["memories", user], "key": str(uuid.uuid4()), "value": {"content": text}}
    response = httpx.put(f"{server.url}/store/items", json=body, headers=bearer(token(user)), trust_env=False)
    response.raise_for_status()


def test_the_page_answers_without_a_token_but_the_memories_do_not(secure_server: DevServer) -> None:
    page = httpx.get(f"{secure_server.url}/me/page", trust_env=False)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>Your memories</title>" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    memories = httpx.get(f"{secure_server.url}/me/memories", trust_env=False)
    assert memories.status_code == 401 and "Missing bearer token" in memories.json()["detail"]


def test_the_page_asks_for_a_token_and_shows_only_that_users_memories(secure_server: DevServer, page: Page) -> None:
    alice, bob = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
    put_memory(secure_server, alice, "Alice keeps bees")
    put_memory(secure_server, bob, "Bob collects stamps")

    page.goto(f"{secure_server.url}/me/page")
    expect(page.locator("#token-panel")).to_be_visible()
    expect(page.locator("#token-reason")).to_contain_text("Missing bearer token")
    expect(page.locator("#content")).to_be_hidden()

    alice_token = token(alice)  # minted once: a token minted a second later differs
    page.fill("#token-input", alice_token)
    page.click("#token-form button[type=submit]")
    expect(page.locator("#memory-list .content")).to_have_text(["Alice keeps bees"])
    expect(page.locator("#token-panel")).to_be_hidden()
    assert "Bob" not in page.locator("body").inner_text()
    # The token stays with the tab: sessionStorage, never localStorage or a cookie.
    assert page.evaluate("sessionStorage.getItem('memory-page-token')") == alice_token
    assert page.evaluate("localStorage.length") == 0 and page.context.cookies() == []

    # A reload keeps the tab's token; forgetting it asks again.
    page.reload()
    expect(page.locator("#memory-list .content")).to_have_text(["Alice keeps bees"])
    page.click("#forget-token-button")
    expect(page.locator("#token-panel")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
