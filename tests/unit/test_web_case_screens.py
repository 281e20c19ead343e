"""How the case, meeting and replay screens read what the APIs answer: the steps offered, the
bodies sent, and a replay's timeline as a 支援経過記録."""

from __future__ import annotations

from typing import Any

import pytest

from services.meeting import support_case
from services.web.catalogue import Translator
from services.web.pages import cases, meetings, replay
from services.web.pages.steps import lines, when
from services.web.session import User

pytestmark = pytest.mark.unit
T = Translator("ja")
CASE = "case:c1"


def user(agency: str, role: str) -> User:
    return User("s1", agency, (role,), "142182", "token", 0.0)


def test_the_web_knows_every_step_the_case_names_and_the_same_codes() -> None:
    assert set(cases.STEPS) == set(support_case.MOVES)
    assert set(cases.EVALUATION_OUTCOMES) == set(support_case.EVALUATION_OUTCOMES)
    assert cases.WORK_OUTCOMES == support_case.WORK_OUTCOMES
    assert cases.EMERGENCY_KINDS == support_case.EMERGENCY_KINDS


def test_the_support_decision_is_offered_only_to_an_approver_of_an_approving_agency() -> None:
    case = {"allowed": ["approve_plan", "record_assessment", "unknown_move"]}
    assert cases.offered(user("zama-jiritsu", "approver"), case) == [
        "approve_plan",
        "record_assessment",
    ]
    assert cases.offered(user("zama-jiritsu", "caseworker"), case) == ["record_assessment"]
    assert cases.offered(user("zama-shakyo", "approver"), case) == ["record_assessment"]


def test_a_coordination_meeting_is_offered_for_an_undiscussed_draft_with_none_pending() -> None:
    draft = {"status": "draft", "discussed_in": []}
    case: dict[str, Any] = {"status": "open", "plans": [draft]}
    assert cases.awaits_meeting(case, [])
    assert not cases.awaits_meeting(case, [{"held_at": None}])
    assert cases.awaits_meeting(case, [{"held_at": "2025-04-25T10:00:00+09:00"}])
    assert not cases.awaits_meeting({**case, "plans": [{**draft, "discussed_in": ["m1"]}]}, [])
    assert not cases.awaits_meeting({**case, "plans": [{**draft, "status": "approved"}]}, [])
    assert not cases.awaits_meeting({**case, "status": "closed"}, [])
    assert not cases.awaits_meeting({**case, "plans": []}, [])


def test_a_plan_form_becomes_the_api_body_blank_service_lines_left_out() -> None:
    typed = {name: "" for name in cases.STEPS["draft_plan"].fields} | {
        "goals": "月3〜5万円の就労収入\n\n  通院を続ける ",
        "period_from": "2025-04-20",
        "period_until": "2025-10-19",
        "drafted_with_person": "1",
        cases.service_field(0, "provider"): "zama-jiritsu",
        cases.service_field(0, "program"): "free_job_placement",
        cases.service_field(0, "service_class"): "D",
        cases.service_field(2, "provider"): "hellowork-atsugi",
        cases.service_field(2, "service_class"): "B",
        "monitoring_2": "2025-06-10",
        "on": "2025-04-20",
        "time": "10:00",
    }
    assert cases.STEPS["draft_plan"].request(typed) == {
        "goals": ["月3〜5万円の就労収入", "通院を続ける"],
        "period_from": "2025-04-20",
        "period_until": "2025-10-19",
        "services": [
            {"provider": "zama-jiritsu", "program": "free_job_placement", "service_class": "D"},
            {"provider": "hellowork-atsugi", "service_class": "B"},
        ],
        "monitoring_dates": ["2025-06-10"],
        "drafted_with_person": True,
        "at": "2025-04-20T10:00:00+09:00",
    }
    assert (
        cases.STEPS["draft_plan"].request(typed | {"drafted_with_person": ""})[
            "drafted_with_person"
        ]
        is False
    )


def test_an_undated_step_is_left_to_the_api_to_date_now() -> None:
    assessment = {"issues": ["debt"], "strengths": "毎日歩く\n", "notes": "", "on": "", "time": ""}
    assert cases.STEPS["record_assessment"].request(assessment) == {
        "issues": ["debt"],
        "strengths": ["毎日歩く"],
    }
    assert when({"on": "2025-04-20", "time": ""}) == {"at": "2025-04-20T00:00:00+09:00"}
    assert lines(" a \n\nb") == ["a", "b"]


def test_a_support_meeting_form_names_its_members_and_their_periods() -> None:
    typed = {name: "" for name in meetings.MEMBER_FIELDS} | {
        "kind": "article9_support_meeting",
        "person": "p1",
        "case": "",
        "scheduled_on": "2025-09-12",
        "scheduled_time": "10:00",
        meetings.member_field(0, "agency"): "zama-jiritsu",
        meetings.member_field(0, "until"): "2026-09-12",
        meetings.member_field(3, "agency"): "zama-shuno",
        meetings.member_field(3, "from"): "2025-09-12",
        meetings.member_field(3, "until"): "2025-12-01",
        "on": "",
        "time": "",
    }
    assert meetings._schedule_body(typed) == {
        "kind": "article9_support_meeting",
        "scheduled_for": "2025-09-12T10:00:00+09:00",
        "person_id": "p1",
        "members": [
            {
                "agency": "zama-jiritsu",
                "valid_from": None,
                "valid_until": "2026-09-12T00:00:00+09:00",
            },
            {
                "agency": "zama-shuno",
                "valid_from": "2025-09-12T00:00:00+09:00",
                "valid_until": "2025-12-01T00:00:00+09:00",
            },
        ],
    }


def row(event: str, category: str | None, summary: dict[str, Any], **extra: str) -> dict[str, Any]:
    return {
        "event_id": extra.get("event_id", event),
        "at": extra.get("at", "2025-04-20T01:00:00.000000+00:00"),
        "recorded_at": extra.get("recorded_at", "2025-04-20T01:00:00.000000+00:00"),
        "event": event,
        "agency": "zama-jiritsu",
        "category": category,
        "summary": summary,
    }


def test_one_event_split_by_category_reads_as_one_entry_of_the_record() -> None:
    timeline = [
        row("AssessmentRecorded", "consultation", {f"{CASE}/assessment:1.issues": ["no_kin"]}),
        row(
            "AssessmentRecorded",
            "health",
            {f"{CASE}/assessment:1.issues": ["illness", "problem_drinking"]},
        ),
        row(
            "PlanDrafted",
            "plan",
            {
                f"{CASE}/plan:2.goals": ["月3〜5万円の就労収入"],
                f"{CASE}/plan:2.services": [
                    {"provider": "hellowork-atsugi", "program": None, "service_class": "B"}
                ],
                f"{CASE}/plan:2.drafted_with_person": True,
            },
        ),
    ]
    assessment, plan = replay.entries(timeline)
    assert assessment.categories == ["consultation", "health"]
    assert replay.details(T, assessment) == [("課題", "身寄りなし（保証人・葬祭）、病気、問題飲酒")]
    assert plan.version == 2
    assert replay.details(T, plan) == [
        ("目標", "月3〜5万円の就労収入"),
        ("支援内容", "厚木公共職業安定所（ハローワーク）（B：その他の制度サービス）"),
    ]


def test_codes_read_by_the_event_that_carries_them_and_ids_are_left_out() -> None:
    closed = row(
        "CaseClosed",
        "plan",
        {f"{CASE}.reason": "moved_away", f"{CASE}.follow_up_until": "2026-04-15"},
    )
    held = row(
        "MeetingHeld",
        "plan",
        {
            "meeting:m1.kind": "individual_coordination",
            "meeting:m1.attendees": [{"agency": "hellowork-atsugi", "role": "member"}],
            "meeting:m1.plans_discussed": [{"case_id": "c1", "plan_version": 1}],
        },
        event_id="held",
    )
    consent = row(
        "ConsentRecorded",
        None,
        {"consent_id": "k1", "recipients": ["oneaid"], "categories": ["housing"]},
        event_id="consent",
    )
    closure, meeting, given = replay.entries([closed, held, consent])
    assert replay.details(T, closure) == [
        ("理由", "転出"),
        ("フォローアップ期限", "令和8年4月15日"),
    ]
    assert replay.details(T, meeting) == [
        ("種類", "個別支援調整会議"),
        ("出席機関", "厚木公共職業安定所（ハローワーク）"),
    ]
    assert replay.details(T, given) == [
        ("提供先", "NPO法人ワンエイド（居住支援・フードバンク）"),
        ("情報の種類", "住まい"),
    ]


def test_the_situation_on_the_date_is_read_from_the_entries_up_to_it() -> None:
    drafted = row("PlanDrafted", "plan", {f"{CASE}/plan:1.goals": ["就労"]}, event_id="d")
    opened = row("CaseOpened", "plan", {f"{CASE}.at": "2025-04-09T15:00:00+09:00"}, event_id="o")
    scheduled = row(
        "MeetingScheduled",
        "plan",
        {"meeting:m1.kind": "individual_coordination"},
        event_id="s",
        at="2025-04-21T00:00:00.000000+00:00",
    )
    then = replay.situation(T, replay.entries([opened, drafted, scheduled]))
    assert (then.case, then.plan, then.referrals) == ("支援中", "第1版：案（支援決定前）", [])
    assert then.meetings == ["個別支援調整会議：令和7年4月21日 会議の開催を決めた"]
    approved = row("PlanApproved", "plan", {f"{CASE}/plan:1.at": "x"}, event_id="a")
    sent = row(
        "ReferralSent",
        "referral_status",
        {"referral:r1.kind": "service_request"},
        event_id="r",
        at="2025-06-20T01:05:00.000000+00:00",
    )
    later = replay.situation(T, replay.entries([opened, drafted, approved, sent]))
    assert later.plan == "第1版：支援決定済み"
    assert later.referrals == ["令和7年6月20日：つなぐシートを送った"]
