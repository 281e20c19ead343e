"""What the end-to-end tests ask of an answer."""

from __future__ import annotations

from typing import Any


def ok(response: Any, status: int = 200) -> Any:
    """The answer's JSON body, once its status is ``status`` (else its text, in the failure)."""
    assert response.status_code == status, response.text
    return response.json()
