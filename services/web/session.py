"""Who is signed in to the desk, kept in a signed, HttpOnly, SameSite=Strict cookie.

The cookie holds the user's API token and what the desk shows of them; it is signed (never
trusted if altered) and ends after ``idle_seconds`` without a request, or at the token's expiry.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class User:
    staff_id: str
    agency: str
    roles: tuple[str, ...]
    municipality: str
    token: str
    expires_at: float

    def has_role(self, role: str) -> bool:
        return role in self.roles


def sign_in(request: Request, user: User) -> None:
    """A new session for ``user``: nothing of an earlier one survives (no fixation)."""
    request.session.clear()
    request.session.update(
        user={
            "staff_id": user.staff_id,
            "agency": user.agency,
            "roles": list(user.roles),
            "municipality": user.municipality,
            "token": user.token,
            "expires_at": user.expires_at,
        },
        csrf=secrets.token_urlsafe(32),
        seen=time.time(),
    )


def sign_out(request: Request) -> None:
    request.session.clear()


def current_user(request: Request, idle_seconds: float) -> tuple[User | None, bool]:
    """The signed-in user, and whether a session just ended for idleness or expiry."""
    data: dict[str, Any] | None = request.session.get("user")
    if not data:
        return None, False
    now = time.time()
    if now - float(request.session.get("seen", 0)) > idle_seconds or now >= data["expires_at"]:
        request.session.clear()
        return None, True
    request.session["seen"] = now
    user = User(
        staff_id=data["staff_id"],
        agency=data["agency"],
        roles=tuple(data["roles"]),
        municipality=data["municipality"],
        token=data["token"],
        expires_at=float(data["expires_at"]),
    )
    return user, False


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def csrf_valid(request: Request, sent: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and sent and secrets.compare_digest(str(expected), sent))
