"""The desk's 月次統計 over HTTP: the month picker, and the API's files passed on unchanged."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from services.platform.settings import Settings
from services.web import formatting
from services.web.pages.reports import months_back
from services.wiring import embedded_app
from tests.e2e.test_desk_http import sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture
def desk(embedded_settings: Settings) -> Iterator[TestClient]:
    with TestClient(embedded_app(embedded_settings)) as client:
        yield client


def test_the_report_opens_on_the_last_complete_month(desk: TestClient) -> None:
    sign_in(desk)
    answer = desk.get("/reports", follow_redirects=False)
    last = months_back(formatting.today().strftime("%Y-%m"), 1)
    assert (answer.status_code, answer.headers["location"]) == (303, f"/reports/{last}")
    chosen = desk.get("/reports", params={"month": "2025-09"}, follow_redirects=False)
    assert chosen.headers["location"] == "/reports/2025-09"


def test_a_month_typed_wrong_is_shown_beside_the_picker(desk: TestClient) -> None:
    sign_in(desk)
    answer = desk.get("/reports", params={"month": "2025-9"})
    assert answer.status_code == 422
    assert "年月の形式が正しくありません" in answer.text
    assert 'aria-invalid="true"' in answer.text and 'value="2025-9"' in answer.text


def test_the_files_come_through_the_desk_as_the_api_made_them(desk: TestClient) -> None:
    sign_in(desk)
    workbook = desk.get("/reports/2025-09/download.xlsx")
    assert workbook.status_code == 200
    assert workbook.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "filename*=UTF-8''" in workbook.headers["content-disposition"]
    assert load_workbook(io.BytesIO(workbook.content)).sheetnames == ["支援状況調査", "注記"]
    cp932 = desk.get("/reports/2025-09/download.csv", params={"encoding": "cp932"})
    assert cp932.content.decode("cp932").startswith("市区町村コード,年月,")
    assert desk.get("/reports/2025-09/download.json").status_code == 422


def test_the_menu_offers_the_report_only_to_whom_the_api_serves_it(desk: TestClient) -> None:
    sign_in(desk)
    assert 'href="/reports"' in desk.get("/").text
    desk.cookies.clear()
    sign_in(desk, agency="zama-shuno")
    assert 'href="/reports"' not in desk.get("/").text
    assert desk.get("/reports/2025-09/download.csv").status_code == 403
