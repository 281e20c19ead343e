"""Monthly statistics in the shape of the national support-status report (支援状況調査).

Per municipality and month (business time, in Japan): new consultations by route in and
channel, applications, plans approved, issues per first assessment (Zama measured 3.88),
referrals by kind and outcome, people connected to public assistance, people into work or with
more income (found at evaluation), closures by reason, and declined referrals still without
follow-up. Exported files suppress small counts so that nobody can be singled out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import timedelta, timezone
from typing import Any

from contracts import events as ev
from contracts.envelope import CloudEvent
from contracts.events import Act, IntegrationEvent
from contracts.reference import reference
from services.platform.sql import Transaction
from services.projection.changes import Change, Upsert, ViewState

JST = timezone(timedelta(hours=9))
SUPPRESSED = "*"

TABLES = (
    """CREATE TABLE IF NOT EXISTS stat_count (
        counted TEXT NOT NULL,
        metric TEXT NOT NULL,
        municipality TEXT NOT NULL,
        month TEXT NOT NULL,
        amount INTEGER NOT NULL,
        PRIMARY KEY (counted, metric)
    )""",
    "CREATE INDEX IF NOT EXISTS stat_count_month ON stat_count (municipality, month)",
    """CREATE TABLE IF NOT EXISTS stat_declined_referral (
        referral_id TEXT PRIMARY KEY,
        municipality TEXT,
        month TEXT,
        followed_up INTEGER NOT NULL
    )""",
)

# Outcomes of a referral as the report counts them.
REFERRAL_OUTCOMES: dict[type[IntegrationEvent], str] = {
    ev.ReferralAccepted: "accepted",
    ev.ReferralDeclined: "declined",
    ev.ReferralCompleted: "completed",
    ev.ReferralFailed: "failed",
    ev.ReferralWithdrawn: "withdrawn",
    ev.ReferralRerouted: "rerouted",
}


def _month(data: IntegrationEvent) -> str:
    assert isinstance(data, Act)  # every event's data says when it happened
    return data.at.astimezone(JST).strftime("%Y-%m")


def _public_assistance(agency: str | None) -> bool:
    return agency is not None and agency in reference().agencies_with_role("public_assistance")


def _counted(event: CloudEvent, data: IntegrationEvent) -> list[tuple[str, str, int]]:
    """(what makes the count unique, metric, amount) for one event.

    Counts of people use the person and month as their identity, so a person connected to
    public assistance by a triage and by a closure in one month counts once.
    """
    person = f"person:{getattr(data, 'person_id', None)}:{_month(data)}"
    match data:
        case ev.ConsultationOpened():
            return [
                (event.id, "new_consultations", 1),
                (event.id, f"route_in.{data.route_in}", 1),
                (event.id, f"channel.{data.channel}", 1),
            ]
        case ev.ApplicationReceived():
            return [(event.id, "applications", 1)]
        case ev.AssessmentRecorded() if data.assessment_number == 1:
            return [
                (event.id, "first_assessments", 1),
                (event.id, "first_assessment_issues", len(data.issues)),
                *((event.id, f"issue.{issue}", 1) for issue in data.issues),
            ]
        case ev.PlanApproved():
            return [(event.id, "plans_approved", 1)]
        case ev.ReferralSent():
            counts = [(event.id, f"referrals.kind.{data.kind}", 1)]
            if _public_assistance(data.receiver):
                counts.append((person, "to_public_assistance", 1))
            return counts
        case ev.ConsultationTriaged() if data.outcome == "connect_elsewhere" and (
            _public_assistance(data.target_agency) or "生活保護" in (data.target_system or "")
        ):
            return [(person, "to_public_assistance", 1)]
        case ev.PlanEvaluated():
            return [(person, outcome, 1) for outcome in data.work_outcomes]
        case ev.CaseClosed():
            counts = [(event.id, f"closures.{data.reason}", 1)]
            if data.reason == "transferred_to_public_assistance":
                counts.append((person, "to_public_assistance", 1))
            return counts
    outcome = REFERRAL_OUTCOMES.get(type(data))
    return [(event.id, f"referrals.outcome.{outcome}", 1)] if outcome else []


def count(_: ViewState, event: CloudEvent, data: IntegrationEvent) -> Sequence[Change]:
    changes: list[Change] = [
        Upsert(
            "stat_count",
            key={"counted": counted, "metric": metric},
            values={"municipality": event.municipality, "month": _month(data), "amount": amount},
        )
        for counted, metric, amount in _counted(event, data)
    ]
    if isinstance(data, ev.ReferralDeclined):
        changes.append(
            Upsert(
                "stat_declined_referral",
                key={"referral_id": str(data.referral_id)},
                values={
                    "municipality": event.municipality,
                    "month": _month(data),
                    "followed_up": 0,
                },
            )
        )
    elif isinstance(data, ev.ReferralDeclineFollowedUp | ev.ReferralRerouted):
        changes.append(
            Upsert(
                "stat_declined_referral",
                key={"referral_id": str(data.referral_id)},
                values={"followed_up": 1},
            )
        )
    return changes


def monthly(tx: Transaction, municipality: str, month: str) -> dict[str, int | float]:
    """The month's figures, exact: for staff inside the municipality, not for export."""
    rows = tx.fetchall(
        "SELECT metric, SUM(amount) AS amount FROM stat_count "
        "WHERE municipality = ? AND month = ? GROUP BY metric ORDER BY metric",
        (municipality, month),
    )
    report: dict[str, int | float] = {row["metric"]: int(row["amount"]) for row in rows}
    declined = tx.fetchone(
        "SELECT COUNT(*) AS n FROM stat_declined_referral "
        "WHERE municipality = ? AND month = ? AND followed_up = 0",
        (municipality, month),
    )
    report["declined_without_follow_up"] = int(declined["n"]) if declined else 0
    for metric in (
        "new_consultations",
        "applications",
        "plans_approved",
        "first_assessments",
        "to_public_assistance",
        "into_work",
        "increased_income",
    ):
        report.setdefault(metric, 0)
    if report["first_assessments"]:
        issues = int(report.get("first_assessment_issues", 0))
        report["issues_per_assessment"] = round(issues / int(report["first_assessments"]), 2)
    return report


def suppressed(report: dict[str, int | float], threshold: int) -> dict[str, int | float | str]:
    """Counts from 1 to threshold-1 become ``*``; so do ratios built on them."""
    small = {m for m, v in report.items() if isinstance(v, int) and 0 < v < threshold}
    hidden: dict[str, int | float | str] = {
        metric: SUPPRESSED if metric in small else value for metric, value in report.items()
    }
    if "issues_per_assessment" in hidden and small & {
        "first_assessments",
        "first_assessment_issues",
    }:
        hidden["issues_per_assessment"] = SUPPRESSED
    return hidden


def header_ja(metric: str) -> str:
    """The column heading in Japanese, as the national report and Zama's staff read it."""
    ref = reference().raw
    fixed = {
        "new_consultations": "新規相談受付件数",
        "applications": "利用申込件数",
        "first_assessments": "初回アセスメント件数",
        "first_assessment_issues": "初回アセスメントで把握した課題数",
        "issues_per_assessment": "1人あたり課題数",
        "plans_approved": "プラン作成件数（支援決定）",
        "to_public_assistance": "生活保護へのつなぎ（人）",
        "into_work": "就労者数",
        "increased_income": "増収者数",
        "declined_without_follow_up": "辞退後フォローのないつなぎ",
    }
    if metric in fixed:
        return fixed[metric]
    group, _, code = metric.rpartition(".")
    issues = {c["code"]: c["ja"] for c in ref["issue_categories"]}
    closures = ref["closure_reasons"]
    labels = {
        "route_in": ("相談経路", code),
        "channel": ("相談方法", code),
        "issue": ("課題", issues.get(code, code)),
        "closures": ("終結理由", closures.get(code, code)),
        "referrals.kind": ("つなぎの種類", code),
        "referrals.outcome": ("つなぎの結果", code),
    }
    prefix, label = labels.get(group, (group, code))
    return f"{prefix}：{label}"


def as_csv(municipality: str, month: str, report: dict[str, int | float | str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["市区町村コード", "年月", *(header_ja(m) for m in report)])
    writer.writerow([municipality, month, *report.values()])
    return out.getvalue()


def export(tx: Transaction, municipality: str, month: str, threshold: int) -> dict[str, Any]:
    return {
        "municipality": municipality,
        "month": month,
        "small_cell_threshold": threshold,
        "figures": suppressed(monthly(tx, municipality, month), threshold),
    }
