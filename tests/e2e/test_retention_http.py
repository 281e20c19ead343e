"""Retention over HTTP in embedded mode: the report of what the sweep erases within 90 days, the
extension with a recorded reason, and the sweep itself at a time the test chooses (issue #20).

Cases are closed at dates relative to today, weeks or years apart from any boundary, so that no
test depends on the hour it runs at; the sweep is run at an instant given, never by waiting.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest.mock import ANY
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from services.intake.retention import add_years, municipal_date
from services.platform.settings import Settings
from tests.conftest import run_cli
from tests.e2e.answers import ok

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]
OFFICE = {"142182": "zama-jiritsu", "142158": "ebina-jiritsu"}
NOW = datetime.now(UTC)
TODAY = municipal_date(NOW)


def years_ago(years: int, days: int = 0) -> datetime:
    """An instant at 10:00 JST, ``years`` years and ``days`` days before today."""
    day = add_years(TODAY, -years) - timedelta(days=days)
    return datetime(day.year, day.month, day.day, 1, tzinfo=UTC)


def person_with_case(
    client: TestClient, auth: Auth, closed_at: datetime | None, office: str = "zama-jiritsu"
) -> tuple[str, str]:
    """A person, their application and their case, all a year before ``closed_at`` (or now,
    for a case left open), closed at ``closed_at``: (person id, case id)."""
    start = (closed_at or NOW) - timedelta(days=365)
    headers = auth(office)
    person = ok(
        client.post(
            "/intake/persons",
            json={"family_name": "保存", "given_name": "期間", "registered_at": start.isoformat()},
            headers=headers,
        ),
        201,
    )["id"]
    consultation = ok(
        client.post(
            "/intake/consultations",
            json={
                "channel": "phone",
                "route_in": "self",
                "caller_kind": "self",
                "person_id": person,
                "opened_at": start.isoformat(),
            },
            headers=headers,
        ),
        201,
    )["id"]
    at = (start + timedelta(hours=1)).isoformat()
    ok(
        client.post(
            f"/intake/consultations/{consultation}/application", json={"at": at}, headers=headers
        )
    )
    case = ok(
        client.post(
            "/meeting/cases",
            json={"consultation_id": consultation, "person_id": person, "at": at},
            headers=headers,
        ),
        201,
    )["id"]
    if closed_at is not None:
        ok(
            client.post(
                f"/meeting/cases/{case}/closure",
                json={"reason": "goals_achieved", "at": closed_at.isoformat()},
                headers=headers,
            )
        )
    return person, case


def due(client: TestClient, auth: Auth, agency: str = "zama-jiritsu", **query: Any) -> list[Any]:
    found: list[Any] = ok(
        client.get("/intake/retention/due", params=query, headers=auth(agency, "privacy_officer"))
    )
    return found


def listed(client: TestClient, auth: Auth, **query: Any) -> set[str]:
    return {row["person_id"] for row in due(client, auth, **query)}


def family_name(view: dict[str, Any]) -> Any:
    """The family name as a person view shows it (under identity)."""
    [identity] = [c for c in view["categories"] if c["category"] == "identity"]
    return identity["fields"]["family_name"]


def sweep(client: TestClient, at: datetime) -> list[UUID]:
    erased: list[UUID] = client.app.state.sweep_retention(at)  # type: ignore[attr-defined]
    return erased


def test_the_report_lists_whose_records_go_within_90_days_each_read_audited(
    client: TestClient, auth: Auth
) -> None:
    soon, _ = person_with_case(client, auth, years_ago(5, days=-30))
    later, _ = person_with_case(client, auth, years_ago(5, days=-200))
    overdue, _ = person_with_case(client, auth, years_ago(6))
    still_open, _ = person_with_case(client, auth, None)
    assert listed(client, auth) == {soon, overdue}
    assert listed(client, auth, within_days=365) == {soon, overdue, later}
    assert listed(client, auth, within_days=0) == {overdue}
    [first, second] = due(client, auth)
    closed_on = add_years(TODAY, -5) + timedelta(days=30)
    assert (first["person_id"], second["person_id"]) == (overdue, soon)
    assert second == {
        "person_id": soon,
        "closed_on": closed_on.isoformat(),
        "retention_years": 5,
        "retained_until": add_years(closed_on, 5).isoformat(),
        "erasure_on": (add_years(closed_on, 5) + timedelta(days=1)).isoformat(),
        "extension": None,
    }
    # Each person listed is a read of that person, in the municipality's audit chain.
    seen = ok(
        client.get(f"/views/audit/persons/{soon}", headers=auth("zama-jiritsu", "privacy_officer"))
    )
    assert any(e["view_request"]["route"] == "GET /intake/retention/due" for e in seen)
    one = ok(client.get("/intake/retention/due", params={"limit": 1}, headers=auth()))
    assert [r["person_id"] for r in one] == [overdue]
    assert still_open not in listed(client, auth, within_days=365)


def test_an_extension_is_recorded_and_takes_the_person_off_the_report(
    client: TestClient, auth: Auth
) -> None:
    person, _ = person_with_case(client, auth, years_ago(5, days=-30))
    until = TODAY + timedelta(days=700)
    extended = ok(
        client.post(
            f"/intake/persons/{person}/retention-extension",
            json={"until": until.isoformat(), "reason": "訴訟で記録の提出を求められている"},
            headers=auth("zama-jiritsu", "privacy_officer"),
        ),
        201,
    )
    assert extended["retained_until"] == until.isoformat()
    assert person not in listed(client, auth)
    shown = ok(client.get(f"/intake/persons/{person}/retention", headers=auth()))
    assert shown["extension"]["until"] == until.isoformat()
    assert shown["extension"]["reason"] == "訴訟で記録の提出を求められている"
    assert shown["extension"]["extended_by"] == "zama-jiritsu"
    intake = client.app.state.applications["intake"]  # type: ignore[attr-defined]
    [event] = [
        e
        for e in intake.repository.event_store.get(UUID(person))
        if type(e).__name__ == "RetentionExtended"
    ]
    # Recorded with its reason sealed, as the person's data.
    assert event.until == until and event.reason.startswith("sealed:v1:")
    # Past the retention's first end, before the extension's: kept.
    assert sweep(client, NOW + timedelta(days=60)) == []
    assert person not in listed(client, auth, within_days=365)
    assert sweep(client, NOW + timedelta(days=702)) == [UUID(person)]


def test_the_sweep_erases_only_who_is_due_for_retention_once(
    client: TestClient, auth: Auth
) -> None:
    overdue, _ = person_with_case(client, auth, years_ago(6))
    soon, _ = person_with_case(client, auth, years_ago(5, days=-30))
    still_open, _ = person_with_case(client, auth, None)
    assert sweep(client, NOW) == [UUID(overdue)]
    # Run again: nothing more is due, and the erased is not erased twice.
    assert sweep(client, NOW) == []
    view = ok(client.get(f"/views/persons/{overdue}", headers=auth()))
    assert view["erased"]["reason"] == "retention"
    assert family_name(view) == {"erased": True, "erased_at": ANY, "reason": "retention"}
    for kept in (soon, still_open):
        shown = ok(client.get(f"/views/persons/{kept}", headers=auth()))
        assert (shown.get("erased"), family_name(shown)) == (None, "保存")
    assert listed(client, auth) == {soon}
    assert sweep(client, NOW + timedelta(days=40)) == [UUID(soon)]


def test_a_reopened_case_is_not_due(client: TestClient, auth: Auth) -> None:
    person, case = person_with_case(client, auth, years_ago(6))
    ok(
        client.post(
            f"/meeting/cases/{case}/reopening",
            json={"reason": "再び家賃を滞納した"},
            headers=auth(),
        )
    )
    assert person not in listed(client, auth, within_days=365)
    held = ok(client.get(f"/intake/persons/{person}/retention", headers=auth()))
    assert (held["closed_on"], held["erasure_on"]) == (None, None)
    assert sweep(client, NOW) == []


def test_each_municipality_keeps_records_its_own_number_of_years(
    client: TestClient, auth: Auth
) -> None:
    zama, _ = person_with_case(client, auth, years_ago(6))
    ebina_six, _ = person_with_case(client, auth, years_ago(6), office="ebina-jiritsu")
    ebina_eleven, _ = person_with_case(client, auth, years_ago(11), office="ebina-jiritsu")
    assert listed(client, auth) == {zama}
    assert {r["person_id"] for r in due(client, auth, "ebina-jiritsu")} == {ebina_eleven}
    six = ok(client.get(f"/intake/persons/{ebina_six}/retention", headers=auth("ebina-jiritsu")))
    closed_on = date.fromisoformat(six["closed_on"])
    assert (six["retention_years"], six["retained_until"]) == (
        10,
        add_years(closed_on, 10).isoformat(),
    )
    assert set(sweep(client, NOW)) == {UUID(zama), UUID(ebina_eleven)}


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"until": "2020-01-01", "reason": "x"}, "until", "extends_retention"),
        ({"until": "tomorrow", "reason": "x"}, "until", "date_from_datetime_parsing"),
        ({"reason": "x"}, "until", "missing"),
        ({"until": "2099-01-01", "reason": "x"}, "until", "time_range"),
        ({"until": "{future}"}, "reason", "missing"),
        ({"until": "{future}", "reason": ""}, "reason", "string_too_short"),
        ({"until": "{future}", "reason": "x" * 2001}, "reason", "string_too_long"),
        ({"until": "{future}", "reason": "x", "why": "y"}, "why", "extra_forbidden"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_rule(
    client: TestClient, auth: Auth, body: dict[str, str], field: str, rule: str
) -> None:
    person, _ = person_with_case(client, auth, years_ago(5, days=-30))
    future = (TODAY + timedelta(days=3000)).isoformat()
    sent = {k: v.replace("{future}", future) if isinstance(v, str) else v for k, v in body.items()}
    answer = client.post(f"/intake/persons/{person}/retention-extension", json=sent, headers=auth())
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["problems"]
    assert (problem["field"], problem["rule"]) == (field, rule)


def test_an_extension_must_outlast_the_retention_it_extends(client: TestClient, auth: Auth) -> None:
    person, _ = person_with_case(client, auth, years_ago(5, days=-30))
    end = date.fromisoformat(
        ok(client.get(f"/intake/persons/{person}/retention", headers=auth()))["retained_until"]
    )
    answer = client.post(
        f"/intake/persons/{person}/retention-extension",
        json={"until": end.isoformat(), "reason": "x"},
        headers=auth(),
    )
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == "until"


@pytest.mark.parametrize("query", [{"within_days": -1}, {"within_days": 366}, {"within_days": "a"}])
def test_a_bad_window_is_422_naming_it(
    client: TestClient, auth: Auth, query: dict[str, Any]
) -> None:
    answer = client.get("/intake/retention/due", params=query, headers=auth())
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == "within_days"


@pytest.mark.parametrize(
    ("agency", "role"),
    [
        ("zama-shuno", "caseworker"),
        # A privacy officer over their own agency only: the report lists the whole municipality.
        ("zama-shuno", "privacy_officer"),
        ("zama-shakyo", "caseworker"),
    ],
)
def test_only_the_office_and_a_municipal_privacy_officer_see_or_extend(
    client: TestClient, auth: Auth, agency: str, role: str
) -> None:
    person, _ = person_with_case(client, auth, years_ago(6))
    headers = auth(agency, role)
    assert client.get("/intake/retention/due", headers=headers).status_code == 403
    assert client.get(f"/intake/persons/{person}/retention", headers=headers).status_code == 403
    extension = {"until": (TODAY + timedelta(days=30)).isoformat(), "reason": "x"}
    answer = client.post(
        f"/intake/persons/{person}/retention-extension", json=extension, headers=headers
    )
    assert answer.status_code == 403
    assert person in listed(client, auth)


def test_tsunagu_retention_sweep_erases_once_at_the_time_given(
    client: TestClient, auth: Auth, embedded_settings: Settings
) -> None:
    person, _ = person_with_case(client, auth, years_ago(5, days=-30))
    at = (NOW + timedelta(days=40)).isoformat()
    swept = run_cli(embedded_settings, "retention", "sweep", "--at", at)
    assert swept.returncode == 0, swept.stderr
    assert [json.loads(line) for line in swept.stdout.splitlines()] == [
        {"erased": person, "reason": "retention"}
    ]
    again = run_cli(embedded_settings, "retention", "sweep", "--at", at)
    assert (again.returncode, again.stdout) == (0, "")
    intake = client.app.state.applications["intake"]  # type: ignore[attr-defined]
    erased = intake.person(UUID(person)).erased
    assert (erased.reason, erased.at.isoformat()) == ("retention", at)


def test_the_sweep_keeps_an_extension_its_feed_has_not_seen_yet(
    client: TestClient, auth: Auth
) -> None:
    """An extension recorded but not yet relayed to intake's feed (distributed: a moment
    behind) still keeps the records: the sweep reads the person before it erases."""
    person_id, _ = person_with_case(client, auth, years_ago(6))
    intake = client.app.state.applications["intake"]  # type: ignore[attr-defined]
    person = intake.person(UUID(person_id))
    until = TODAY + timedelta(days=30)
    person.extend_retention("zama-jiritsu", "s001", until, "監査中", NOW, TODAY)
    intake.save(person)  # saved directly: no relay runs, the feed knows nothing of it
    assert person_id in listed(client, auth)
    assert sweep(client, NOW) == []
    assert sweep(client, NOW + timedelta(days=31)) == [UUID(person_id)]
