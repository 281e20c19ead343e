"""月次統計 in a real browser: the support office reads a month of the demo's figures in the
national form's layout, the year's charts each with its table, and downloads the CSV."""

from __future__ import annotations

import codecs
import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from services.platform.auth import mint_token
from services.scenarios import JST, load_scenarios, shift_for, step_time
from tests.browser.conftest import AccessibilityCheck, LiveDesk, sign_in
from tests.conftest import JWT_SECRET

pytestmark = pytest.mark.browser


def demo_month() -> str:
    """The month the demo played story 04's first call in (stories end the day before today)."""
    [story] = [s for s in load_scenarios() if s.name == "04-anonymous-unclear-caller"]
    return (step_time("2025-08-03T09:15") + shift_for(story)).astimezone(JST).strftime("%Y-%m")


def api_new_consultations(desk: LiveDesk, month: str) -> int:
    token = mint_token(JWT_SECRET, staff_id="s001", agency="zama-jiritsu", roles=["caseworker"])
    answer = httpx.get(
        f"{desk.origin}/views/statistics/{month}", headers={"Authorization": f"Bearer {token}"}
    )
    [item] = [i for i in answer.json()["report"]["items"] if i["code"] == "new_consultations"]
    return int(item["value"])


def test_the_office_reads_a_month_its_charts_and_downloads_the_csv(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    sign_in(page, desk, "zama-jiritsu", "caseworker")
    page.get_by_role("link", name="月次統計").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("月次統計（支援状況調査）")

    month = demo_month()
    page.get_by_label(re.compile("^表示する月")).fill(month)
    page.get_by_role("button", name="表示する").click()
    expect(page).to_have_url(f"{desk.origin}/reports/{month}")

    national = page.get_by_role("table", name=re.compile("全国様式の項目順"))
    row = national.get_by_role("row", name=re.compile("^新規相談受付件数"))
    shown = row.get_by_role("cell").first.inner_text()
    expected = api_new_consultations(desk, month)
    assert expected >= 1 and shown == str(expected)
    expect(national.get_by_role("row", name=re.compile("^ステップアップ率"))).to_contain_text(
        "未集計"
    )

    charts = page.locator("section.chart")
    expect(charts).to_have_count(5)
    for index in range(5):
        chart = charts.nth(index)
        expect(chart.locator("svg[role=img]")).to_have_count(1)
        expect(chart.locator("table caption")).to_contain_text("～")
        expect(chart.locator("table tbody tr")).to_have_count(12)
    # The month shown is the last of the twelve: the chart's table agrees with the form.
    first_chart_rows = charts.first.locator("table tbody tr")
    expect(first_chart_rows.last.locator("td")).to_have_text(str(expected))
    checked(page, "reports")

    with page.expect_download() as utf8:
        page.get_by_role("link", name="CSV（UTF-8・BOM付き）").click()
    assert utf8.value.suggested_filename == f"支援状況調査_142182_{month}.csv"
    data = utf8.value.path().read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    text = data.decode("utf-8-sig")
    assert text.startswith("市区町村コード,年月,")
    with page.expect_download() as cp932:
        page.get_by_role("link", name=re.compile("Shift_JIS")).click()
    assert cp932.value.path().read_bytes().decode("cp932") == text


def test_staff_the_api_refuses_the_figures_see_no_report(
    page: Page, desk: LiveDesk, checked: AccessibilityCheck
) -> None:
    sign_in(page, desk, "zama-shuno", "caseworker")
    expect(page.get_by_role("navigation")).not_to_contain_text("月次統計")
    page.goto(f"{desk.origin}/reports/{demo_month()}")
    expect(page.get_by_role("heading", level=1)).to_have_text("操作できませんでした")
    expect(page.get_by_role("alert")).to_contain_text("この操作は許可されていません。")
    checked(page, "reports-refused")
