from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import pytest
from openpyxl import load_workbook

from contracts import events as ev
from contracts.envelope import CloudEvent, event_id
from contracts.reference import reference
from services.feeds.store import ViewStore
from services.platform.sql import SqliteDatabase
from services.projection import statistics
from services.web.catalogue import Translator

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
    text = statistics.as_csv(exported).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    heading = dict(zip(rows[0], rows[1], strict=True))
    assert heading["新規相談受付件数"] == "4"
    assert heading["相談経路：税務担当課"] == "*"
    assert heading["年月"] == "2024-03"
    # A rate of a hidden count would give it away; a count of 4 in Zama is 3.0 per 100,000.
    assert heading["新規相談受付件数（人口10万人あたり）"] == "3.0"
    [tax_desk] = [r for r in exported["report"]["breakdowns"][0]["rows"] if r["code"] == "tax_desk"]
    assert tax_desk["value"] == statistics.SUPPRESSED


def opened(route_in: str = "self", channel: str = "visit") -> ev.ConsultationOpened:
    return ev.ConsultationOpened(
        **who(), consultation_id=uuid4(), channel=channel, route_in=route_in, caller_kind="self"
    )


def test_triage_outcomes_the_national_form_counts_count_once_per_consultation(
    store: ViewStore,
) -> None:
    elsewhere, informed = uuid4(), uuid4()
    connect: dict[str, Any] = {
        "consultation_id": elsewhere,
        "outcome": "connect_elsewhere",
        "target_agency": "zama-kaigo",
        "follow_up_on": AT.date(),
    }
    apply(
        store,
        ev.ConsultationTriaged(**who(), **connect),
        ev.ConsultationTriaged(**who(), **connect),  # the same triage entered again
        ev.ConsultationTriaged(**who(), consultation_id=informed, outcome="information_only"),
        ev.ConsultationTriaged(**who(), consultation_id=uuid4(), outcome="continue_here"),
    )
    items = {i["code"]: i for i in statistics.report("142182", "2024-03", report(store))["items"]}
    assert items["connected_elsewhere"]["value"] == 1
    assert items["information_only"]["value"] == 1
    assert report(store).get("to_public_assistance") == 0  # 介護保険課 is not public assistance


def test_the_layout_is_the_same_every_month_with_every_code(store: ViewStore) -> None:
    apply(store, opened("tax_desk", "phone"), opened("tax_desk", "phone"))
    busy = statistics.report("142182", "2024-03", report(store))
    quiet = statistics.report("142182", "2024-04", report(store, "2024-04"))

    def shape(layout: dict[str, Any]) -> Any:
        return (
            sorted(layout),
            [sorted(item) for item in layout["items"]],
            [i["code"] for i in layout["items"]],
            [o["code"] for o in layout["other"]],
            [(s["code"], [r["code"] for r in s["rows"]]) for s in layout["breakdowns"]],
        )

    assert shape(busy) == shape(quiet)
    assert [i["code"] for i in busy["items"]] == [
        i["code"] for i in reference().raw["national_report"]["items"]
    ]
    routes = {s["code"]: s["rows"] for s in quiet["breakdowns"]}["route_in"]
    assert [r["code"] for r in routes] == list(reference().routes_in)
    assert {r["value"] for r in routes} == {0}


def test_items_not_recorded_are_null_with_a_note_never_invented(store: ViewStore) -> None:
    items = {i["code"]: i for i in statistics.report("142182", "2024-03", report(store))["items"]}
    for code in ("employment_support_targets", "work_or_income_rate", "step_up_rate"):
        assert items[code]["value"] is None and items[code]["note"], code
    assert items["employment_support_targets"]["per_100k"] is None
    assert items["employment_support_targets"]["has_per_100k"] is True
    assert items["step_up_rate"]["has_per_100k"] is False
    assert items["into_work"]["value"] == 0 and items["into_work"]["note"] is None
    assert items["into_work"]["breakdown"] == {
        "value": None,
        "note": "no_employment_support_flag",
    }


@pytest.mark.parametrize(
    ("month", "year", "latest", "guide"),
    [
        ("2016-03", "H27", False, 20),  # March belongs to the fiscal year begun the April before
        ("2016-04", "H28", False, 22),
        ("2017-12", "H29", False, 24),
        ("2025-09", "H29", True, 24),  # no guide given for FY2025: the latest, marked
    ],
)
def test_the_guide_value_is_the_fiscal_years_or_the_latest_given(
    month: str, year: str, latest: bool, guide: int
) -> None:
    layout = statistics.report("142182", month, {"new_consultations": 33})
    assert (layout["guide"]["year"], layout["guide"]["latest_given_used"]) == (year, latest)
    [first] = [i for i in layout["items"] if i["code"] == "new_consultations"]
    assert first["guide_per_100k"] == guide
    assert first["per_100k"] == round(33 * 100_000 / 131_982, 1) == 25.0


def test_no_guide_before_the_act_and_no_rate_without_a_population() -> None:
    assert statistics.report("142182", "2015-03", {})["guide"] is None
    [first, *_] = statistics.report("999999", "2025-09", {"new_consultations": 3})["items"]
    assert first["value"] == 3 and first["per_100k"] is None


def exported_month(store: ViewStore, month: str) -> dict[str, Any]:
    with store.database.transaction() as tx:
        return statistics.export(tx, "142182", month, threshold=3)


def test_files_have_one_header_every_month_in_japanese_only(store: ViewStore) -> None:
    apply(store, *(opened("real_estate_agent", "sns") for _ in range(4)))
    busy, quiet = exported_month(store, "2024-03"), exported_month(store, "2024-04")
    utf8 = [statistics.as_csv(e).decode("utf-8-sig").splitlines() for e in (busy, quiet)]
    cp932 = [statistics.as_csv(e, "cp932").decode("cp932").splitlines() for e in (busy, quiet)]
    assert utf8[0][0] == utf8[1][0] == cp932[0][0] == cp932[1][0]
    assert utf8[0][1] != utf8[1][1] and utf8 == cp932
    assert statistics.as_csv(quiet).startswith(b"\xef\xbb\xbf")
    ref = reference()
    codes = {
        *ref.routes_in,
        *ref.channels,
        *ref.issue_categories,
        *ref.closure_reasons,
        *statistics.REFERRAL_OUTCOMES.values(),
        *statistics.ITEM_METRICS,
        *statistics.ITEM_METRICS.values(),
        *statistics.OTHER_METRICS,
    }
    for text in utf8[0] + utf8[1]:
        assert [code for code in codes if code in text] == []


def number_or_text(cell: Any) -> float | str:
    try:
        return float(cell)
    except ValueError:
        return str(cell)


def test_the_workbook_holds_the_csvs_header_and_row(store: ViewStore) -> None:
    apply(store, *(opened() for _ in range(3)))
    exported = exported_month(store, "2024-03")
    book = load_workbook(io.BytesIO(statistics.as_xlsx(exported)))
    sheet = book["支援状況調査"]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    header, row = list(csv.reader(io.StringIO(statistics.as_csv(exported).decode("utf-8-sig"))))
    assert rows[0] == header
    assert [number_or_text(v) for v in rows[1]] == [number_or_text(c) for c in row]
    assert dict(zip(rows[0], rows[1], strict=True))["新規相談受付件数"] == 3  # a number, not text
    assert any("「*」" in str(line.value) for line in book["注記"]["A"])


def test_national_headings_are_the_forms_own_words() -> None:
    t = Translator("ja")
    ref = reference().raw
    assert [t(f"report.item.{i['code']}") for i in ref["national_report"]["items"]] == [
        i["ja"] for i in ref["national_report"]["items"]
    ]
    assert [t.code("issue", c["code"]) for c in ref["issue_categories"]] == [
        c["ja"] for c in ref["issue_categories"]
    ]
    assert [t.code("closure", c) for c in ref["closure_reasons"]] == list(
        ref["closure_reasons"].values()
    )


def test_the_file_name_is_japanese_with_an_ascii_fallback() -> None:
    header = statistics.content_disposition("142182", "2025-09", "csv")
    assert header.startswith('attachment; filename="shien-jokyo-chosa_142182_2025-09.csv"; ')
    assert header.endswith("filename*=UTF-8''" + quote("支援状況調査_142182_2025-09.csv"))
