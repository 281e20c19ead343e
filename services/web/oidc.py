"""Sign-in at the municipality's OpenID provider: authorization code with PKCE, by Authlib.

The desk keeps the provider's access token in its session, as the development sign-in keeps its
own, and sends it to the APIs. Who the user is comes from the same verification every service
makes (``TokenVerifier``): the desk can never take a user for more than the APIs would.
"""

from __future__ import annotations

from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError, StarletteOAuth2App
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import escape

from contracts.errors import Forbidden, Unauthenticated
from services.platform.auth import TokenVerifier
from services.platform.settings import Settings
from services.web.catalogue import Translator
from services.web.desk import check_csrf, locale_of, render
from services.web.session import User, sign_in, sign_out

router = APIRouter()


def install(app: FastAPI, settings: Settings) -> StarletteOAuth2App | None:
    """Adds ``/auth/login``, ``/auth/callback`` and ``/auth/logout`` where a provider is set."""
    if settings.oidc_issuer is None:
        return None
    if not (settings.oidc_client_id and settings.oidc_client_secret and settings.jwks_url):
        raise ValueError(
            "TSUNAGU_OIDC_ISSUER needs TSUNAGU_OIDC_CLIENT_ID, TSUNAGU_OIDC_CLIENT_SECRET and "
            "TSUNAGU_JWKS_URL (with TSUNAGU_JWT_ISSUER, the provider's issuer)"
        )
    client = OAuth().register(
        "provider",
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=f"{settings.oidc_issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid", "code_challenge_method": "S256"},
    )
    assert isinstance(client, StarletteOAuth2App)
    app.state.oidc_verifier = TokenVerifier(settings)
    app.include_router(router)
    return client


def _client(request: Request) -> StarletteOAuth2App:
    client: StarletteOAuth2App = request.app.state.oidc
    return client


@router.get("/auth/login")
async def login(request: Request) -> Response:
    callback = request.url_for("oidc_callback")
    response: Response = await _client(request).authorize_redirect(
        request, callback, ui_locales=locale_of(request)
    )
    return response


@router.get("/auth/callback", name="oidc_callback")
async def callback(request: Request) -> Response:
    if request.headers.get("sec-fetch-site") == "cross-site":
        return _same_site_again(request)
    try:
        token: dict[str, Any] = await _client(request).authorize_access_token(request)
    except OAuthError as error:
        reason = error.description or error.error or ""
        return render(
            request,
            request.app.state.templates,
            "error.html",
            400,
            message_key="error.title",
            reason=reason,
        )
    verifier: TokenVerifier = request.app.state.oidc_verifier
    try:
        staff = verifier.verify(token["access_token"])
    except (Unauthenticated, Forbidden) as refused:
        return render(
            request,
            request.app.state.templates,
            "error.html",
            refused.status,
            message_key="error.forbidden",
            reason=refused.message,
        )
    user = User(
        staff.staff_id,
        staff.agency,
        tuple(sorted(staff.roles)),
        staff.municipality,
        token["access_token"],
        float(token["expires_at"]),
    )
    sign_in(request, user)
    return RedirectResponse("/", status_code=303)


def _same_site_again(request: Request) -> HTMLResponse:
    """The provider's redirect back is a cross-site navigation, on which the browser withholds
    the SameSite=Strict session cookie (and with it the sign-in's state). Reloading the same
    address from a page of the desk's own makes the request same-site, the cookie with it."""
    t = Translator(locale_of(request))
    here = escape(str(request.url))
    body = (
        f'<!doctype html><html lang="{t.locale}"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={here}"><title>{t("signin.title")}</title>'
        f'</head><body><p><a href="{here}">{t("signin.title")}</a></p></body></html>'
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


@router.post("/auth/logout")
async def logout(request: Request, _: Any = Depends(check_csrf)) -> Response:
    """Ends the desk's session and the provider's: on a shared counter terminal, the next
    person to sign in must not find the previous one still signed in at the provider."""
    client = _client(request)
    back = f"{request.url_for('signin_page')}?signed_out=1"
    # Without the ID token (too big for the session cookie) the provider asks the user to
    # confirm; the client id tells it where the address to come back to is registered.
    response: Response = await client.logout_redirect(
        request,
        post_logout_redirect_uri=back,
        client_id=client.client_id,
        ui_locales=locale_of(request),
    )
    sign_out(request)
    return response
