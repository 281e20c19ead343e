"""The HTTP shell every service shares: health, auth state, error bodies, size limit, tracing."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.errors import PlatformError
from services.platform.auth import TokenVerifier
from services.platform.collector import freeze_long_lived
from services.platform.lifecycle import MustRestart
from services.platform.settings import Settings

MAX_BODY_BYTES = 1024 * 1024
SWAGGER_UI = Path(__file__).with_name("swagger_ui")


def error_body(code: str, message: str, **detail: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **detail}


async def _platform_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, PlatformError)
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(
        error_body(error.code, error.message, **error.detail), error.status, headers=headers
    )


async def _must_restart(_: Request, error: Exception) -> Response:
    # Not the caller's doing, and nothing was stored: 503 says to come back once restarted.
    return JSONResponse(error_body("unavailable", str(error)), 503)


SHOWN = 40
"""At most this much of anything the caller sent is echoed in an error (a field's name)."""

# A whole number in a path outside its range names no resource: 404, as an unknown id would.
_OUT_OF_RANGE = frozenset(
    {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "int_parsing_size"}
)


def _field(location: Sequence[Any]) -> str:
    """The field as the caller named it: its path of JSON names and list indexes."""
    names = [str(p) for p in location]
    if names and names[0] in ("body", "query", "path"):
        del names[0]
    return ".".join(n if len(n) <= SHOWN else f"{n[:SHOWN]}…" for n in names) or "body"


def _problem(item: Mapping[str, Any]) -> dict[str, Any]:
    context = item.get("ctx") or {}
    rule = item.get("type", "invalid")
    if rule == "json_invalid":
        # FastAPI locates a JSON syntax error by its offset, which is no field.
        return {"field": "body", "rule": rule, "message": f"not JSON: {context.get('error')}"}
    problem = {"field": _field(item.get("loc", ())), "rule": rule, "message": item.get("msg", "")}
    if context.get("allowed") is not None:
        problem["allowed"] = context["allowed"]
    return problem


def _refusal(problems: list[dict[str, Any]]) -> Response:
    first = problems[0] if problems else {"field": "body", "message": "invalid"}
    return JSONResponse(
        error_body("validation_failed", f"{first['field']}: {first['message']}", problems=problems),
        422,
    )


async def _validation_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    if errors and all(e["loc"][0] == "path" and e["type"] in _OUT_OF_RANGE for e in errors):
        names = ", ".join(sorted({str(e["loc"][-1]) for e in errors}))
        return JSONResponse(error_body("not_found", f"no such {names}"), 404)
    return _refusal([_problem(item) for item in errors])


class BodySizeLimit:
    """413 for bodies over the limit, whether announced by Content-Length or streamed chunked."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # An HTTPException passes FastAPI's body parsing unchanged and becomes a 413.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, counting_receive, send)

    def _message(self) -> str:
        return f"request bodies are limited to {self.limit} bytes"

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(error_body("payload_too_large", self._message())).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


# What no path names and no query parameter holds: PostgreSQL text cannot store NUL, and no
# identifier or search has a control character in it.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class NoControlCharactersInUrl:
    """A path with a control character names no resource (404); a query parameter holding one
    is refused as a field is (422 naming it), before any route reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = _url_refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _url_refusal(scope: Scope) -> Response | None:
    if _CONTROL.search(scope.get("path", "")):
        return JSONResponse(error_body("not_found", "no such resource"), 404)
    problems = [
        {
            "field": _field(["query", name]),
            "rule": "control_character",
            "message": "must not hold control characters",
        }
        for name, value in QueryParams(scope.get("query_string", b"")).multi_items()
        if _CONTROL.search(name) or _CONTROL.search(value)
    ]
    return _refusal(problems) if problems else None


async def _http_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 400 and error.__cause__ is not None:
        # FastAPI's answer to a body it could not parse (not UTF-8, or nested too deep for
        # Python's JSON reader) is a 400 without problems; the caller gets what any bad body gets.
        return _refusal(
            [
                {
                    "field": "body",
                    "rule": "json_invalid",
                    "message": "not JSON that can be read (not UTF-8, or nested too deep)",
                }
            ]
        )
    code = "payload_too_large" if error.status_code == 413 else "http_error"
    return JSONResponse(error_body(code, str(error.detail)), error.status_code)


def create_app(title: str, settings: Settings, description: str = "") -> FastAPI:
    """A FastAPI app with /health open and every other route expected to require a token."""
    app = FastAPI(
        title=title, description=description, version="0.1.0", docs_url=None, redoc_url=None
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings)
    app.add_exception_handler(PlatformError, _platform_error)
    app.add_exception_handler(MustRestart, _must_restart)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(NoControlCharactersInUrl)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    # Swagger UI from files of our own: a closed municipal network (LGWAN) reaches no CDN.
    app.mount("/docs-assets", StaticFiles(directory=SWAGGER_UI), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} — API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    # One server span per request is the trace's root; spans for each ASGI send and receive
    # would triple the tracing work of a command and tell nothing the root does not.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="health", exclude_spans=["receive", "send"]
    )
    freeze_long_lived()
    return app
