"""A process whose key-encryption key was rotated under it answers 503 saying so, not 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.platform.http import create_app
from services.platform.keys import ROTATED, KeyRotated
from services.platform.settings import Settings

pytestmark = pytest.mark.unit


def test_a_request_that_needs_a_key_after_a_rotation_is_503_naming_the_restart(
    tmp_path: Path,
) -> None:
    app = create_app("rotated", Settings(var_dir=tmp_path))

    @app.get("/needs-a-key")
    def needs_a_key() -> None:
        raise KeyRotated()

    answer = TestClient(app).get("/needs-a-key")

    assert answer.status_code == 503
    assert answer.json() == {"error": "unavailable", "message": ROTATED}
