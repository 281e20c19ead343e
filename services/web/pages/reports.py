"""月次統計: the month's 支援状況調査 figures in the national form's fixed layout, the last twelve
months as charts drawn here in SVG (each with its data table), and the files to download.

Everything comes from the views API with the user's token: one call for the twelve months (the
month shown is the last of them), and the files as the API makes them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from babel.dates import format_skeleton
from fastapi import APIRouter, Depends, Path
from fastapi.responses import RedirectResponse, Response

from services.web import formatting
from services.web.catalogue import Translator
from services.web.desk import Desk, Refused, desk

router = APIRouter()
MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
CHART_MONTHS = 12
# Fills that stay apart without colour (solid, hatched, dotted, ...): a chart shows at most this
# many series, the smaller ones summed as "the rest".
PATTERNS = 6
# The chart's frame in SVG units: the plot sits inside these margins.
WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 24, 52
# Single-series charts: (chart, national item).
ITEMS = (("new_consultations", "new_consultations"), ("plans_made", "plans_made"))
# The catalogue kind of each breakdown's codes (a referral's outcome is the state it reached).
KINDS = {
    "route_in": "route_in",
    "channel": "channel",
    "issue": "issue",
    "referral_outcome": "state",
    "closure_reason": "closure",
}
# Charts by category, each of one breakdown.
SECTIONS = ("route_in", "referral_outcome", "closure_reason")


@dataclass(frozen=True)
class Segment:
    """One series' part of one month's bar."""

    x: float
    y: float
    width: float
    height: float
    pattern: int
    title: str


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    series: list[tuple[int, str]]  # (pattern, label); empty for a single series
    months: list[str]  # the table's row headings
    rows: list[list[int]]  # per month, a value per series (or the one value)
    totals: list[int]
    segments: list[Segment]
    ticks: list[tuple[float, int]]  # (y, value) of the scale's lines
    axis: list[tuple[float, str, str]]  # (x, month, year shown under it or "")
    labels: list[tuple[float, float, int]]  # each bar's total, above it
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    bottom: int = HEIGHT - BOTTOM


def _first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def months_back(month: str, count: int) -> str:
    """The month ``count`` months before ``month``."""
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 - count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _previous_month() -> str:
    return months_back(formatting.today().strftime("%Y-%m"), 1)


def month_heading(month: str) -> str:
    """令和7年（2025年）9月, as forms name a month."""
    return formatting.wareki_with_year(_first_day(month)).removesuffix("1日")


def scale_of(highest: int) -> tuple[int, int]:
    """(top, step) of a scale with at most five steps of 1, 2 or 5 times a power of ten."""
    power = 1
    while True:
        for step in (power, 2 * power, 5 * power):
            if highest <= 5 * step:
                return max(step, math.ceil(highest / step) * step), step
        power *= 10


def chart(
    t: Translator, key: str, months: list[str], series: list[str], rows: list[list[int]]
) -> Chart:
    """Stacked bars, one per month, of ``rows`` (a value per series per month)."""
    totals = [sum(row) for row in rows]
    top, step = scale_of(max(totals, default=0))
    plot = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / len(months)
    bar = slot * 0.6
    segments, labels, axis = [], [], []
    for index, (month, row) in enumerate(zip(months, rows, strict=True)):
        x = LEFT + slot * index + (slot - bar) / 2
        base = float(HEIGHT - BOTTOM)
        for number, value in enumerate(row):
            height = plot * value / top
            base -= height
            if value:
                name = f"{series[number]}：{value}" if series else str(value)
                at = (round(x, 1), round(base, 1), round(bar, 1), round(height, 1))
                segments.append(Segment(*at, number, f"{month} {name}"))
        labels.append((round(x + bar / 2, 1), round(base - 6, 1), sum(row)))
        day = _first_day(month)
        year = format_skeleton("y", day, locale=t.locale) if index == 0 or day.month == 1 else ""
        axis.append((round(x + bar / 2, 1), format_skeleton("MMM", day, locale=t.locale), year))
    ticks = [
        (round(HEIGHT - BOTTOM - plot * value / top, 1), value) for value in range(0, top + 1, step)
    ]
    return Chart(
        key=key,
        title=t(f"report.chart.{key}"),
        series=list(enumerate(series)),
        months=[format_skeleton("yMMM", _first_day(m), locale=t.locale) for m in months],
        rows=rows,
        totals=totals,
        segments=segments,
        ticks=ticks,
        axis=axis,
        labels=labels,
    )


def category_chart(t: Translator, section: str, answers: list[dict[str, Any]]) -> Chart:
    """The categories with the most over the twelve months, each with its fill, the rest summed
    so that no two series share a fill."""
    by_month = [
        {row["code"]: int(row["value"] or 0) for row in _section(answer, section)}
        for answer in answers
    ]
    codes = [row["code"] for row in _section(answers[-1], section)]
    kind = KINDS[section]
    total = {code: sum(month[code] for month in by_month) for code in codes}
    shown = [code for code in sorted(codes, key=lambda c: -total[c]) if total[code]]
    rest: list[str] = []
    if len(shown) > PATTERNS:
        shown, rest = shown[: PATTERNS - 1], shown[PATTERNS - 1 :]
    series = [t.code(kind, code) for code in shown] + ([t("report.rest")] if rest else [])
    rows = [
        [month[code] for code in shown] + ([sum(month[c] for c in rest)] if rest else [])
        for month in by_month
    ]
    return chart(t, section, [a["month"] for a in answers], series, rows)


def _section(answer: dict[str, Any], code: str) -> list[dict[str, Any]]:
    [found] = [s["rows"] for s in answer["report"]["breakdowns"] if s["code"] == code]
    rows: list[dict[str, Any]] = found
    return rows


def _item(answer: dict[str, Any], code: str) -> int:
    [found] = [i["value"] for i in answer["report"]["items"] if i["code"] == code]
    return int(found or 0)


def charts(t: Translator, answers: list[dict[str, Any]]) -> list[Chart]:
    months = [answer["month"] for answer in answers]
    found = [
        chart(t, key, months, [], [[_item(answer, item)] for answer in answers])
        for key, item in ITEMS
    ]
    found += [category_chart(t, section, answers) for section in SECTIONS]
    return found


@router.get("/reports")
async def pick(month: str | None = None, d: Desk = Depends(desk)) -> Response:
    """The month picker's target: the chosen month, or the last complete one."""
    if month is None:
        return RedirectResponse(f"/reports/{_previous_month()}", status_code=303)
    if not MONTH.match(month):
        return await _page(d, _previous_month(), status=422, typed=month)
    return RedirectResponse(f"/reports/{month}", status_code=303)


@router.get("/reports/{month}")
async def show(month: str, d: Desk = Depends(desk)) -> Response:
    return await _page(d, month)


async def _page(d: Desk, month: str, status: int = 200, typed: str | None = None) -> Response:
    first = months_back(month, CHART_MONTHS - 1) if MONTH.match(month) else month
    answer = await d.read("views", "/statistics", **{"from": first, "to": month})
    answers: list[dict[str, Any]] = answer["months"]
    report = answers[-1]["report"]
    guide = report["guide"]
    return d.render(
        "report.html",
        status,
        month=month,
        heading=month_heading(month),
        report=report,
        guide_label=_guide_label(d.t, guide),
        charts=charts(d.t, answers),
        kinds=KINDS,
        period=(month_heading(answers[0]["month"]), month_heading(month)),
        values={"month": typed if typed is not None else month},
        errors={"month": "month_format"} if typed is not None else {},
    )


def _guide_label(t: Translator, guide: dict[str, Any] | None) -> str:
    if guide is None:
        return t("report.none")
    heisei = int(guide["year"].removeprefix("H"))
    label = t("report.fiscal_year").format(western=guide["fiscal_year"], heisei=heisei)
    return label + (t("report.latest_given") if guide["latest_given_used"] else "")


@router.get("/reports/{month}/download.{extension}")
async def download(
    month: str = Path(pattern=MONTH.pattern),
    extension: str = Path(pattern="^(csv|xlsx)$"),
    encoding: str | None = None,
    d: Desk = Depends(desk),
) -> Response:
    """The API's file, passed on as it is: its bytes, type and file name."""
    answer = await d.get("views", f"/statistics/{month}/export.{extension}", encoding=encoding)
    if not answer.ok:
        raise Refused(answer)
    return Response(
        answer.content,
        media_type=answer.headers["content-type"],
        headers={"Content-Disposition": answer.headers["content-disposition"]},
    )
