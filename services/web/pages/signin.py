"""サインイン: the identity provider in production; a development sign-in in embedded mode only."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from contracts.identity import ROLES
from contracts.reference import OVERSIGHT_ROLES, reference
from services.platform.auth import mint_token, signing_secret
from services.web.catalogue import LOCALES, Translator
from services.web.desk import LANG_COOKIE, check_csrf, locale_of, render
from services.web.session import User, sign_in, sign_out

router = APIRouter()
DEV_TOKEN_SECONDS = 8 * 3600


def _page(request: Request, status: int = 200, **context: Any) -> Response:
    state = request.app.state
    t = Translator(locale_of(request))
    agencies = [(a.id, t.code("agency", a.id)) for a in reference().agencies.values()]
    roles = [(role, t.code("role", role)) for role in ROLES]
    return render(
        request,
        state.templates,
        "signin.html",
        status,
        dev_signin=state.dev_signin,
        provider=state.oidc is not None,
        agencies=agencies,
        roles=roles,
        values=context.pop("values", {"agency": "zama-jiritsu", "role": "caseworker"}),
        **context,
    )


@router.get("/signin")
def signin_page(request: Request, expired: bool = False, signed_out: bool = False) -> Response:
    return _page(request, expired=expired, signed_out=signed_out)


@router.post("/signin")
async def dev_signin(request: Request, form: Any = Depends(check_csrf)) -> Response:
    """Mints a development token for the chosen agency and role; refused where a provider is."""
    state = request.app.state
    if not state.dev_signin:
        return _page(request, 403, refused=True)
    values = {k: str(form.get(k, "")).strip() for k in ("agency", "role", "staff_id")}
    errors = {}
    if reference().agency(values["agency"]) is None:
        errors["agency"] = "reference_code"
    if values["role"] not in ROLES:
        errors["role"] = "reference_code"
    elif (
        values["role"] in OVERSIGHT_ROLES
        and reference().scope(values["role"], values["agency"]) is None
    ):
        # The services would refuse the token on every call: say so here, beside the role.
        errors["role"] = "role_not_granted"
    if not values["staff_id"] or len(values["staff_id"]) > 40:
        errors["staff_id"] = "missing"
    if errors:
        return _page(request, 422, values=values, errors=errors)
    settings = state.settings
    agency = reference().agency(values["agency"])
    assert agency is not None
    token = mint_token(
        signing_secret(settings),
        staff_id=values["staff_id"],
        agency=agency.id,
        roles=[values["role"]],
        municipality=agency.municipality,
        ttl_seconds=DEV_TOKEN_SECONDS,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    user = User(
        values["staff_id"],
        agency.id,
        (values["role"],),
        agency.municipality,
        token,
        time.time() + DEV_TOKEN_SECONDS,
    )
    sign_in(request, user)
    return RedirectResponse("/", status_code=303)


@router.post("/signout")
async def signout(request: Request, _: Any = Depends(check_csrf)) -> Response:
    sign_out(request)
    return RedirectResponse("/signin?signed_out=1", status_code=303)


@router.post("/language")
async def language(request: Request, form: Any = Depends(check_csrf)) -> Response:
    """Switches the desk's language; Japanese is the default."""
    chosen = str(form.get("lang", ""))
    back = request.headers.get("referer", "/")
    response = RedirectResponse(back if back.startswith(str(request.base_url)) else "/", 303)
    if chosen in LOCALES:
        response.set_cookie(LANG_COOKIE, chosen, httponly=True, samesite="strict")
    return response
