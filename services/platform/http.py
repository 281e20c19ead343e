"""The HTTP shell every service shares: health, auth state, error bodies, size limit, tracing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.responses import Response

from contracts.errors import PlatformError
from services.platform.auth import TokenVerifier
from services.platform.settings import Settings

MAX_BODY_BYTES = 1024 * 1024


def error_body(code: str, message: str, **detail: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **detail}


async def _platform_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, PlatformError)
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(
        error_body(error.code, error.message, **error.detail), error.status, headers=headers
    )


async def _validation_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    problems = []
    for item in error.errors():
        location = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path")]
        problem: dict[str, Any] = {
            "field": ".".join(location) or "body",
            "rule": item.get("type", "invalid"),
            "message": item.get("msg", ""),
        }
        allowed = (item.get("ctx") or {}).get("allowed")
        if allowed is not None:
            problem["allowed"] = allowed
        problems.append(problem)
    first = problems[0] if problems else {"field": "body", "message": "invalid"}
    return JSONResponse(
        error_body("validation_failed", f"{first['field']}: {first['message']}", problems=problems),
        422,
    )


async def _limit_body(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        return JSONResponse(
            error_body(
                "payload_too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes"
            ),
            413,
        )
    return await call_next(request)


def create_app(title: str, settings: Settings, description: str = "") -> FastAPI:
    """A FastAPI app with /health open and every other route expected to require a token."""
    app = FastAPI(title=title, description=description, version="0.1.0")
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings)
    app.add_exception_handler(PlatformError, _platform_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.middleware("http")(_limit_body)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    FastAPIInstrumentor.instrument_app(app, excluded_urls="health")
    return app
