"""Auth without a server: settings, token verification, the store rule, run identity, limits."""

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest

from deployment import limits
from deployment.auth import check_run_user, check_store_request
from deployment.tokens import (
    AuthConfigurationError,
    AuthSettings,
    TokenError,
    TokenVerifier,
    bearer_token,
    load_settings,
)
from memory.identity import resolve_user_id
from tests.support.tokens import AUDIENCE, ISSUER, SECRET, JwksServer, RsaKey, claims, hs256, hs256_env, unsigned

# --- Settings ---------------------------------------------------------------------------------


def test_auth_is_off_without_variables_under_langgraph_dev_or_without_a_server() -> None:
    assert not load_settings({}).enabled
    dev = {"LANGSMITH_LANGGRAPH_API_VARIANT": "local_dev", "LANGGRAPH_RUNTIME_EDITION": "inmem"}
    assert not load_settings(dev).enabled


@pytest.mark.parametrize(
    "server",
    [
        {"LANGSMITH_LANGGRAPH_API_VARIANT": "licensed"},
        {"LANGSMITH_LANGGRAPH_API_VARIANT": "licensed", "LANGGRAPH_RUNTIME_EDITION": "postgres"},
        {"LANGGRAPH_RUNTIME_EDITION": "postgres"},
        {"LANGGRAPH_RUNTIME_EDITION": "inmem"},
    ],
)
def test_a_deployment_refuses_to_start_without_auth(server: dict[str, str]) -> None:
    with pytest.raises(AuthConfigurationError, match="Auth may only be off under `langgraph dev`"):
        load_settings(server)
    assert load_settings({**server, **hs256_env()}).enabled


def test_static_tokens_are_for_local_development_only() -> None:
    env = {"AUTH_STATIC_TOKENS": "a-long-enough-token-1=alice"}
    assert load_settings({**env, "LANGSMITH_LANGGRAPH_API_VARIANT": "local_dev"}).static_tokens
    with pytest.raises(AuthConfigurationError, match="local development"):
        load_settings({**env, **hs256_env(), "LANGSMITH_LANGGRAPH_API_VARIANT": "licensed"})


def test_jwt_settings_are_read() -> None:
    settings = load_settings(
        hs256_env(AUTH_JWT_AUDIENCE="a, b", AUTH_ROLES_CLAIM="realm_access.roles", AUTH_JWT_LEEWAY_SECONDS="5")
    )
    assert settings.enabled and settings.uses_jwt
    assert settings.audience == ("a", "b")
    assert settings.roles_claim == "realm_access.roles"
    assert settings.leeway_seconds == 5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({**hs256_env(), "AUTH_JWKS_URL": "https://idp/jwks"}, "Set only one of"),
        (hs256_env(AUTH_JWT_SECRET="short"), "at least 32"),
        ({"AUTH_JWT_PUBLIC_KEY": "not a key", "AUTH_JWT_ISSUER": "i", "AUTH_JWT_AUDIENCE": "a"}, "PEM"),
        ({"AUTH_JWKS_URL": "file:///etc/passwd", "AUTH_JWT_ISSUER": "i", "AUTH_JWT_AUDIENCE": "a"}, "http"),
        ({"AUTH_JWT_SECRET": SECRET}, "AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE"),
        ({"AUTH_JWT_SECRET": SECRET, "AUTH_JWT_ISSUER": ISSUER}, "AUTH_JWT_AUDIENCE"),
        (hs256_env(AUTH_JWT_LEEWAY_SECONDS="a lot"), "number of seconds"),
        (hs256_env(AUTH_JWT_LEEWAY_SECONDS="3600"), "between 0 and 300"),
        ({"AUTH_STATIC_TOKENS": "short=alice"}, "shorter than 16"),
        ({"AUTH_STATIC_TOKENS": "a-long-enough-token-1"}, "'token=user_id'"),
        ({"AUTH_STATIC_TOKENS": "a-long-enough-token-1=alice.smith"}, "may only contain"),
        ({"AUTH_STATIC_TOKENS": "a-long-enough-token-1=a,a-long-enough-token-1=b"}, "listed twice"),
        ({"AUTH_STATIC_TOKENS": "a-long-enough-token-1=alice", "AUTH_STATIC_ADMINS": "root"}, "root"),
    ],
)
def test_invalid_configuration_says_what_to_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(AuthConfigurationError, match=message):
        load_settings(env)


# --- Tokens -----------------------------------------------------------------------------------


def verifier(**overrides: str) -> TokenVerifier:
    return TokenVerifier(load_settings(hs256_env(**overrides)))


async def test_a_valid_hs256_token_names_the_user() -> None:
    identity = await verifier().verify(f"Bearer {hs256('alice')}")
    assert (identity.user_id, identity.is_admin, identity.source) == ("alice", False, "jwt")
    assert (await verifier().verify(f"bearer {hs256('root', roles=['admin'])}")).is_admin


async def test_roles_may_be_nested_or_a_string() -> None:
    nested = hs256("root", realm_access={"roles": ["admin"]})
    assert (await verifier(AUTH_ROLES_CLAIM="realm_access.roles").verify(f"Bearer {nested}")).is_admin
    spaced = hs256("root", drop=["roles"], scope="read admin")
    assert (await verifier(AUTH_ROLES_CLAIM="scope").verify(f"Bearer {spaced}")).is_admin
    assert not (await verifier(AUTH_ADMIN_ROLE="owner").verify(f"Bearer {hs256('x', roles=['admin'])}")).is_admin


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Missing bearer token"),
        ("", "Missing bearer token"),
        ("Basic YWxpY2U6c2VjcmV0", "Malformed"),
        ("Bearer", "Malformed"),
        ("Bearer a b", "Malformed"),
        ("Bearer not-a-jwt", "malformed"),
        (f"Bearer {hs256('alice', secret='another-secret-that-is-long-enough-0123')}", "signature"),
        (f"Bearer {unsigned('alice')}", "HS256"),
        (f"Bearer {hs256('alice', expires_in=-3600)}", "expired"),
        (f"Bearer {hs256('alice', issuer='https://evil.example/')}", "issuer"),
        (f"Bearer {hs256('alice', audience='another-service')}", "audience"),
        (f"Bearer {hs256('alice', drop=['exp'])}", "'exp'"),
        (f"Bearer {hs256('alice', drop=['aud'])}", "'aud'"),
        (f"Bearer {hs256(None)}", "sub"),
        (f"Bearer {hs256('alice.smith@example.com')}", "may only contain"),
        (f"Bearer {hs256('a' * 200)}", "at most 128"),
        ("Bearer " + "x" * 9000, "too long"),
    ],
)
async def test_bad_tokens_are_refused_with_a_reason(header: str | None, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        await verifier().verify(header)


async def test_an_rs256_token_is_verified_with_the_configured_public_key() -> None:
    key, other = RsaKey(), RsaKey()
    settings = load_settings(
        {"AUTH_JWT_PUBLIC_KEY": key.public_pem, "AUTH_JWT_ISSUER": ISSUER, "AUTH_JWT_AUDIENCE": AUDIENCE}
    )
    rs256 = TokenVerifier(settings)
    assert (await rs256.verify(f"Bearer {key.sign('alice')}")).user_id == "alice"
    with pytest.raises(TokenError, match="signature"):
        await rs256.verify(f"Bearer {other.sign('alice')}")
    # An HS256 token "signed" with the public key itself (algorithm confusion) is refused.
    confused = hmac_token_signed_with(key.public_pem.encode(), claims("alice"))
    with pytest.raises(TokenError, match="RS256"):
        await rs256.verify(f"Bearer {confused}")


def hmac_token_signed_with(secret: bytes, payload: dict[str, Any]) -> str:
    """An HS256 token built by hand: PyJWT itself refuses to use a public key as an HMAC secret."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_a_pem_key_with_escaped_newlines_is_accepted() -> None:
    escaped = RsaKey().public_pem.replace("\n", "\\n")
    assert load_settings({"AUTH_JWT_PUBLIC_KEY": escaped, "AUTH_JWT_ISSUER": "i", "AUTH_JWT_AUDIENCE": "a"}).uses_jwt


@pytest.fixture
def jwks() -> Iterator[tuple[RsaKey, JwksServer]]:
    key = RsaKey()
    with JwksServer([key]) as server:
        yield key, server


async def test_an_rs256_token_is_verified_with_keys_from_jwks(jwks: tuple[RsaKey, JwksServer]) -> None:
    key, server = jwks
    settings = load_settings({"AUTH_JWKS_URL": server.url, "AUTH_JWT_ISSUER": ISSUER, "AUTH_JWT_AUDIENCE": AUDIENCE})
    rs256 = TokenVerifier(settings)
    assert (await rs256.verify(f"Bearer {key.sign('alice')}")).user_id == "alice"
    assert (await rs256.verify(f"Bearer {key.sign('bob')}")).user_id == "bob"
    with pytest.raises(TokenError, match="No trusted signing key"):
        await rs256.verify(f"Bearer {RsaKey().sign('alice')}")
    with pytest.raises(TokenError, match="signature"):
        await rs256.verify(f"Bearer {RsaKey().sign('alice', kid=key.kid)}")


async def test_static_tokens_name_their_user_and_admins() -> None:
    settings = load_settings(
        {"AUTH_STATIC_TOKENS": "alice-token-0123456=alice, root-token-01234567=root", "AUTH_STATIC_ADMINS": "root"}
    )
    static = TokenVerifier(settings)
    assert (await static.verify("Bearer alice-token-0123456")).user_id == "alice"
    assert (await static.verify("Bearer root-token-01234567")).is_admin
    with pytest.raises(TokenError, match="Invalid token"):
        await static.verify("Bearer alice-token-0123457")
    with pytest.raises(TokenError, match="Invalid token"):
        await static.verify(f"Bearer {hs256('alice')}")


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("  bearer   abc  ") == "abc"


# --- Identity of runs -------------------------------------------------------------------------


def test_the_authenticated_user_wins_over_context_and_configurable() -> None:
    config = {"configurable": {"langgraph_auth_user_id": "alice", "user_id": "bob"}}
    assert resolve_user_id("mallory", config) == "alice"
    assert resolve_user_id(None, config) == "alice"


def test_without_an_authenticated_user_the_context_decides() -> None:
    anonymous = {"configurable": {"langgraph_auth_user_id": "", "user_id": "from-config"}}
    assert resolve_user_id("from-context", anonymous) == "from-context"
    assert resolve_user_id(None, anonymous) == "from-config"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"context": {"user_id": "bob"}},
        {"config": {"configurable": {"user_id": "bob"}}},
    ],
)
def test_a_run_naming_another_user_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(Exception, match="leave user_id out") as raised:
        check_run_user(kwargs, "alice")
    assert getattr(raised.value, "status_code", None) == 403


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"context": {"user_id": "alice"}}, {"context": {"user_id": None}}, {"config": {"configurable": {}}}],
)
def test_a_run_naming_no_user_or_the_caller_is_allowed(kwargs: dict[str, Any]) -> None:
    check_run_user(kwargs, "alice")


# --- The store rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "value"),
    [
        ("get", {"namespace": ("memories", "alice"), "key": "k"}),
        ("put", {"namespace": ("memories", "alice"), "key": "k", "value": {"content": "likes tea"}}),
        ("put", {"namespace": ("custom", "alice", "recipes"), "key": "k", "value": {"content": 1}}),
        ("delete", {"namespace": ("profile", "alice"), "key": "profile"}),
        ("search", {"namespace": ("memories", "alice"), "query": "tea", "limit": 100, "offset": 0}),
        ("list_namespaces", {"namespace": ("memories", "alice"), "suffix": None, "max_depth": 3}),
    ],
)
def test_the_callers_own_namespaces_are_open(action: str, value: dict[str, Any]) -> None:
    check_store_request(action, value, "alice")


@pytest.mark.parametrize(
    ("action", "value"),
    [
        ("get", {"namespace": ("memories", "bob"), "key": "k"}),
        ("put", {"namespace": ("profile", "bob"), "key": "profile", "value": {}}),
        ("delete", {"namespace": ("memories", "bob"), "key": "k"}),
        ("search", {"namespace": ("memories", "bob")}),
        ("search", {"namespace": ("memories",)}),
        ("search", {"namespace": ()}),
        ("search", {"namespace": ("alice", "memories")}),
        ("put", {"namespace": ("alice",), "key": "k", "value": {}}),
        ("list_namespaces", {"namespace": None, "suffix": ("alice",)}),
        ("list_namespaces", {"namespace": ("memories",)}),
        ("list_namespaces", {"namespace": ("future_kind", "bob", "x")}),
    ],
)
def test_other_users_and_cross_user_prefixes_are_refused(action: str, value: dict[str, Any]) -> None:
    with pytest.raises(limits.LimitError) as raised:
        check_store_request(action, value, "alice")
    assert raised.value.status_code in (403, 422)


@pytest.mark.parametrize(
    ("action", "value", "message"),
    [
        ("get", {"namespace": ("memories", "alice", "a", "b", "c"), "key": "k"}, "at most 4"),
        ("get", {"namespace": ("memories", "alice", "*"), "key": "k"}, "may only contain"),
        ("get", {"namespace": ("memories", "alice", "sp ace"), "key": "k"}, "may only contain"),
        ("get", {"namespace": ("memories", "alice", "x" * 129), "key": "k"}, "at most 128"),
        ("get", {"namespace": ("memories", "alice"), "key": "k" * 257}, "at most 256"),
        ("get", {"namespace": ("memories", "alice"), "key": "a\nb"}, "control characters"),
        ("put", {"namespace": ("memories", "alice"), "key": "k", "value": {"content": "x" * 2001}}, "limit is 2000"),
        ("put", {"namespace": ("memories", "alice"), "key": "k", "value": {"text": "no content"}}, "non-empty string"),
        ("put", {"namespace": ("profile", "alice"), "key": "k", "value": {"notes": "x" * 20000}}, "bytes as JSON"),
        ("search", {"namespace": ("memories", "alice"), "query": "q" * 1001}, "too long"),
        ("search", {"namespace": ("memories", "alice"), "limit": 101}, "between 1 and 100"),
        ("search", {"namespace": ("memories", "alice"), "limit": 10, "offset": 10001}, "between 0 and 10000"),
        ("list_namespaces", {"namespace": ("memories", "alice"), "max_depth": 9}, "max_depth"),
        ("list_namespaces", {"namespace": ("memories", "alice"), "limit": 1000}, "between 1 and 100"),
    ],
)
def test_store_calls_are_bounded_with_a_clear_message(action: str, value: dict[str, Any], message: str) -> None:
    for user_id in ("alice", None):  # bounds hold with auth on and off
        with pytest.raises(limits.LimitError, match=message):
            check_store_request(action, value, user_id)


def test_with_auth_off_namespaces_are_not_confined() -> None:
    check_store_request("search", {"namespace": ("memories", "bob"), "limit": 10}, None)
    check_store_request("search", {"namespace": (), "limit": 10}, None)
    check_store_request("list_namespaces", {"namespace": None}, None)


def test_off_settings_are_not_enabled() -> None:
    assert not AuthSettings().enabled
