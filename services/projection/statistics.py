"""Monthly statistics in the shape of the national support-status report (支援状況調査).

Per municipality and month (business time, in Japan): new consultations by route in and
channel, applications, plans approved, issues per first assessment (Zama measured 3.88),
referrals by kind and outcome, people connected to public assistance, people into work or with
more income (found at evaluation), consultations connected elsewhere or ended with information
only (the triage), closures by reason, and declined referrals still without follow-up.

The report lays these out in one fixed layout for every month: the national form's items in the
reference's order (per 100,000 inhabitants beside the national guide value), then the
municipality's breakdowns with every code of the reference data, so that months can be stacked.
Exported files (CSV, .xlsx) suppress small counts so that nobody can be singled out, and speak
Japanese only: every code goes through the desk's catalogue, the one place codes get words.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import timedelta, timezone
from typing import Any
from urllib.parse import quote

from openpyxl import Workbook

from contracts import events as ev
from contracts.envelope import CloudEvent
from contracts.events import Act, IntegrationEvent
from contracts.reference import reference
from services.feeds.changes import Change, Upsert, ViewState
from services.platform.sql import Transaction
from services.web.catalogue import Translator

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

# Triage outcomes the national form counts: 他制度・他機関へのつなぎ, 相談・情報提供のみで終了.
TRIAGES_COUNTED = ("connect_elsewhere", "information_only")


def _month(data: IntegrationEvent) -> str:
    assert isinstance(data, Act)  # every event's data says when it happened
    return data.at.astimezone(JST).strftime("%Y-%m")


def _public_assistance(agency: str | None) -> bool:
    return agency is not None and agency in reference().agencies_with_role("public_assistance")


def _counted(event: CloudEvent, data: IntegrationEvent, month: str) -> list[tuple[str, str, int]]:
    """(what makes the count unique, metric, amount) for one event.

    Counts of people use the person and month as their identity, so a person connected to
    public assistance by a triage and by a closure in one month counts once.
    """
    person = f"person:{getattr(data, 'person_id', None)}:{month}"
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
        case ev.ConsultationTriaged():
            # Once per consultation and outcome: a triage repeated the same way counts once.
            counts = []
            if data.outcome in TRIAGES_COUNTED:
                counts.append((f"consultation:{data.consultation_id}", f"triage.{data.outcome}", 1))
            if data.outcome == "connect_elsewhere" and (
                _public_assistance(data.target_agency) or "生活保護" in (data.target_system or "")
            ):
                counts.append((person, "to_public_assistance", 1))
            return counts
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
    month = _month(data)
    changes: list[Change] = [
        Upsert(
            "stat_count",
            key={"counted": counted, "metric": metric},
            values={"municipality": event.municipality, "month": month, "amount": amount},
        )
        for counted, metric, amount in _counted(event, data, month)
    ]
    if isinstance(data, ev.ReferralDeclined):
        changes.append(
            Upsert(
                "stat_declined_referral",
                key={"referral_id": str(data.referral_id)},
                values={
                    "municipality": event.municipality,
                    "month": month,
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


Figures = dict[str, int | float]
# A figure as reported: a count or ratio, SUPPRESSED in exports, None where nothing is counted.
Figure = int | float | str | None

# Figures every month reports, 0 when nothing happened.
ALWAYS_REPORTED = (
    "new_consultations",
    "applications",
    "plans_approved",
    "first_assessments",
    "to_public_assistance",
    "into_work",
    "increased_income",
)


def months(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` (YYYY-MM), both included."""
    year, number = int(first[:4]), int(first[5:7])
    found: list[str] = []
    while f"{year:04d}-{number:02d}" <= last:
        found.append(f"{year:04d}-{number:02d}")
        year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return found


def monthly_range(tx: Transaction, municipality: str, first: str, last: str) -> dict[str, Figures]:
    """Each month's figures from ``first`` to ``last``, exact: for staff inside the
    municipality, not for export. One query for the whole range."""
    reports: dict[str, Figures] = {month: {} for month in months(first, last)}
    rows = tx.fetchall(
        "SELECT month, metric, SUM(amount) AS amount FROM stat_count "
        "WHERE municipality = ? AND month BETWEEN ? AND ? "
        "GROUP BY month, metric ORDER BY month, metric",
        (municipality, first, last),
    )
    for row in rows:
        reports[row["month"]][row["metric"]] = int(row["amount"])
    declined = tx.fetchall(
        "SELECT month, COUNT(*) AS n FROM stat_declined_referral "
        "WHERE municipality = ? AND month BETWEEN ? AND ? AND followed_up = 0 GROUP BY month",
        (municipality, first, last),
    )
    undone = {row["month"]: int(row["n"]) for row in declined}
    for month, report in reports.items():
        report["declined_without_follow_up"] = undone.get(month, 0)
        for metric in ALWAYS_REPORTED:
            report.setdefault(metric, 0)
        if report["first_assessments"]:
            issues = int(report.get("first_assessment_issues", 0))
            report["issues_per_assessment"] = round(issues / int(report["first_assessments"]), 2)
    return reports


def monthly(tx: Transaction, municipality: str, month: str) -> Figures:
    """The month's figures, exact: for staff inside the municipality, not for export."""
    return monthly_range(tx, municipality, month, month)[month]


def suppressed(report: Figures, threshold: int) -> dict[str, int | float | str]:
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


# --- The fixed layout --------------------------------------------------------------------------

# The metric each item of the national form is counted from.
ITEM_METRICS = {
    "new_consultations": "new_consultations",
    "plans_made": "plans_approved",
    "into_work": "into_work",
    "increased_income": "increased_income",
    "connected_elsewhere": "triage.connect_elsewhere",
    "information_only": "triage.information_only",
}
# Items no event records yet, with the reason: reported as null with this note, never estimated.
# Whether a plan is for employment support (就労支援対象) and a person's step-up are not recorded.
NOT_RECORDED = {
    "employment_support_targets": "no_employment_support_flag",
    "work_or_income_rate": "no_employment_support_flag",
    "step_up_rate": "no_step_up_record",
}
# うち就労支援対象プラン作成者分 needs the same flag.
BREAKDOWN_NOTE = "no_employment_support_flag"
# Figures the national items leave out, kept after them as before (rates and follow-up).
OTHER_METRICS = (
    "applications",
    "first_assessments",
    "first_assessment_issues",
    "issues_per_assessment",
    "to_public_assistance",
    "declined_without_follow_up",
)
# Guide values name fiscal years in the Heisei era (H27 = FY2015).
HEISEI = 1988


def national_items() -> list[dict[str, Any]]:
    """The national form's items, in the form's order, as the reference data gives them."""
    items: list[dict[str, Any]] = reference().raw["national_report"]["items"]
    return items


def sections() -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    """The municipality's own breakdowns: (section, metric prefix, catalogue kind, every code)."""
    ref = reference()
    return (
        ("route_in", "route_in", "route_in", ref.routes_in),
        ("channel", "channel", "channel", ref.channels),
        ("issue", "issue", "issue", ref.issue_categories),
        ("referral_outcome", "referrals.outcome", "state", tuple(REFERRAL_OUTCOMES.values())),
        ("closure_reason", "closures", "closure", ref.closure_reasons),
    )


def fiscal_year(month: str) -> int:
    """The Japanese fiscal year (年度, April to March) a month falls in."""
    return int(month[:4]) if int(month[5:7]) >= 4 else int(month[:4]) - 1


def guide_for(month: str) -> dict[str, Any] | None:
    """Which fiscal year's guide values stand beside the month: its own; the latest given when
    the month is later, marked ``latest_given_used``; none before the first (the Act began in
    April 2015)."""
    given: dict[int, str] = {}
    for item in national_items():
        for year in item.get("guide_per_100k", {}):
            if not year.startswith("H"):
                raise ValueError(f"guide year {year!r} is not in the Heisei era")
            given[HEISEI + int(year[1:])] = year
    own = fiscal_year(month)
    earlier = [year for year in given if year <= own]
    if not earlier:
        return None
    chosen = max(earlier)
    return {"year": given[chosen], "fiscal_year": chosen, "latest_given_used": chosen != own}


def _population(municipality: str) -> int | None:
    known = reference().municipalities.get(municipality)
    return known.population if known is not None else None


def _per_100k(value: Figure, population: int | None) -> Figure:
    if isinstance(value, str):
        return SUPPRESSED  # a rate of a hidden count would give the count away
    if value is None or population is None:
        return None
    return round(value * 100_000 / population, 1)


def report(municipality: str, month: str, figures: dict[str, Any]) -> dict[str, Any]:
    """The month in the fixed layout: the same keys, items and codes every month."""
    population = _population(municipality)
    guide = guide_for(month)
    items = []
    for item in national_items():
        code = item["code"]
        metric = ITEM_METRICS.get(code)
        value: Figure = figures.get(metric, 0) if metric else None
        per_100k = item.get("per_100k", False)
        guide_value = item["guide_per_100k"].get(guide["year"]) if guide and per_100k else None
        items.append(
            {
                "code": code,
                "value": value,
                "has_per_100k": per_100k,
                "per_100k": _per_100k(value, population) if per_100k else None,
                "guide_per_100k": guide_value,
                "breakdown": {"value": None, "note": BREAKDOWN_NOTE}
                if "breakdown" in item
                else None,
                "note": NOT_RECORDED.get(code),
            }
        )
    return {
        "fiscal_year": fiscal_year(month),
        "population": population,
        "guide": guide,
        "items": items,
        "other": [
            # A month without a first assessment has no ratio of issues to them, not 0.
            {"code": m, "value": figures.get(m, None if m == "issues_per_assessment" else 0)}
            for m in OTHER_METRICS
        ],
        "breakdowns": [
            {
                "code": section,
                "rows": [{"code": c, "value": figures.get(f"{prefix}.{c}", 0)} for c in codes],
            }
            for section, prefix, _, codes in sections()
        ],
    }


def month_answer(municipality: str, month: str, figures: dict[str, Any]) -> dict[str, Any]:
    """What the API answers for a month: the raw figures (by metric) and the fixed layout."""
    return {
        "municipality": municipality,
        "month": month,
        "figures": figures,
        "report": report(municipality, month, figures),
    }


def export(tx: Transaction, municipality: str, month: str, threshold: int) -> dict[str, Any]:
    """For files that leave the office: small counts suppressed, in the layout too."""
    figures = suppressed(monthly(tx, municipality, month), threshold)
    return {**month_answer(municipality, month, figures), "small_cell_threshold": threshold}


# --- Files -------------------------------------------------------------------------------------


def _guide_label(t: Translator, guide: dict[str, Any] | None, marked: bool = True) -> str:
    if guide is None:
        return t("report.none")
    label = t("report.fiscal_year").format(
        western=guide["fiscal_year"], heisei=guide["fiscal_year"] - HEISEI
    )
    return label + (t("report.latest_given") if marked and guide["latest_given_used"] else "")


def columns(exported: dict[str, Any]) -> list[tuple[str, Figure]]:
    """The file's one row: (Japanese heading, cell). The headings come from the layout's fixed
    items and codes, never from the data, so every month has the same header."""
    t = Translator("ja")
    layout = exported["report"]

    def cell(value: Figure, note: str | None = None) -> Figure:
        if value is None:
            return t("report.not_counted") if note else t("report.none")
        return value

    found: list[tuple[str, Figure]] = [
        (t("report.municipality"), exported["municipality"]),
        (t("report.month"), exported["month"]),
        (t("report.population"), cell(layout["population"])),
        (t("report.guide_year"), _guide_label(t, layout["guide"])),
    ]
    for item in layout["items"]:
        name = t(f"report.item.{item['code']}")
        found.append((name, cell(item["value"], item["note"])))
        if item["breakdown"] is not None:
            breakdown = item["breakdown"]
            heading = f"{name}（{t('report.breakdown')}）"
            found.append((heading, cell(breakdown["value"], breakdown["note"])))
        if item["has_per_100k"]:
            found.append(
                (f"{name}（{t('report.per_100k')}）", cell(item["per_100k"], item["note"]))
            )
            found.append((f"{name}（{t('report.guide')}）", cell(item["guide_per_100k"])))
    for other in layout["other"]:
        found.append((t(f"report.other.{other['code']}"), cell(other["value"])))
    for (_, _, kind, _), section in zip(sections(), layout["breakdowns"], strict=True):
        prefix = t(f"report.section.{section['code']}")
        for row in section["rows"]:
            found.append((f"{prefix}：{t.code(kind, row['code'])}", row["value"]))
    return found


def notes(exported: dict[str, Any]) -> list[str]:
    """What a reader of the file must know: suppression, the guide's year, items not counted."""
    t = Translator("ja")
    layout = exported["report"]
    found = [t("report.suppression_note").format(threshold=exported["small_cell_threshold"])]
    if layout["guide"] and layout["guide"]["latest_given_used"]:
        found.append(
            t("report.guide_note").format(
                own=layout["fiscal_year"], given=_guide_label(t, layout["guide"], marked=False)
            )
        )
    for item in layout["items"]:
        name = t(f"report.item.{item['code']}")
        if item["note"]:
            found.append(f"{name}：{t('report.note.' + item['note'])}")
        if item["breakdown"] and item["breakdown"]["note"]:
            note = t("report.note." + item["breakdown"]["note"])
            found.append(f"{name}（{t('report.breakdown')}）：{note}")
    return found


def as_csv(exported: dict[str, Any], encoding: str = "utf-8") -> bytes:
    """One header line and one row, CRLF as Excel writes; UTF-8 with a BOM (Excel reads UTF-8
    only with one) or CP932 for Excel that reads nothing else."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    found = columns(exported)
    writer.writerow([heading for heading, _ in found])
    writer.writerow([value for _, value in found])
    return out.getvalue().encode("utf-8-sig" if encoding == "utf-8" else "cp932")


def as_xlsx(exported: dict[str, Any]) -> bytes:
    """The same header and row as the CSV, numbers as numbers, and the notes on a second sheet."""
    t = Translator("ja")
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has one sheet
    sheet.title = t("report.file_name")
    found = columns(exported)
    sheet.append([heading for heading, _ in found])
    sheet.append([value for _, value in found])
    sheet.freeze_panes = "C2"
    remarks = book.create_sheet(t("report.notes"))
    for line in notes(exported):
        remarks.append([line])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def content_disposition(municipality: str, month: str, extension: str) -> str:
    """``attachment`` with the Japanese file name (RFC 6266/8187) and an ASCII one for old
    clients: 支援状況調査_142182_2025-09.csv."""
    code = "".join(c for c in municipality if c.isascii() and c.isalnum())
    name = f"{Translator('ja')('report.file_name')}_{code}_{month}.{extension}"
    fallback = f"shien-jokyo-chosa_{code}_{month}.{extension}"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"
