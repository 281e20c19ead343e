"""Bearer JWTs for staff: verification for every service, minting for development.

Development and tests sign with HS256 and a shared secret (``TSUNAGU_JWT_SECRET``, else a key
file made once under the var dir). A production deployment sets ``TSUNAGU_JWKS_URL`` and its
identity provider signs with RS256 (an OpenID provider's access tokens: ``TSUNAGU_JWT_ISSUER`` is
its issuer URL, and it adds ``agency``, ``municipality``, ``roles``, ``staff_id`` and audience
``tsunagu``, as deploy/keycloak/tsunagu-realm.json shows).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from contracts.errors import Forbidden, Unauthenticated
from contracts.identity import ROLES, Staff
from contracts.reference import OVERSIGHT_ROLES, reference
from services.platform.private_files import write_once
from services.platform.settings import Settings

DEV_KEY_FILE = "dev-jwt-secret"
# Verified tokens kept, at most: a client sends the same token with every request, and checking
# its signature and claims again cost more than a command's own save (B1's profile).
VERIFIED_TOKENS = 10_000


def dev_secret(var_dir: Path, name: str = DEV_KEY_FILE) -> str:
    """A local development key (by default the one that signs tokens), created on first use."""
    made = write_once(var_dir / name, lambda: secrets.token_urlsafe(48).encode())
    return made.decode("utf-8").strip()


def signing_secret(settings: Settings) -> str:
    return settings.jwt_secret or dev_secret(settings.var_dir)


def mint_token(
    secret: str,
    *,
    staff_id: str,
    agency: str,
    roles: list[str],
    municipality: str | None = None,
    ttl_seconds: int = 8 * 3600,
    issuer: str = "tsunagu",
    audience: str = "tsunagu",
    now: float | None = None,
) -> str:
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": staff_id,
        "agency": agency,
        "roles": roles,
        "municipality": municipality or _municipality_of(agency),
        "iat": issued,
        "exp": issued + ttl_seconds,
        "iss": issuer,
        "aud": audience,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def _municipality_of(agency: str) -> str:
    """The agency's own municipality; the deployment's first for an agency it does not know
    (a token the verifier will refuse)."""
    known = reference().agency(agency)
    return known.municipality if known is not None else reference().municipality_code


class TokenVerifier:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._clock = clock
        # token -> (the staff member, its expiry): never served once expired.
        self._verified: dict[str, tuple[Staff, float]] = {}
        self._jwks: jwt.PyJWKClient | None = None
        self._secret: str | None = None
        if settings.jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True)
        else:
            self._secret = signing_secret(settings)

    def offline(self, token: str) -> bool:
        """Whether ``verify`` needs nothing from the network for ``token``: signed with the
        shared secret, or verified before. A provider's token seen for the first time may have
        its key set fetched (again for each key id the set does not hold)."""
        return self._jwks is None or token in self._verified

    def verify(self, token: str) -> Staff:
        known = self._verified.get(token)
        if known is not None:
            staff, expires = known
            if self._clock() < expires:
                return staff
            self._verified.pop(token, None)
            raise Unauthenticated("token expired")
        try:
            claims = self._decode(token)
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("token expired") from error
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"invalid token: {error}") from error
        staff = self._staff(claims)
        if len(self._verified) >= VERIFIED_TOKENS:
            self._verified.clear()
        self._verified[token] = (staff, float(claims["exp"]))
        return staff

    def _decode(self, token: str) -> dict[str, Any]:
        if self._jwks is not None:
            key: Any = self._jwks.get_signing_key_from_jwt(token).key
            algorithm = "RS256"
        else:
            key, algorithm = self._secret, "HS256"
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=self._audience,
            issuer=self._issuer,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        return claims

    @staticmethod
    def _staff(claims: dict[str, Any]) -> Staff:
        agency_id, municipality = claims.get("agency"), claims.get("municipality")
        roles = claims.get("roles")
        if not isinstance(agency_id, str) or not isinstance(municipality, str):
            raise Unauthenticated("token lacks agency or municipality")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthenticated("token roles must be a list of strings")
        agency = reference().agency(agency_id)
        if agency is None:
            raise Forbidden(f"agency {agency_id!r} is not a member of this deployment")
        if agency.municipality != municipality:
            raise Forbidden(f"agency {agency_id!r} does not belong to municipality {municipality}")
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            raise Forbidden(f"unknown roles {unknown}; known: {list(ROLES)}")
        # Oversight roles are granted per agency in the reference data: a token carrying one
        # its agency may not hold is refused whatever signed it.
        for role in sorted(set(roles) & set(OVERSIGHT_ROLES)):
            if reference().scope(role, agency_id) is None:
                raise Forbidden(
                    f"role {role!r} may not be held in agency {agency_id!r}: the reference "
                    "data does not grant it there",
                    role=role,
                    agency=agency_id,
                )
        # An identity provider's subject is its own opaque id (Keycloak: a UUID); the
        # municipality's staff number, where the provider carries one, is what the records name.
        staff_id = claims.get("staff_id", claims["sub"])
        if not isinstance(staff_id, str) or not staff_id:
            raise Unauthenticated("token staff_id must be a non-empty string")
        return Staff(staff_id, agency_id, frozenset(roles), municipality)


async def authenticated_staff(request: Request) -> Staff:
    """FastAPI dependency: the staff member behind the bearer token, or 401/403.

    Checked on the event loop rather than in a worker thread: verifying a token is CPU work
    (HS256, or RS256 against cached keys) that costs less than a hop to the thread pool and
    back. A provider's token not verified before goes to the thread pool: fetching the
    provider's keys must not hold up every other request, even for a token naming a key id
    made up to make it fetch.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("a bearer token is required")
    verifier: TokenVerifier = request.app.state.token_verifier
    token = token.strip()
    if verifier.offline(token):
        staff = verifier.verify(token)
    else:
        staff = await run_in_threadpool(verifier.verify, token)
    request.state.staff = staff
    return staff
