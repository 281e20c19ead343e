from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import uuid4

import pytest

from contracts import events as ev
from contracts.envelope import CloudEvent, event_id
from services.platform.sql import SqliteDatabase
from services.projection import statistics
from services.projection.store import ViewStore

pytestmark = pytest.mark.unit

AT = datetime(2024, 2, 29, 16, 0, tzinfo=UTC)  # 2024-03-01 01:00 in Japan
PERSON = uuid4()


def cloud(data: ev.IntegrationEvent) -> CloudEvent:
    return CloudEvent(
        id=event_id(uuid4(), 1),
        source="/t",
        type=data.cloudevent_type(),
        time=AT,
        municipality="142182",
        partitionkey="k",
        eventversion=data.version,
        data=data.model_dump(mode="json"),
    )


def apply(store: ViewStore, *datas: ev.IntegrationEvent) -> None:
    for data in datas:
        event = cloud(data)
        store.apply(event.id, event.type, partial(statistics.count, event=event, data=data))


def who() -> dict[str, Any]:
    return {"agency": "zama-jiritsu", "staff_id": "s1", "at": AT}


@pytest.fixture
def store() -> ViewStore:
    return ViewStore(SqliteDatabase(":memory:"), statistics.TABLES)


def report(store: ViewStore, month: str = "2024-03") -> dict[str, int | float]:
    with store.database.transaction() as tx:
        return statistics.monthly(tx, "142182", month)


def test_counts_fall_in_the_month_of_japan(store: ViewStore) -> None:
    apply(
        store,
        ev.ConsultationOpened(
            **who(),
            consultation_id=uuid4(),
            channel="phone",
            route_in="real_estate_agent",
            caller_kind="self",
        ),
    )
    assert report(store)["new_consultations"] == 1
    assert report(store)["route_in.real_estate_agent"] == 1
    assert report(store, "2024-02")["new_consultations"] == 0


def test_issues_per_first_assessment_ignores_later_assessments(store: ViewStore) -> None:
    case: dict[str, Any] = {"case_id": uuid4(), "person_id": PERSON}
    apply(
        store,
        ev.AssessmentRecorded(**who(), **case, assessment_number=1, issues=["debt", "illness"]),
        ev.AssessmentRecorded(
            **who(),
            case_id=uuid4(),
            person_id=uuid4(),
            assessment_number=1,
            issues=["debt", "mental_health", "family_relations", "other", "illness"],
        ),
        ev.AssessmentRecorded(**who(), **case, assessment_number=2, issues=["hikikomori"]),
    )
    figures = report(store)
    assert figures["first_assessments"] == 2
    assert figures["issues_per_assessment"] == 3.5
    assert figures["issue.debt"] == 2 and "issue.hikikomori" not in figures


def test_a_person_connected_to_public_assistance_twice_in_a_month_counts_once(
    store: ViewStore,
) -> None:
    case: dict[str, Any] = {"case_id": uuid4(), "person_id": PERSON}
    apply(
        store,
        ev.ConsultationTriaged(
            **who(),
            consultation_id=uuid4(),
            person_id=PERSON,
            outcome="connect_elsewhere",
            target_system="生活保護",
            follow_up_on=AT.date(),
        ),
        ev.CaseClosed(**who(), **case, reason="transferred_to_public_assistance"),
    )
    figures = report(store)
    assert figures["to_public_assistance"] == 1
    assert figures["closures.transferred_to_public_assistance"] == 1


def test_work_outcomes_and_declines_without_follow_up(store: ViewStore) -> None:
    case: dict[str, Any] = {"case_id": uuid4(), "person_id": PERSON}
    ends: dict[str, Any] = {"sender": "zama-jiritsu", "receiver": "oneaid", "person_id": PERSON}
    declined, followed = uuid4(), uuid4()
    apply(
        store,
        ev.PlanEvaluated(
            **who(),
            **case,
            plan_version=1,
            outcome="close",
            work_outcomes=["into_work", "increased_income"],
        ),
        ev.ReferralDeclined(**who(), referral_id=declined, reason="満員", **ends),
        ev.ReferralDeclined(**who(), referral_id=followed, reason="満員", **ends),
        ev.ReferralDeclineFollowedUp(
            **who(), referral_id=followed, action="resource_gap", note="居住支援の不足", **ends
        ),
    )
    figures = report(store)
    assert (figures["into_work"], figures["increased_income"]) == (1, 1)
    assert figures["referrals.outcome.declined"] == 2
    assert figures["declined_without_follow_up"] == 1


def test_exports_suppress_small_counts_and_carry_japanese_headings(store: ViewStore) -> None:
    for _ in range(3):
        apply(
            store,
            ev.ConsultationOpened(
                **who(),
                consultation_id=uuid4(),
                channel="visit",
                route_in="self",
                caller_kind="self",
            ),
        )
    apply(
        store,
        ev.ConsultationOpened(
            **who(),
            consultation_id=uuid4(),
            channel="phone",
            route_in="tax_desk",
            caller_kind="self",
        ),
    )
    with store.database.transaction() as tx:
        exported = statistics.export(tx, "142182", "2024-03", threshold=3)
    figures = exported["figures"]
    assert figures["new_consultations"] == 4
    assert figures["route_in.self"] == 3
    assert figures["route_in.tax_desk"] == statistics.SUPPRESSED
    assert figures["applications"] == 0  # zero singles nobody out
    rows = list(csv.reader(io.StringIO(statistics.as_csv("142182", "2024-03", figures))))
    heading = dict(zip(rows[0], rows[1], strict=True))
    assert heading["新規相談受付件数"] == "4"
    assert heading["相談経路：tax_desk"] == "*"
    assert heading["年月"] == "2024-03"
