"""The gate and the loopback-error relay in front of the server's routes, on a stand-in app.

End to end on `langgraph dev`: tests/e2e/security/test_every_route.py.
"""

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from deployment.gate import AuthGate
from deployment.loopback_errors import LoopbackErrors
from deployment.tokens import AuthSettings, TokenVerifier, load_settings
from tests.support.tokens import bearer, hs256, hs256_env

METHODS = ["GET", "HEAD", "POST", "OPTIONS"]


async def reached(request: Request) -> PlainTextResponse:
    return PlainTextResponse("reached")


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("reached")
    await websocket.close()


def gated(settings: AuthSettings, **client: str) -> TestClient:
    """Every path of a stand-in server behind the gate."""
    app = Starlette(routes=[Route("/{path:path}", reached, methods=METHODS), WebSocketRoute("/ws", socket)])
    verifier = TokenVerifier(settings) if settings.enabled else None
    return TestClient(AuthGate(app, settings=settings, verifier=verifier), **client)


@pytest.fixture
def on() -> TestClient:
    return gated(load_settings(hs256_env()))


def test_with_auth_on_nothing_but_the_public_routes_passes_without_a_valid_token(on: TestClient) -> None:
    for path in ("/info", "/openapi.json", "/docs", "/", "/threads/search", "/ok/extra"):
        response = on.get(path)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer", path
        assert "Missing bearer token" in response.json()["detail"]
    forged = on.get("/info", headers=bearer(hs256("alice", secret="a-forger-secret-that-is-long-enough!!")))
    assert (forged.status_code, forged.json()["detail"]) == (401, "The token's signature is invalid.")
    assert on.get("/ok").text == "reached" and on.head("/ok").status_code == 200
    assert on.get("/info", headers=bearer(hs256("alice"))).text == "reached"


def test_the_memory_page_passes_without_a_token_but_its_data_does_not(on: TestClient) -> None:
    assert on.get("/me/page").text == "reached" and on.head("/me/page").status_code == 200
    for method, path in (("GET", "/me/memories"), ("POST", "/me/page"), ("GET", "/me/page/x"), ("GET", "/me")):
        assert on.request(method, path).status_code == 401, (method, path)


def test_the_development_routes_are_closed_even_to_admins(on: TestClient) -> None:
    admin = bearer(hs256("root", roles=["admin"]))
    for path in ("/internal/truncate", "/internal/debug/thread/x", "/deploy", "/deploy/1/stream", "/deploy/"):
        assert on.post(path, headers=admin).status_code == 404, path
        assert on.post(path).status_code == 404, path
    assert on.get("/deployments", headers=admin).text == "reached"


def test_metrics_need_an_admin(on: TestClient) -> None:
    response = on.get("/metrics", headers=bearer(hs256("alice")))
    assert response.status_code == 403 and "'roles' claim includes 'admin'" in response.json()["detail"]
    assert on.get("/metrics", headers=bearer(hs256("root", roles=["admin"]))).text == "reached"


def test_cors_preflights_pass_without_a_token(on: TestClient) -> None:
    preflight = {"Origin": "https://smith.langchain.com", "Access-Control-Request-Method": "POST"}
    assert on.options("/threads", headers=preflight).text == "reached"
    assert on.options("/threads").status_code == 401


def test_a_websocket_without_a_token_is_closed_before_it_opens(on: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as closed, on.websocket_connect("/ws"):
        pass
    assert closed.value.code == 1008 and "Missing bearer token" in closed.value.reason
    with on.websocket_connect("/ws", headers=bearer(hs256("alice"))) as websocket:
        assert websocket.receive_text() == "reached"


def test_in_process_requests_and_auth_off_pass() -> None:
    in_process = gated(load_settings(hs256_env()), root_path="/noauth")
    assert in_process.get("/info").text == "reached"
    off = gated(load_settings({}))
    assert off.post("/internal/truncate").text == "reached" and off.get("/metrics").text == "reached"


def failing(error: Exception, *, after_start: bool = False) -> TestClient:
    """A stand-in server whose handler raises ``error`` (after starting its response, if asked).

    An exception that escapes is re-raised by the client only when the response had started.
    """

    async def app(scope: dict, receive: object, send: object) -> None:
        if after_start:
            await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        raise error

    return TestClient(LoopbackErrors(app), raise_server_exceptions=after_start)


def status_error(url: str, status_code: int, body: object) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", url)
    response = httpx.Response(status_code, json=body, request=request)
    return httpx.HTTPStatusError("refused", request=request, response=response)


def test_an_inner_refusal_reaches_the_caller_instead_of_a_500() -> None:
    refusal = status_error("http://api/runs/wait", 403, {"detail": "The run's context sets user_id='alice'"})
    response = failing(refusal).post("/mcp")
    assert (response.status_code, response.json()) == (403, {"detail": "The run's context sets user_id='alice'"})
    assert failing(status_error("http://api/runs/wait", 503, {})).post("/mcp").status_code == 500
    assert failing(status_error("https://provider.example/v1", 401, {})).post("/mcp").status_code == 500
    with pytest.raises(httpx.HTTPStatusError):
        failing(refusal, after_start=True).post("/mcp")
