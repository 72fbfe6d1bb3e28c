"""A refusal inside the server reaches the caller as a refusal, not as a 500.

Some of langgraph-api's own handlers serve a request by calling the server again through the
in-process client (``langgraph_sdk.get_client()`` without a URL, base ``http://api``): MCP's
``tools/call`` runs the assistant with ``runs.wait``. When that inner call is refused (our
auth handler's 403 for a run naming another user, a 404, a 422 for bad input) and the handler
does not catch the ``httpx.HTTPStatusError``, the server answers 500 and drops the connection
(langgraph-api 0.16.7). This ASGI middleware answers the inner call's 4xx and its ``detail``
instead, provided nothing of the response was sent yet; everything else passes untouched.
"""

from typing import Any

import httpx
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

IN_PROCESS_HOST = "api"
"""Host of the in-process client's base URL (``http://api``)."""


class LoopbackErrors:
    """ASGI middleware: relay an uncaught 4xx of the in-process client as the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request; answer an inner 4xx that escaped the handler before any response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except httpx.HTTPStatusError as error:
            status_code = error.response.status_code
            if started or error.request.url.host != IN_PROCESS_HOST or not 400 <= status_code < 500:
                raise
            await JSONResponse({"detail": _detail(error.response)}, status_code=status_code)(scope, receive, send)


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text[:1000]
    except httpx.StreamError:  # a streamed inner response whose body was never read
        return response.reason_phrase
    return body.get("detail", body) if isinstance(body, dict) else body
