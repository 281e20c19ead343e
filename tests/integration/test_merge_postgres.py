"""A merge on PostgreSQL, fed over Kafka (#17): what the duplicate records after the merge,
on its own partition, joins the survivor's view; an unmerge gives it back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.platform.settings import Settings
from tests.infrastructure import Process, wait_for
from tests.integration.conftest import Cleanup, intake_and_views

pytestmark = pytest.mark.integration

Spawn = Callable[[list[str], Settings], Process]
Auth = Callable[..., dict[str, str]]
HELLOWORK = "hellowork-atsugi"


def test_the_duplicates_later_records_join_the_survivor_until_unmerged(
    distributed_settings: Settings, spawn: Spawn, auth: Auth, cleanup: Cleanup
) -> None:
    settings = distributed_settings
    feed, intake, views = intake_and_views(settings, spawn, cleanup)

    def register(name: str) -> str:
        body = {"family_name": name, "sex": "female"}
        return str(intake.post("/persons", json=body, headers=auth()).json()["id"])

    survivor, duplicate = register("試験"), register("試験ダブリ")
    now = datetime.now(UTC)
    consent = {
        "person_id": duplicate,
        "recipients": [HELLOWORK],
        "categories": ["identity", "consultation"],
        "purposes": ["support_coordination"],
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(days=30)).isoformat(),
        "method": "written_application_form",
    }
    assert intake.post("/consents", json=consent, headers=auth()).status_code == 201
    merge = {"into": survivor, "reason": "同一人物"}
    assert intake.post(f"/persons/{duplicate}/merge", json=merge, headers=auth()).status_code == 200
    later = {
        "channel": "phone",
        "route_in": "self",
        "caller_kind": "self",
        "person_id": duplicate,
        "main_complaint": "仕事が見つからない",
    }
    assert intake.post("/consultations", json=later, headers=auth()).status_code == 201

    def hellowork_sees(person: str) -> tuple[int, Any]:
        response = views.get(f"/persons/{person}", headers=auth(HELLOWORK))
        return response.status_code, response.json()

    def complaint_joined() -> bool:
        status, body = hellowork_sees(survivor)
        return status == 200 and "仕事が見つからない" in str(body)

    wait_for(complaint_joined, 90, lambda: f"the survivor's merged view\n{feed.output()}")
    status, body = hellowork_sees(duplicate)
    assert (status, body["survivor_id"]) == (409, survivor)

    unmerge = {"reason": "別人"}
    undone = intake.post(f"/persons/{duplicate}/unmerge", json=unmerge, headers=auth())
    assert undone.status_code == 200, undone.text
    wait_for(
        lambda: hellowork_sees(duplicate)[0] == 200,
        90,
        f"the duplicate on its own again\n{feed.output()}",
    )
    status, body = hellowork_sees(duplicate)
    assert "仕事が見つからない" in str(body)
    assert hellowork_sees(survivor)[1]["categories"] == []
