"""The server's front door: with auth on, nothing past it without a valid token.

The custom auth of ``deployment.auth`` sees only the routes langgraph-api chooses to protect
(threads, runs, store, assistants, and ours with ``enable_custom_route_auth``). The server
also answers routes that never consult it: its meta routes (``/info``, ``/metrics``,
``/docs``, ``/openapi.json``) and, under ``langgraph dev``, the in-memory runtime's own
``/internal/*`` (dump any thread, wipe every thread) and ``/deploy*`` (start
``langgraph deploy``). This ASGI middleware sits on the deployment's HTTP app
(``langgraph.json`` ``http.app``), whose middleware the server runs in front of every route,
and with auth on:

* ``/internal/*`` and ``/deploy*`` answer 404 to everyone, with or without a token: they act
  on every user's data or on the machine, and no user of this service needs them;
* ``GET /ok`` (the health check: ``{"ok": true}``), ``GET /me/page`` (the memory page: static
  HTML that asks for the token and sends it with each data call, which still needs it) and
  CORS preflights (no credentials by design, answered by the server's CORS middleware) need no
  token: ``PUBLIC_ROUTES``;
* ``/metrics`` (figures about the whole server: runs queued, requests per route) needs an
  admin's token;
* everything else needs a token that ``deployment.tokens`` accepts (the same verifier the auth
  handler uses), or gets the same 401 with its reason.

With auth off it lets everything through (local development). Requests of the in-process
client also pass: their root path ``/noauth`` cannot be set over HTTP, and they come from code
already running for a checked caller (langgraph-api carries that caller's identity along).
"""

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from deployment.auth import PUBLIC_PAGES, SETTINGS, VERIFIER
from deployment.tokens import AuthSettings, TokenError, TokenVerifier, admin_settings_hint

PUBLIC_ROUTES = frozenset({("GET", "/ok"), ("HEAD", "/ok")}) | PUBLIC_PAGES
"""(method, path) pairs answered without a token: they reveal nothing about any user."""
CLOSED_PREFIXES = frozenset({"internal", "deploy"})
"""First path segments refused to everyone: development tools of the in-memory runtime."""
ADMIN_PATHS = frozenset({"/metrics"})
IN_PROCESS_ROOT = "/noauth"
# A WebSocket close reason must fit in 123 bytes.
_MAX_CLOSE_REASON = 120


class AuthGate:
    """ASGI middleware: refuse, with auth on, what ``deployment.auth`` would never be asked about."""

    def __init__(
        self, app: ASGIApp, settings: AuthSettings = SETTINGS, verifier: TokenVerifier | None = VERIFIER
    ) -> None:
        self.app = app
        self.settings = settings
        self.verifier = verifier if settings.enabled else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer the refusal (an HTTP response, or a closed WebSocket)."""
        if scope["type"] not in ("http", "websocket") or self.verifier is None or _in_process(scope):
            await self.app(scope, receive, send)
            return
        refusal = await self._refusal(self.verifier, scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status_code, detail = refusal
        if scope["type"] == "websocket":
            # Closing before accepting: the client's handshake fails (HTTP 403).
            await send({"type": "websocket.close", "code": 1008, "reason": detail[:_MAX_CLOSE_REASON]})
            return
        headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
        await JSONResponse({"detail": detail}, status_code=status_code, headers=headers)(scope, receive, send)

    async def _refusal(self, verifier: TokenVerifier, scope: Scope) -> tuple[int, str] | None:
        """``(status, detail)`` when the request may not pass, else None."""
        path: str = scope["path"]
        method: str = scope.get("method", "GET")
        first_segment = next((segment for segment in path.split("/") if segment), "")
        if first_segment in CLOSED_PREFIXES:
            return 404, "Not Found"
        headers = Headers(scope=scope)
        if (method, path) in PUBLIC_ROUTES or _is_preflight(method, headers):
            return None
        try:
            identity = await verifier.verify(headers.get("authorization"))
        except TokenError as error:
            return 401, str(error)
        if path.rstrip("/") in ADMIN_PATHS and not identity.is_admin:
            return 403, f"{path} reports on the whole server; it takes {admin_settings_hint(self.settings)}."
        return None


def _in_process(scope: Scope) -> bool:
    root_path: str = scope.get("root_path", "")
    return root_path == IN_PROCESS_ROOT or root_path.startswith(IN_PROCESS_ROOT + "/")


def _is_preflight(method: str, headers: Headers) -> bool:
    return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers
