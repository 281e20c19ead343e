"""Issue 16: a control character in a URL stops at the edge on PostgreSQL, whose text columns
cannot hold a NUL: a path naming nothing is 404, a query parameter is 422 naming it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from services.platform.settings import Settings
from services.wiring import projection_app, service_app

pytestmark = pytest.mark.integration

Auth = Callable[..., dict[str, str]]


def test_a_nul_in_a_path_or_a_query_is_refused_not_a_server_error(
    distributed_settings: Settings, auth: Auth
) -> None:
    officer = auth("zama-jiritsu", "privacy_officer")
    with (
        TestClient(projection_app(distributed_settings)) as views,
        TestClient(service_app(distributed_settings, "intake")) as intake,
    ):
        for path in ("/audit/agencies/%00", "/audit/agencies/zama%01jiritsu"):
            assert views.get(path, headers=officer).status_code == 404
        for client, path, name, value in (
            (views, "/persons/search", "name", "志村"),
            (views, "/consultations", "agency", "zama-jiritsu"),
            (intake, "/persons/by-local-id", "local_id", "A-1"),
        ):
            # The same parameter without the character is answered.
            assert client.get(path, params={name: value}, headers=officer).status_code < 500
            refused = client.get(path, params={name: f"{value}\x00"}, headers=officer)
            assert refused.status_code == 422, (path, refused.text)
            [problem] = refused.json()["problems"]
            assert (problem["field"], problem["rule"]) == (name, "control_character")
