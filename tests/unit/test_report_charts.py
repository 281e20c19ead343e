"""The monthly report's charts: a readable scale, and no more series than fills apart."""

from __future__ import annotations

from typing import Any

import pytest

from services.web.catalogue import Translator
from services.web.pages import reports

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("highest", "scale"),
    [(0, (1, 1)), (1, (1, 1)), (7, (8, 2)), (23, (25, 5)), (130, (150, 50))],
)
def test_the_scale_has_at_most_five_round_steps(highest: int, scale: tuple[int, int]) -> None:
    assert reports.scale_of(highest) == scale


def answer(month: str, routes: dict[str, int]) -> dict[str, Any]:
    rows = [{"code": code, "value": routes.get(code, 0)} for code in ROUTES]
    return {"month": month, "report": {"breakdowns": [{"code": "route_in", "rows": rows}]}}


ROUTES = ["self", "tax_desk", "npo", "shakyo", "outreach", "other", "hello_work", "food_bank"]


def test_acategory_chart_keeps_five_series_and_sums_the_rest() -> None:
    answers = [
        answer("2025-08", {code: n + 1 for n, code in enumerate(ROUTES)}),
        answer("2025-09", {"self": 10}),
    ]
    chart = reports.category_chart(Translator("ja"), "route_in", answers)
    labels = [label for _, label in chart.series]
    assert labels == [
        "本人",
        "フードバンク",
        "ハローワーク",
        "その他",
        "アウトリーチ",
        "その他（上記以外）",
    ]
    assert chart.rows[0] == [1, 8, 7, 6, 5, 4 + 3 + 2] and chart.totals == [36, 10]
    assert [p for p, _ in chart.series] == list(range(reports.PATTERNS))


def test_bars_stand_on_the_axis_in_proportion() -> None:
    chart = reports.chart(
        Translator("ja"), "new_consultations", ["2025-08", "2025-09"], [], [[2], [4]]
    )
    low, high = chart.segments
    bottom = reports.HEIGHT - reports.BOTTOM
    assert low.y + low.height == high.y + high.height == bottom
    assert high.height == 2 * low.height
    assert [value for _, _, value in chart.labels] == [2, 4]
    assert [month for _, month, _ in chart.axis] == ["8月", "9月"]
