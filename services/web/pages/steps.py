"""What the case and meeting screens share: when a step happened, lines typed into a box, and
an API refusal kept whole so a page can explain it (the moves allowed now, the law invoked)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.web import formatting
from services.web.client import Answer

# The date and time a step happened, as typed; both empty means "now" (the API's default).
WHEN_FIELDS = ("on", "time")


def when(typed: Mapping[str, Any]) -> dict[str, str]:
    """``{"at": …}`` for the API when a date was typed, else nothing (the API records now)."""
    at = formatting.business_time(typed.get("on", ""), typed.get("time", ""))
    return {"at": at} if at else {}


def lines(text: str) -> list[str]:
    """One entry a line (goals, strengths, conclusions), blank lines left out."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def refusal(answer: Answer) -> dict[str, Any]:
    """What a page shows of a refusal besides its message: the moves the API allows now, and
    for a tax share the law and the members without consent."""
    body = answer.body if isinstance(answer.body, dict) else {}
    return {
        "allowed": list(body.get("allowed", [])),
        "law": body.get("law"),
        "members_without_consent": list(body.get("members_without_consent", [])),
    }
