"""Custom auth of the deployment (``langgraph.json``: ``"auth": {"path": "deployment.auth:auth"}``).

Authentication: every request carries ``Authorization: Bearer <token>``, verified as described
in ``deployment.tokens``. The user id is the token's subject and nothing else.

Authorization, once a caller is known:

* threads, and the runs on them, belong to the user who created them (``metadata.owner``);
  every read, write, search and run creation is filtered on it, so another user's thread
  looks like one that does not exist (404);
* a run may not name another user (``user_id`` in its context or configurable): refused with
  403 rather than silently replaced, so a client that still sends ``user_id`` learns at once
  that it no longer chooses the user;
* store operations are confined to namespaces ``("<kind>", <caller>, ...)``; listing needs
  such a prefix too; every store call is bounded (``deployment.limits``);
* assistants are readable by everyone; creating, changing or deleting one needs the admin
  role (a claim in the token); crons are refused (nothing here needs them, and a cron keeps
  acting for its creator long after the request);
* anything without a handler below is refused (deny by default), so a resource or action
  added by a later server version is closed until someone decides who may use it.

Routes the server answers without asking these handlers (its meta routes, the in-memory
runtime's own) are closed by ``deployment.gate``, which verifies tokens with the same verifier.

Auth is off when no ``AUTH_*`` method is configured (and only then, only under
``langgraph dev``, see ``tokens.load_settings``): every request is let through as an
anonymous caller with no filters, exactly as without custom auth, and runs fall back to the
``user_id`` of their context, then ``$DEFAULT_USER_ID``. The store bounds still apply.
"""

import logging
from collections.abc import Mapping
from typing import Any

from langgraph_sdk import Auth

from deployment import limits
from deployment.tokens import AuthSettings, TokenError, TokenVerifier, admin_settings_hint, load_settings
from memory.identity import resolve_user_id

logger = logging.getLogger(__name__)

OWNER_KEY = "owner"
ADMIN_PERMISSION = "admin"
PUBLIC_PAGES = frozenset({("GET", "/me/page"), ("HEAD", "/me/page")})
"""(method, path) of our own routes answered without a token: static pages that hold no data."""

Filter = dict[str, Any]


def _http_error(status_code: int, detail: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(status_code=status_code, detail=detail)


def _caller(ctx: Auth.types.AuthContext) -> str:
    identity = ctx.user.identity
    if not identity:
        raise _http_error(401, "This request has no authenticated user.")
    return identity


def _stamp_owner(value: Mapping[str, Any], user_id: str) -> None:
    """Set ``metadata.owner`` on the object being created or changed (the caller cannot choose it)."""
    metadata = value.get("metadata")
    if isinstance(metadata, dict):
        metadata[OWNER_KEY] = user_id


def check_run_user(kwargs: Mapping[str, Any], user_id: str) -> None:
    """Refuse a run whose context or configurable names a user other than the caller."""
    config = kwargs.get("config")
    holders = {
        "context": kwargs.get("context"),
        "configurable": config.get("configurable") if isinstance(config, Mapping) else None,
    }
    for where, holder in holders.items():
        claimed = holder.get("user_id") if isinstance(holder, Mapping) else None
        if claimed not in (None, "", user_id):
            raise _http_error(
                403,
                f"The run's {where} sets user_id={claimed!r}, but the token is {user_id!r}'s. "
                "With auth on, the user comes from the token: leave user_id out.",
            )


def check_store_request(action: str, value: dict[str, Any], user_id: str | None) -> None:
    """Bound a store API call and, when ``user_id`` is given, confine it to that user's namespaces.

    Raises LimitError (mapped to 4xx by the handler).
    """
    namespace = value.get("namespace")
    if action == "list_namespaces":
        if namespace is not None or user_id is not None:
            if namespace is None:
                raise limits.LimitError(f"Listing namespaces needs a prefix ['<kind>', '{user_id}'].", status_code=403)
            _namespace(namespace, user_id, "Prefix")
        if value.get("suffix") is not None:
            limits.check_namespace(value["suffix"], "Suffix")
        max_depth = value.get("max_depth")
        if max_depth is not None and (
            not isinstance(max_depth, int) or not 1 <= max_depth <= limits.MAX_NAMESPACE_DEPTH
        ):
            raise limits.LimitError(f"`max_depth` must be between 1 and {limits.MAX_NAMESPACE_DEPTH}.")
        limits.check_page(value.get("limit", 100), value.get("offset", 0))
        return
    if action == "search" and user_id is None and not namespace:
        labels: tuple[str, ...] = ()  # auth off: searching everything stays allowed
    else:
        labels = _namespace(namespace, user_id, "Namespace")
    if action in ("get", "put", "delete"):
        limits.check_key(value.get("key"))
    if action == "put" and value.get("value") is not None:
        limits.check_value(labels, value["value"])
    if action == "search":
        limits.check_query(value.get("query"))
        limits.check_page(value.get("limit", 10), value.get("offset", 0))


def _namespace(namespace: object, user_id: str | None, what: str) -> tuple[str, ...]:
    if user_id is None:
        return limits.check_namespace(namespace, what)
    return limits.confine(namespace, user_id, what)


def build_auth(settings: AuthSettings, verifier: TokenVerifier | None) -> Auth:
    """The ``Auth`` object for ``settings``: ``verifier`` (None when auth is off) and the handlers above."""
    auth = Auth()

    @auth.authenticate
    async def authenticate(authorization: str | None, method: str, path: str) -> Auth.types.MinimalUserDict:
        """The caller named by the bearer token (anonymous when auth is off, or for a public page)."""
        if verifier is None:
            return {"identity": "", "display_name": "anonymous (auth off)", "is_authenticated": False}
        if (method, path) in PUBLIC_PAGES:
            # The server authenticates every route of our app; a page asks for the token itself.
            return {"identity": "", "display_name": "anonymous (public page)", "is_authenticated": False}
        try:
            identity = await verifier.verify(authorization)
        except TokenError as error:
            raise _http_error(401, str(error)) from None
        return {
            "identity": identity.user_id,
            "display_name": identity.user_id,
            "is_authenticated": True,
            "permissions": [ADMIN_PERMISSION] if identity.is_admin else [],
        }

    @auth.on
    async def deny_by_default(ctx: Auth.types.AuthContext, value: Any) -> None:
        """Refuse what no handler below allows; new resources and actions start closed."""
        if settings.enabled:
            raise _http_error(403, f"{ctx.resource}.{ctx.action} is not allowed.")

    @auth.on.threads.create
    async def create_thread(ctx: Auth.types.AuthContext, value: Auth.types.ThreadsCreate) -> Filter | None:
        """New threads belong to their creator."""
        if not settings.enabled:
            return None
        user_id = _caller(ctx)
        _stamp_owner(value, user_id)
        return {OWNER_KEY: user_id}

    @auth.on.threads.create_run
    async def create_run(ctx: Auth.types.AuthContext, value: Auth.types.RunsCreate) -> Filter | None:
        """Runs only on the caller's threads (a new thread is theirs), never for another user."""
        if not settings.enabled:
            return None
        user_id = _caller(ctx)
        check_run_user(value.get("kwargs") or {}, user_id)
        _stamp_owner(value, user_id)
        return {OWNER_KEY: user_id}

    @auth.on.threads.update
    async def update_thread(ctx: Auth.types.AuthContext, value: Auth.types.ThreadsUpdate) -> Filter | None:
        """Only the owner changes a thread, and the owner cannot be changed."""
        if not settings.enabled:
            return None
        user_id = _caller(ctx)
        _stamp_owner(value, user_id)
        return {OWNER_KEY: user_id}

    @auth.on(resources="threads", actions=["read", "delete", "search"])
    async def own_threads(ctx: Auth.types.AuthContext, value: Any) -> Filter | None:
        """Only the owner sees or deletes a thread and its runs."""
        if not settings.enabled:
            return None
        return {OWNER_KEY: _caller(ctx)}

    @auth.on(resources="assistants", actions=["read", "search"])
    async def read_assistants(ctx: Auth.types.AuthContext, value: Any) -> None:
        """Assistants are shared configuration: everyone may read and use them."""
        return None

    @auth.on(resources="assistants", actions=["create", "update", "delete"])
    async def change_assistants(ctx: Auth.types.AuthContext, value: Any) -> None:
        """Only admins change the assistants everyone uses."""
        if settings.enabled and ADMIN_PERMISSION not in ctx.permissions:
            raise _http_error(
                403, f"Only admins may {ctx.action} assistants; that takes {admin_settings_hint(settings)}."
            )

    @auth.on.crons
    async def refuse_crons(ctx: Auth.types.AuthContext, value: Any) -> None:
        """Crons are not used by this service and stay closed with auth on."""
        if settings.enabled:
            raise _http_error(403, "Crons are not available on this deployment.")

    @auth.on.store
    async def confine_store(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> None:
        """Bound every store call and keep it in the caller's namespaces."""
        try:
            check_store_request(ctx.action, value, _caller(ctx) if settings.enabled else None)
        except limits.LimitError as error:
            raise _http_error(error.status_code, str(error)) from None

    return auth


def caller_user_id(settings: AuthSettings, user: object | None) -> str:
    """The user a custom-route request acts for: the token's user, or the local user when auth is off.

    ``user`` is what the auth middleware put in the request scope (None when the route was
    reached without it, e.g. through the in-process client, which has no caller).
    """
    if not settings.enabled:
        return resolve_user_id(None, None)
    identity = getattr(user, "identity", None)
    if not isinstance(identity, str) or not identity:
        raise TokenError("This request has no authenticated user.")
    return identity


SETTINGS = load_settings()
# One verifier for the auth handler and the gate (deployment.gate): one JWKS cache.
VERIFIER = TokenVerifier(SETTINGS) if SETTINGS.enabled else None
if SETTINGS.enabled:
    logger.info(
        "Auth is on: %s.",
        "JWT" + (" and static development tokens" if SETTINGS.static_tokens else "")
        if SETTINGS.uses_jwt
        else "static development tokens",
    )
else:
    logger.warning("Auth is off: any client may act as any user. Set AUTH_* variables to turn it on (README).")
auth = build_auth(SETTINGS, VERIFIER)
