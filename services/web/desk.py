"""What every page handler gets: the signed-in user, the catalogue, the APIs, and rendering.

Pages are thin: they call the APIs with the user's token and render what comes back. A page
shows an API refusal with its reason rather than guessing what the user may see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, RedirectResponse, Response

from contracts.reference import reference
from services.web import formatting, presenting
from services.web.catalogue import DEFAULT_LOCALE, Translator
from services.web.client import Answer, Services, ServiceUnavailable
from services.web.session import CSRF_FIELD, CSRF_HEADER, User, csrf_token, csrf_valid

LANG_COOKIE = "tsunagu_lang"
# The session's note of whether the views API serves this user the monthly figures.
READS_STATISTICS = "reads_statistics"


class SignInRequired(Exception):
    """No session, or it ended: the user is sent to sign in, then back."""

    def __init__(self, expired: bool) -> None:
        self.expired = expired


class Refused(Exception):
    """An API said no (403, 404, 409, 401): shown as a page with its reason."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer


class CsrfRejected(Exception):
    """A form without this session's token: possibly sent from another site."""


def locale_of(request: Request) -> str:
    return request.cookies.get(LANG_COOKIE, DEFAULT_LOCALE)


@dataclass
class Desk:
    request: Request
    user: User
    t: Translator
    services: Services
    templates: Jinja2Templates

    def agencies(self) -> list[tuple[str, str]]:
        """The agencies of the user's municipality, as (id, name) choices: a desk never offers
        another municipality's agencies."""
        return [
            (a.id, self.t.code("agency", a.id))
            for a in reference().agencies.values()
            if a.municipality == self.user.municipality
        ]

    async def get(self, service: str, path: str, **params: Any) -> Answer:
        return await self.services.call(self.user.token, "GET", service, path, params=params)

    async def post(self, service: str, path: str, body: Any = None, **params: Any) -> Answer:
        return await self.services.call(
            self.user.token,
            "POST",
            service,
            path,
            json=body if body is not None else {},
            params=params,
        )

    async def read(self, service: str, path: str, **params: Any) -> Any:
        """A GET whose refusal is the page's answer (403 with the reason, 404, …)."""
        answer = await self.get(service, path, **params)
        if not answer.ok:
            raise Refused(answer)
        return answer.body

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        notice = self.request.session.pop("notice", None)
        return render(
            self.request,
            self.templates,
            template,
            status,
            user=self.user,
            notice=notice,
            **context,
        )

    def redirect(self, url: str, notice: str | None = None) -> Response:
        """After a command: to the page that shows its result, with a notice for it."""
        if notice:
            self.request.session["notice"] = notice
        return RedirectResponse(url, status_code=303)

    def refused_form(
        self, template: str, answer: Answer, fields: Mapping[str, str], **context: Any
    ) -> HTMLResponse:
        """The form again, after the API refused it: each 422 problem beside its field (API
        field names mapped to the form's by ``fields``), any other refusal with its reason."""
        if answer.status == 401:
            raise SignInRequired(expired=True)
        errors = {fields.get(name, name): rule for name, rule in answer.problems().items()}
        refusal = None if answer.status == 422 else answer.message
        status = answer.status if answer.status in (403, 404, 409, 422) else 400
        return self.render(template, status, errors=errors, refusal=refusal, **context)


def render(
    request: Request,
    templates: Jinja2Templates,
    template: str,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    t = Translator(locale_of(request))
    values: dict[str, Any] = {
        "_": t,
        "t": t,
        "show": lambda field, value, record=None: presenting.show(t, field, value, record),
        "locale": t.locale,
        "csrf": csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "user": None,
        "errors": {},
        "values": {},
    }
    values.update(context)
    return templates.TemplateResponse(request, template, values, status_code=status)


async def check_csrf(request: Request) -> Mapping[str, Any]:
    """The form of an unsafe request, once its CSRF token matches this session's."""
    form = await request.form()
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not csrf_valid(request, sent if isinstance(sent, str) else None):
        raise CsrfRejected()
    return form


async def desk(request: Request) -> Desk:
    """FastAPI dependency: the page's desk, or a redirect to sign in."""
    from services.web.session import current_user

    state = request.app.state
    user, expired = current_user(request, state.idle_seconds)
    if user is None:
        raise SignInRequired(expired)
    found = Desk(request, user, Translator(locale_of(request)), state.services, state.templates)
    if READS_STATISTICS not in request.session:
        await _ask_who_reads_statistics(found)
    return found


async def _ask_who_reads_statistics(d: Desk) -> None:
    """Whether the menu offers 月次統計: the views API decides who reads the figures, so it is
    asked, once a session (a new sign-in starts a new one), rather than second-guessed here."""
    try:
        answer = await d.get("views", f"/statistics/{formatting.today():%Y-%m}")
    except ServiceUnavailable:
        return  # asked again on the next page
    d.request.session[READS_STATISTICS] = answer.ok
