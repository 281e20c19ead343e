"""The desk as an ASGI app: mounted at ``/`` beside the APIs in embedded mode, or run alone as
``tsunagu serve web`` in front of the services' URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.platform.sealing import is_erased
from services.platform.settings import Settings
from services.web import formatting, presenting
from services.web.client import Services, ServiceUnavailable
from services.web.desk import CsrfRejected, Refused, SignInRequired, render
from services.web.keys import session_secret
from services.web.pages import (
    cases,
    consents,
    consultations,
    home,
    meetings,
    persons,
    privacy,
    referrals,
    replay,
    reports,
    retention,
    signin,
    vital_interest,
)

HERE = Path(__file__).parent
# No inline script or style and no other origin: what a closed municipal network can load.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


@pass_context
def _written(context: Context, value: Any) -> Any:
    """What a template writes: a value whose key was destroyed reads 消去済み with the date and
    reason on every page that shows it, never as the notice the API sends for it."""
    return presenting.erased(context["t"], value) if is_erased(value) else value


def _leaving_erased(written: Callable[[Any], str]) -> Callable[[Any], Any]:
    """A date filter that leaves an erased value (a birth date) to ``_written``."""

    def write(value: Any) -> Any:
        return value if is_erased(value) else written(value)

    return write


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=HERE / "templates", finalize=_written)
    found.env.filters.update(
        wareki=_leaving_erased(formatting.wareki),
        wareki_year=_leaving_erased(formatting.wareki_with_year),
        jst=_leaving_erased(formatting.jst_time),
        iso_date=_leaving_erased(formatting.iso_date),
    )
    found.env.globals["keeps_records"] = retention.keeps_records
    return found


def build_web(settings: Settings, services: Services) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await services.close()

    app = FastAPI(
        title="Tsunagu desk", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.services = services
    app.state.templates = templates()
    app.state.settings = settings
    app.state.idle_seconds = settings.web_idle_minutes * 60
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for page in (
        signin,
        home,
        consultations,
        persons,
        consents,
        referrals,
        reports,
        cases,
        meetings,
        replay,
        vital_interest,
        privacy,
        retention,
    ):
        app.include_router(page.router)

    async def to_sign_in(request: Request, error: Exception) -> Response:
        assert isinstance(error, SignInRequired)
        target = "/signin?expired=1" if error.expired else "/signin"
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, Refused)
        answer = error.answer
        if answer.status == 401:
            return RedirectResponse("/signin?expired=1", status_code=303)
        key = {403: "error.forbidden", 404: "error.not_found", 409: "error.conflict"}.get(
            answer.status, "error.title"
        )
        return _error_page(request, answer.status, key, answer.message)

    async def unavailable(request: Request, _: Exception) -> Response:
        return _error_page(request, 503, "error.unavailable", "")

    async def csrf(request: Request, _: Exception) -> Response:
        return _error_page(request, 403, "error.csrf", "")

    def _error_page(request: Request, status: int, key: str, reason: str) -> Response:
        return render(
            request, app.state.templates, "error.html", status, message_key=key, reason=reason
        )

    app.add_exception_handler(SignInRequired, to_sign_in)
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(ServiceUnavailable, unavailable)
    app.add_exception_handler(CsrfRejected, csrf)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie="tsunagu_session",
        same_site="strict",
        https_only=settings.web_secure_cookies,
        max_age=None,
    )
    app.add_middleware(SecurityHeaders)
    return app
