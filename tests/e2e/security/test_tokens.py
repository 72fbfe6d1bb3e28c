"""Authentication on `langgraph dev`: only a valid token gets in, on every surface.

HS256 (shared secret) on the session's secure servers; RS256 with a PEM public key and with a
JWKS endpoint served on loopback by the test, on servers of their own (JWKS on both backends).
Every refused token gets 401 and a reason, from the auth handler or, on the routes it never
sees (``/info``, ``/openapi.json``), from the gate in front of them.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import CONFIG, backend_env
from tests.e2e.security.attacks import http_client, token
from tests.e2e.security.conftest import CAROL_STATIC_TOKEN
from tests.support.dev_server import DevServer
from tests.support.tokens import AUDIENCE, ISSUER, JwksServer, RsaKey, hs256, unsigned


def surfaces(user_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """One request per surface (threads, runs, store, assistants, memory and meta routes) ``user_id`` may make."""
    return [
        ("POST", "/threads/search", {}),
        ("POST", "/runs/wait", {"assistant_id": "agent", "input": {"messages": []}}),
        ("POST", "/store/items/search", {"namespace_prefix": ["memories", user_id]}),
        ("POST", "/assistants/search", {}),
        ("GET", "/me/memories", None),
        ("GET", "/me/export", None),
        ("GET", "/info", None),
        ("GET", "/openapi.json", None),
    ]


async def statuses(server: DevServer, headers: dict[str, str], user_id: str = "alice") -> list[tuple[str, int, str]]:
    async with httpx.AsyncClient(base_url=server.url, headers=headers, trust_env=False, timeout=30) as client:
        results = []
        for method, path, body in surfaces(user_id):
            response = await client.request(method, path, json=body) if body is not None else await client.get(path)
            results.append((path, response.status_code, response.text))
        return results


async def assert_refused(server: DevServer, headers: dict[str, str], reason: str) -> None:
    for path, status, text in await statuses(server, headers):
        assert status == 401, (path, status, text)
        assert reason in text, (path, text)


BAD_TOKENS = {
    "missing": ({}, "Missing bearer token"),
    "empty": ({"Authorization": ""}, "Missing bearer token"),
    "not bearer": ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, "Malformed"),
    "malformed": ({"Authorization": "Bearer not.a.jwt"}, "malformed"),
    "garbage": ({"Authorization": "Bearer " + "x" * 40}, "malformed"),
    "forged": (
        {"Authorization": f"Bearer {hs256('alice', secret='a-forger-secret-that-is-long-enough!!')}"},
        "signature",
    ),
    "alg none": ({"Authorization": f"Bearer {unsigned('alice')}"}, "HS256"),
    "expired": ({"Authorization": f"Bearer {hs256('alice', expires_in=-3600)}"}, "expired"),
    "not yet valid": ({"Authorization": f"Bearer {hs256('alice', nbf=4102444800)}"}, "not valid yet"),
    "wrong issuer": ({"Authorization": f"Bearer {hs256('alice', issuer='https://evil.example/')}"}, "issuer"),
    "wrong audience": ({"Authorization": f"Bearer {hs256('alice', audience='other-app')}"}, "audience"),
    "no expiry": ({"Authorization": f"Bearer {hs256('alice', drop=['exp'])}"}, "'exp'"),
    "no subject": ({"Authorization": f"Bearer {hs256(None)}"}, "sub"),
    "unusable subject": ({"Authorization": f"Bearer {hs256('alice.smith@example.com')}"}, "may only contain"),
    "wrong static token": ({"Authorization": f"Bearer {CAROL_STATIC_TOKEN}x"}, "malformed"),
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_a_bad_token_gets_401_everywhere(secure_server: DevServer, kind: str) -> None:
    headers, reason = BAD_TOKENS[kind]
    await assert_refused(secure_server, headers, reason)


async def test_a_valid_jwt_and_a_static_development_token_get_in(secure_server: DevServer) -> None:
    for user_id, bearer_token in (("alice", token("alice")), ("carol", CAROL_STATIC_TOKEN)):
        for path, status, text in await statuses(secure_server, {"Authorization": f"Bearer {bearer_token}"}, user_id):
            assert status == 200, (path, status, text)


async def test_studio_headers_do_not_bypass_auth(secure_server: DevServer) -> None:
    await assert_refused(secure_server, {"x-auth-scheme": "langsmith"}, "Missing bearer token")


@pytest.fixture(scope="module")
def rsa_key() -> RsaKey:
    return RsaKey()


@pytest.fixture(scope="module")
def pem_server(rsa_key: RsaKey) -> Iterator[DevServer]:
    env = {"AUTH_JWT_PUBLIC_KEY": rsa_key.public_pem, "AUTH_JWT_ISSUER": ISSUER, "AUTH_JWT_AUDIENCE": AUDIENCE}
    with DevServer(CONFIG, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def jwks_server(
    request: pytest.FixtureRequest, rsa_key: RsaKey, secure_backend: str
) -> Iterator[tuple[DevServer, JwksServer]]:
    with JwksServer([rsa_key]) as jwks:
        env = {"AUTH_JWKS_URL": jwks.url, "AUTH_JWT_ISSUER": ISSUER, "AUTH_JWT_AUDIENCE": AUDIENCE}
        with DevServer(CONFIG, env={**env, **backend_env(request, secure_backend)}) as server:
            yield server, jwks


async def test_rs256_with_a_public_key(pem_server: DevServer, rsa_key: RsaKey) -> None:
    async with http_client(pem_server, rsa_key.sign("alice")) as alice:
        assert (await alice.get("/me/memories")).status_code == 200
    await assert_refused(pem_server, {"Authorization": f"Bearer {RsaKey().sign('alice')}"}, "signature")
    await assert_refused(pem_server, {"Authorization": f"Bearer {rsa_key.sign('alice', expires_in=-60)}"}, "expired")
    await assert_refused(pem_server, {"Authorization": f"Bearer {rsa_key.sign('alice', audience='x')}"}, "audience")
    await assert_refused(pem_server, {"Authorization": f"Bearer {hs256('alice')}"}, "RS256")


async def test_rs256_with_keys_from_a_jwks_endpoint(jwks_server: tuple[DevServer, JwksServer], rsa_key: RsaKey) -> None:
    server, jwks = jwks_server
    for path, status, text in await statuses(server, {"Authorization": f"Bearer {rsa_key.sign('alice')}"}):
        assert status == 200, (path, status, text)
    assert jwks.requests >= 1
    async with http_client(server, rsa_key.sign("alice")) as alice:
        thread = (await alice.post("/threads", json={})).json()["thread_id"]
    async with http_client(server, rsa_key.sign("bob")) as bob:
        assert (await bob.get(f"/threads/{thread}")).status_code == 404
    await assert_refused(server, {"Authorization": f"Bearer {RsaKey().sign('alice')}"}, "No trusted signing key")
    forged = RsaKey().sign("alice", kid=rsa_key.kid)
    await assert_refused(server, {"Authorization": f"Bearer {forged}"}, "signature")
    await assert_refused(server, {"Authorization": f"Bearer {rsa_key.sign('alice', issuer='x')}"}, "issuer")
    await assert_refused(server, {"Authorization": f"Bearer {unsigned('alice')}"}, "No trusted signing key")
