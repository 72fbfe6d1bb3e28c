"""Request bodies of the memory routes are strict JSON.

Python's parser accepts ``NaN`` and ``Infinity``, which are not JSON and could not be sent back;
and FastAPI answers a body that is not UTF-8 with a 400 of its own. Both are refused here as
malformed JSON, which the routes answer like any invalid body (422, ``deployment.problems``).
"""

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


def _refuse_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


class StrictJSONRequest(Request):
    """A request whose ``json()`` raises ``JSONDecodeError`` for anything but strict JSON."""

    async def json(self) -> Any:
        """The body, parsed as strict JSON."""
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                text = body.decode()
            except UnicodeDecodeError as error:
                raise json.JSONDecodeError("The body is not UTF-8", "", error.start) from None
            self._json = json.loads(text, parse_constant=_refuse_constant)
        return self._json


class StrictJSONRoute(APIRoute):
    """A route that reads its body as strict JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, given a ``StrictJSONRequest``."""
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
