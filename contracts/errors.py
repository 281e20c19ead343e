"""Errors every service raises and every adapter maps the same way: 401, 403, 409, 422."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any


class PlatformError(Exception):
    status = 500
    code = "error"

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class Unauthenticated(PlatformError):
    status = 401
    code = "unauthenticated"


class Forbidden(PlatformError):
    status = 403
    code = "forbidden"


class NotFound(PlatformError):
    status = 404
    code = "not_found"


class Conflict(PlatformError):
    status = 409
    code = "conflict"


class Invalid(PlatformError):
    """A rule broken by one field; the 422 body names the field, the rule and what is allowed."""

    status = 422
    code = "validation_failed"

    def __init__(
        self, field: str, rule: str, message: str, allowed: Sequence[str] | None = None
    ) -> None:
        problem: dict[str, Any] = {"field": field, "rule": rule, "message": message}
        if allowed is not None:
            problem["allowed"] = list(allowed)
        super().__init__(f"{field}: {message}", problems=[problem])


def not_before(field: str, at: datetime, step: str, step_at: datetime) -> None:
    """A business time may be back-dated, since stories are entered later, but never before the
    step it follows: 422 naming both times (``earliest`` is the one it may not precede)."""
    if at < step_at:
        error = Invalid(
            field,
            "before_previous_step",
            f"{at.isoformat()} is before {step} at {step_at.isoformat()}",
        )
        error.detail["problems"][0]["earliest"] = step_at.isoformat()
        raise error
