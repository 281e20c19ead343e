"""A merge on PostgreSQL over Kafka where the views are not (#17): referral's own feed process
keeps intake's merges in its schema, so a slip about the survivor may be sent on a consent given
under the duplicate's id, until an unmerge; and the views' consultation list names the survivor
meanwhile."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.platform.settings import Settings
from services.wiring import service_app
from tests.e2e.test_merge_http import HELLOWORK
from tests.e2e.test_merge_reach_http import slip
from tests.infrastructure import Process, wait_for
from tests.integration.conftest import Cleanup, intake_and_views

pytestmark = pytest.mark.integration

Spawn = Callable[[list[str], Settings], Process]
Auth = Callable[..., dict[str, str]]


def test_referral_follows_a_merge_in_its_own_feed_and_the_lines_name_the_survivor(
    distributed_settings: Settings, spawn: Spawn, auth: Auth, cleanup: Cleanup
) -> None:
    settings = distributed_settings
    views_feed, intake, views = intake_and_views(settings, spawn, cleanup)
    referral_feed = spawn(["project", "referral"], settings)
    referral = cleanup.client(service_app(settings, "referral"))

    def register(name: str) -> str:
        body = {"family_name": name, "sex": "female"}
        return str(intake.post("/persons", json=body, headers=auth()).json()["id"])

    survivor, duplicate = register("試験"), register("試験ダブリ")
    now = datetime.now(UTC)
    given = intake.post(
        "/consents",
        json={
            "person_id": duplicate,
            "recipients": [HELLOWORK],
            "categories": ["identity", "consultation"],
            "purposes": ["referral"],
            "valid_from": (now - timedelta(hours=1)).isoformat(),
            "valid_until": (now + timedelta(days=30)).isoformat(),
            "method": "written_application_form",
        },
        headers=auth(),
    )
    assert given.status_code == 201, given.text
    opened = intake.post(
        "/consultations",
        json={
            "channel": "phone",
            "route_in": "self",
            "caller_kind": "self",
            "person_id": duplicate,
            "main_complaint": "仕事が見つからない",
        },
        headers=auth(),
    )
    assert opened.status_code == 201, opened.text
    about_survivor = slip(survivor, given.json()["id"])

    def send() -> tuple[int, Any]:
        answer = referral.post("/referrals", json=about_survivor, headers=auth())
        return answer.status_code, answer.json()

    def line() -> dict[str, Any]:
        [found] = views.get("/consultations", headers=auth()).json() or [{}]
        return {k: found.get(k) for k in ("person_id", "recorded_under")}

    def referral_feed_output() -> str:
        return f"referral's feed\n{referral_feed.output()}\nthe views\n{views_feed.output()}"

    wait_for(lambda: line() == {"person_id": duplicate, "recorded_under": None}, 90, "the line")
    # The consent has reached referral's replica, under the duplicate's id alone.
    wait_for(lambda: send()[1].get("missing_categories") is not None, 90, referral_feed_output)
    before = send()
    assert before[0] == 403

    merged = intake.post(
        f"/persons/{duplicate}/merge", json={"into": survivor, "reason": "同一人物"}, headers=auth()
    )
    assert merged.status_code == 200, merged.text
    wait_for(lambda: send()[0] == 201, 90, referral_feed_output)
    wait_for(
        lambda: line() == {"person_id": survivor, "recorded_under": duplicate},
        90,
        referral_feed_output(),
    )

    undone = intake.post(f"/persons/{duplicate}/unmerge", json={"reason": "別人"}, headers=auth())
    assert undone.status_code == 200, undone.text
    wait_for(lambda: send()[0] == 403, 90, referral_feed_output)
    assert send() == before
    wait_for(lambda: line() == {"person_id": duplicate, "recorded_under": None}, 90, "unmerged")
