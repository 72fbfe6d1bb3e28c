"""Auth settings from the environment, and bearer-token verification.

Kept apart from the ``Auth`` object so the rules can be unit-tested without a server.

Tokens are JWTs verified with PyJWT: HS256 with a shared secret, or RS256 with a PEM public
key or the keys of a JWKS endpoint. The algorithm is fixed by the kind of key configured, so
a token cannot choose it (no ``none``, no HS256 signed with a public key). Expiry, issuer and
audience are always checked: without an audience check, a token the same identity provider
issued for another application would be accepted here.

For local development only, a static list of tokens can stand in for an identity provider.
"""

import asyncio
import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from deployment.limits import LimitError, check_label

ENV_JWT_SECRET = "AUTH_JWT_SECRET"
ENV_JWT_PUBLIC_KEY = "AUTH_JWT_PUBLIC_KEY"
ENV_JWKS_URL = "AUTH_JWKS_URL"
ENV_ISSUER = "AUTH_JWT_ISSUER"
ENV_AUDIENCE = "AUTH_JWT_AUDIENCE"
ENV_LEEWAY = "AUTH_JWT_LEEWAY_SECONDS"
ENV_USER_CLAIM = "AUTH_USER_CLAIM"
ENV_ROLES_CLAIM = "AUTH_ROLES_CLAIM"
ENV_ADMIN_ROLE = "AUTH_ADMIN_ROLE"
ENV_STATIC_TOKENS = "AUTH_STATIC_TOKENS"
ENV_STATIC_ADMINS = "AUTH_STATIC_ADMINS"
AUTH_ENV_VARS = (
    ENV_JWT_SECRET,
    ENV_JWT_PUBLIC_KEY,
    ENV_JWKS_URL,
    ENV_ISSUER,
    ENV_AUDIENCE,
    ENV_LEEWAY,
    ENV_USER_CLAIM,
    ENV_ROLES_CLAIM,
    ENV_ADMIN_ROLE,
    ENV_STATIC_TOKENS,
    ENV_STATIC_ADMINS,
)
"""Every variable ``load_settings`` reads (besides the two below, which the server sets)."""
# `langgraph dev` sets the variant to "local_dev"; deployments set other values. Every
# LangGraph server sets the runtime edition; neither is set when no server runs (tests, scripts).
ENV_API_VARIANT = "LANGSMITH_LANGGRAPH_API_VARIANT"
ENV_RUNTIME_EDITION = "LANGGRAPH_RUNTIME_EDITION"
LOCAL_DEV_VARIANT = "local_dev"

MIN_SECRET_BYTES = 32
MIN_STATIC_TOKEN_CHARS = 16
MAX_TOKEN_CHARS = 8192
_JWKS_TIMEOUT_SECONDS = 5
_JWKS_CACHE_SECONDS = 300


class AuthConfigurationError(ValueError):
    """The auth environment variables are invalid; the message says which one and why."""


class TokenError(Exception):
    """The request carries no usable token; the message is safe to return with a 401."""


@dataclass(frozen=True)
class AuthSettings:
    """What ``load_settings`` read from the environment. Auth is on when any method is set."""

    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: tuple[str, ...] = ()
    leeway_seconds: float = 30.0
    user_claim: str = "sub"
    roles_claim: str = "roles"
    admin_role: str = "admin"
    static_tokens: Mapping[str, str] = field(default_factory=dict)
    """Token -> user id, for local development."""
    static_admins: frozenset[str] = frozenset()

    @property
    def uses_jwt(self) -> bool:
        """True when tokens are verified as JWTs (a secret, a public key or a JWKS URL is set)."""
        return bool(self.jwt_secret or self.jwt_public_key or self.jwks_url)

    @property
    def enabled(self) -> bool:
        """True when requests must carry a token; False leaves the server open (local development)."""
        return self.uses_jwt or bool(self.static_tokens)


@dataclass(frozen=True)
class Identity:
    """Who a verified token says the caller is."""

    user_id: str
    is_admin: bool
    source: Literal["jwt", "static"]


def load_settings(environ: Mapping[str, str] | None = None) -> AuthSettings:
    """Read and validate the ``AUTH_*`` variables; raise AuthConfigurationError on any mistake.

    Auth may be off, and static tokens used, only outside a deployment (``langgraph dev``, or
    no server at all): a deployment that forgot its auth variables must not start open.
    """
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    secret, public_key, jwks_url = get(ENV_JWT_SECRET), get(ENV_JWT_PUBLIC_KEY), get(ENV_JWKS_URL)
    methods = [
        name
        for name, value in ((ENV_JWT_SECRET, secret), (ENV_JWT_PUBLIC_KEY, public_key), (ENV_JWKS_URL, jwks_url))
        if value
    ]
    if len(methods) > 1:
        raise AuthConfigurationError(f"Set only one of {', '.join(methods)}: each fixes how tokens are verified.")
    if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
        raise AuthConfigurationError(
            f"{ENV_JWT_SECRET} is {len(secret.encode())} bytes; HS256 needs at least {MIN_SECRET_BYTES} "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
        )
    if public_key is not None:
        public_key = public_key.replace("\\n", "\n")
        try:
            load_pem_public_key(public_key.encode())
        except ValueError as error:
            raise AuthConfigurationError(
                f"{ENV_JWT_PUBLIC_KEY} is not a PEM public key ('-----BEGIN PUBLIC KEY-----...'): {error}"
            ) from None
    if jwks_url is not None and not jwks_url.startswith(("https://", "http://")):
        raise AuthConfigurationError(f"{ENV_JWKS_URL} must be an http(s) URL, got {jwks_url!r}.")

    issuer = get(ENV_ISSUER)
    audience = tuple(part.strip() for part in (get(ENV_AUDIENCE) or "").split(",") if part.strip())
    if methods and (issuer is None or not audience):
        missing = [name for name, value in ((ENV_ISSUER, issuer), (ENV_AUDIENCE, audience)) if not value]
        raise AuthConfigurationError(
            f"{methods[0]} is set but {' and '.join(missing)} is not: tokens are only accepted "
            "from a known issuer for this service's audience."
        )
    leeway = _number(get(ENV_LEEWAY), ENV_LEEWAY, default=30.0, low=0, high=300)

    static_tokens = _static_tokens(get(ENV_STATIC_TOKENS))
    static_admins = frozenset(part.strip() for part in (get(ENV_STATIC_ADMINS) or "").split(",") if part.strip())
    unknown_admins = static_admins - set(static_tokens.values())
    if unknown_admins:
        raise AuthConfigurationError(
            f"{ENV_STATIC_ADMINS} names {sorted(unknown_admins)}, who have no token in {ENV_STATIC_TOKENS}."
        )

    settings = AuthSettings(
        jwt_secret=secret,
        jwt_public_key=public_key,
        jwks_url=jwks_url,
        issuer=issuer,
        audience=audience,
        leeway_seconds=leeway,
        user_claim=get(ENV_USER_CLAIM) or "sub",
        roles_claim=get(ENV_ROLES_CLAIM) or "roles",
        admin_role=get(ENV_ADMIN_ROLE) or "admin",
        static_tokens=static_tokens,
        static_admins=static_admins,
    )
    variant, edition = env.get(ENV_API_VARIANT) or "", env.get(ENV_RUNTIME_EDITION) or ""
    if (variant or edition) and variant != LOCAL_DEV_VARIANT:
        if not settings.enabled:
            raise AuthConfigurationError(
                f"Auth is not configured, and this server is a deployment ({ENV_API_VARIANT}={variant!r}, "
                f"{ENV_RUNTIME_EDITION}={edition!r}), not `langgraph dev`: set "
                f"{ENV_JWT_SECRET}, {ENV_JWT_PUBLIC_KEY} or {ENV_JWKS_URL}, with {ENV_ISSUER} and "
                f"{ENV_AUDIENCE}. Auth may only be off under `langgraph dev`."
            )
        if static_tokens:
            raise AuthConfigurationError(
                f"{ENV_STATIC_TOKENS} is for local development (`langgraph dev`) only; "
                "a deployment verifies JWTs from an identity provider."
            )
    return settings


def _number(raw: str | None, name: str, *, default: float, low: float, high: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise AuthConfigurationError(f"{name} must be a number of seconds, got {raw!r}.") from None
    if not low <= value <= high:
        raise AuthConfigurationError(f"{name} must be between {low:g} and {high:g}, got {raw!r}.")
    return value


def _static_tokens(raw: str | None) -> dict[str, str]:
    """Parse ``token=user,token=user``; tokens long enough not to be guessed, users valid ids."""
    tokens: dict[str, str] = {}
    for entry in (raw or "").split(","):
        if not entry.strip():
            continue
        token, sep, user_id = (part.strip() for part in entry.partition("="))
        if not sep or not token or not user_id:
            raise AuthConfigurationError(f"{ENV_STATIC_TOKENS} entries are 'token=user_id', got {entry.strip()!r}.")
        if len(token) < MIN_STATIC_TOKEN_CHARS:
            raise AuthConfigurationError(
                f"A token in {ENV_STATIC_TOKENS} (for {user_id!r}) is shorter than {MIN_STATIC_TOKEN_CHARS} characters."
            )
        if token in tokens:
            raise AuthConfigurationError(f"A token in {ENV_STATIC_TOKENS} is listed twice.")
        try:
            check_label(user_id, "User id")
        except LimitError as error:
            raise AuthConfigurationError(f"{ENV_STATIC_TOKENS}: {error}") from None
        tokens[token] = user_id
    return tokens


class TokenVerifier:
    """Turns an ``Authorization`` header into an Identity, or raises TokenError."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._key: Any = None
        self._algorithm = "RS256"
        self._jwks: jwt.PyJWKClient | None = None
        if settings.jwt_secret:
            self._key, self._algorithm = settings.jwt_secret, "HS256"
        elif settings.jwt_public_key:
            self._key = load_pem_public_key(settings.jwt_public_key.encode())
        elif settings.jwks_url:
            self._jwks = jwt.PyJWKClient(
                settings.jwks_url, cache_keys=True, lifespan=_JWKS_CACHE_SECONDS, timeout=_JWKS_TIMEOUT_SECONDS
            )

    async def verify(self, authorization: str | None) -> Identity:
        """The caller named by a valid bearer token."""
        token = bearer_token(authorization)
        user_id = self._static_user(token)
        if user_id is not None:
            return Identity(user_id, user_id in self.settings.static_admins, "static")
        if not self.settings.uses_jwt:
            raise TokenError("Invalid token.")
        claims = await self._claims(token)
        return Identity(self._user_id(claims), self._is_admin(claims), "jwt")

    def _static_user(self, token: str) -> str | None:
        # Compare against every token in constant time, so timing does not reveal a prefix.
        found = None
        for candidate, user_id in self.settings.static_tokens.items():
            if hmac.compare_digest(candidate.encode(), token.encode()):
                found = user_id
        return found

    async def _claims(self, token: str) -> dict[str, Any]:
        key = self._key
        try:
            if self._jwks is not None:
                # The JWKS fetch is blocking I/O (urllib); keep it off the event loop.
                key = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
            required = ["exp", "iss", "aud"]
            if self.settings.user_claim == "sub":
                required.append("sub")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[self._algorithm],
                audience=list(self.settings.audience),
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("The token is not valid yet.") from None
        except jwt.InvalidIssuerError:
            raise TokenError("The token was not issued by the expected issuer.") from None
        except jwt.InvalidAudienceError:
            raise TokenError("The token is not meant for this service (audience).") from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenError(f"The token lacks the {error.claim!r} claim.") from None
        except jwt.InvalidSignatureError:
            raise TokenError("The token's signature is invalid.") from None
        except jwt.PyJWKClientConnectionError:
            raise TokenError("The signing keys cannot be fetched right now; try again later.") from None
        except (jwt.PyJWKClientError, jwt.InvalidKeyError):
            raise TokenError("No trusted signing key matches the token.") from None
        except jwt.InvalidAlgorithmError:
            raise TokenError(f"The token must be signed with {self._algorithm}.") from None
        except jwt.InvalidTokenError:
            raise TokenError("The token is malformed.") from None
        return claims

    def _user_id(self, claims: Mapping[str, Any]) -> str:
        value = _claim(claims, self.settings.user_claim)
        if not isinstance(value, str) or not value:
            raise TokenError(f"The token lacks the {self.settings.user_claim!r} claim naming the user.")
        try:
            return check_label(value, "The user id in the token")
        except LimitError as error:
            raise TokenError(str(error)) from None

    def _is_admin(self, claims: Mapping[str, Any]) -> bool:
        roles = _claim(claims, self.settings.roles_claim)
        if isinstance(roles, str):
            roles = roles.replace(",", " ").split()
        if not isinstance(roles, Sequence):
            return False
        return self.settings.admin_role in roles


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by dotted path into nested claims (e.g. ``realm_access.roles``)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not authorization or not authorization.strip():
        raise TokenError("Missing bearer token: send `Authorization: Bearer <token>`.")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise TokenError("Malformed Authorization header: expected `Bearer <token>`.")
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError("The token is too long.")
    return token


def admin_settings_hint(settings: AuthSettings) -> str:
    """How a caller becomes an admin, for error messages."""
    if settings.uses_jwt:
        return f"a token whose {settings.roles_claim!r} claim includes {settings.admin_role!r}"
    return f"a token of a user listed in {ENV_STATIC_ADMINS}"
