"""The scenarios' statistics expectations, each story played alone in its own platform."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from contracts.reference import reference
from services.platform.settings import Settings
from services.projection import statistics
from services.scenarios import JST, Played, ScenarioPlayer, load_scenarios, step_time
from services.wiring import embedded_app
from tests.conftest import TokenFactory
from tests.scenario_checks import check_statistics_expectations

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]


def play(name: str, settings: Settings, token: TokenFactory) -> tuple[TestClient, Played]:
    client = TestClient(embedded_app(settings))
    [story] = [s for s in load_scenarios() if s.name == name]
    return client, ScenarioPlayer.embedded(client, token).play(story)


def month_of(played: Played, on: str) -> str:
    """The real month a story's date falls in, once the story is shifted to end before now."""
    return step_time(played.when(on)).astimezone(JST).strftime("%Y-%m")


def figures(client: TestClient, auth: Auth, month: str) -> dict[str, Any]:
    response = client.get(f"/views/statistics/{month}", headers=auth())
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["figures"]
    return result


@pytest.mark.parametrize("name", ["02-debt-shimura", "04-anonymous-unclear-caller"])
def test_each_storys_statistics_expectations(
    name: str, embedded_settings: Settings, token: TokenFactory
) -> None:
    client, played = play(name, embedded_settings, token)
    assert check_statistics_expectations(client, token, "/views", {name: played}) >= 3


def test_exports_suppress_and_only_the_office_reads_figures(
    embedded_settings: Settings, token: TokenFactory, auth: Auth
) -> None:
    client, played = play("04-anonymous-unclear-caller", embedded_settings, token)
    month = month_of(played, "2025-08-03T09:15")
    exported = client.get(f"/views/statistics/{month}/export.json", headers=auth()).json()
    assert exported["figures"]["route_in.public_relations_bulletin"] == "*"
    csv_file = client.get(f"/views/statistics/{month}/export.csv", headers=auth()).content
    assert csv_file.decode("utf-8-sig").startswith("市区町村コード,年月,")
    assert client.get(f"/views/statistics/{month}", headers=auth("zama-shuno")).status_code == 403
    assert client.get("/views/statistics/2025-13", headers=auth()).status_code == 422


def every_code() -> set[str]:
    """Every code of the reference data, and every metric and item the report names."""
    ref = reference()
    raw = ref.raw
    return {
        *ref.agencies,
        *ref.channels,
        *ref.routes_in,
        *ref.caller_kinds,
        *ref.issue_categories,
        *ref.data_categories,
        *ref.closure_reasons,
        *ref.legal_bases,
        *ref.programs,
        *ref.service_classes,
        *ref.meeting_kinds,
        *(item["code"] for item in raw["national_report"]["items"]),
        *statistics.REFERRAL_OUTCOMES.values(),
        *statistics.ITEM_METRICS.values(),
        *statistics.OTHER_METRICS,
    }


def shape(value: Any) -> Any:
    """The layout's keys and codes, without its figures."""
    if isinstance(value, dict):
        return {k: v if k == "code" else shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return None


@pytest.fixture
def two_months(embedded_settings: Settings, token: TokenFactory) -> tuple[TestClient, list[str]]:
    """Story 02: the month it was opened and planned, and the month it was closed."""
    client, played = play("02-debt-shimura", embedded_settings, token)
    return client, [month_of(played, "2024-02-05T13:05"), month_of(played, "2024-08-01T09:30")]


def test_every_month_has_the_same_fixed_layout(
    two_months: tuple[TestClient, list[str]], auth: Auth
) -> None:
    client, months = two_months
    answers = [client.get(f"/views/statistics/{m}", headers=auth()).json() for m in months]
    opened, closed = (answer["report"] for answer in answers)
    assert shape(opened) == shape(closed)
    assert answers[0]["figures"] != answers[1]["figures"]
    items = {i["code"]: i for i in opened["items"]}
    assert items["new_consultations"]["value"] == 1
    assert items["new_consultations"]["per_100k"] == round(100_000 / 131_982, 1)
    assert items["new_consultations"]["guide_per_100k"] == 24  # FY2026: H29's, the latest
    assert opened["guide"] == {"year": "H29", "fiscal_year": 2017, "latest_given_used": True}
    assert items["step_up_rate"]["value"] is None and items["step_up_rate"]["note"]
    closures = {s["code"]: s["rows"] for s in closed["breakdowns"]}["closure_reason"]
    assert {r["code"]: r["value"] for r in closures} == {
        reason: int(reason == "goals_achieved") for reason in reference().closure_reasons
    }


def test_the_range_answers_each_month_as_the_month_does(
    two_months: tuple[TestClient, list[str]], auth: Auth
) -> None:
    client, (first, last) = two_months
    answer = client.get("/views/statistics", params={"from": first, "to": last}, headers=auth())
    assert answer.status_code == 200, answer.text
    ranged = answer.json()["months"]
    assert [m["month"] for m in ranged][0 :: len(ranged) - 1] == [first, last]
    for month in (ranged[0], ranged[-1]):
        alone = client.get(f"/views/statistics/{month['month']}", headers=auth()).json()
        assert month == alone
    backwards = client.get("/views/statistics", params={"from": last, "to": first}, headers=auth())
    assert backwards.status_code == 422
    assert backwards.json()["problems"][0]["field"] == "to"
    too_long = {"from": "2020-01", "to": "2022-01"}
    assert client.get("/views/statistics", params=too_long, headers=auth()).status_code == 422
    shuno = auth("zama-shuno")
    assert client.get("/views/statistics", params=too_long, headers=shuno).status_code == 403


def test_the_csv_has_one_header_every_month_in_japanese_in_either_encoding(
    two_months: tuple[TestClient, list[str]], auth: Auth
) -> None:
    client, months = two_months
    headers, rows = set(), []
    for month in months:
        utf8 = client.get(f"/views/statistics/{month}/export.csv", headers=auth())
        cp932 = client.get(
            f"/views/statistics/{month}/export.csv", params={"encoding": "cp932"}, headers=auth()
        )
        assert utf8.headers["content-type"] == "text/csv; charset=utf-8"
        assert cp932.headers["content-type"] == "text/csv; charset=shift_jis"
        assert utf8.content.startswith(codecs.BOM_UTF8)
        text = utf8.content.decode("utf-8-sig")
        assert cp932.content.decode("cp932") == text
        disposition = utf8.headers["content-disposition"]
        assert disposition.startswith(f'attachment; filename="shien-jokyo-chosa_142182_{month}')
        name = quote(f"支援状況調査_142182_{month}.csv")
        assert disposition.endswith(f"filename*=UTF-8''{name}")
        [header, row] = list(csv.reader(io.StringIO(text)))
        headers.add(tuple(header))
        rows.append(row)
        assert [code for code in every_code() if code in text] == []
    assert len(headers) == 1 and rows[0] != rows[1]
    bad = client.get(f"/views/statistics/{months[0]}/export.csv?encoding=latin-1", headers=auth())
    assert bad.status_code == 422


def test_the_workbook_has_the_csvs_header_and_the_same_readers(
    two_months: tuple[TestClient, list[str]], auth: Auth
) -> None:
    client, months = two_months
    path = f"/views/statistics/{months[0]}/export"
    answer = client.get(f"{path}.xlsx", headers=auth())
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].endswith(
        quote(f"支援状況調査_142182_{months[0]}.xlsx")
    )
    sheet = load_workbook(io.BytesIO(answer.content))["支援状況調査"]
    header = [cell.value for cell in next(sheet.iter_rows())]
    text = client.get(f"{path}.csv", headers=auth()).content.decode("utf-8-sig")
    assert header == next(csv.reader(io.StringIO(text)))
    for suffix in (".xlsx", ".csv"):
        assert client.get(path + suffix, headers=auth("zama-shuno")).status_code == 403
    # The tax desk's privacy officer oversees its own agency only (reference data): not the
    # municipality's figures; the municipality's privacy officer reads them.
    own_agency = auth("zama-shuno", "privacy_officer")
    assert client.get(f"{path}.xlsx", headers=own_agency).status_code == 403
    privacy = auth("zama-jiritsu", "privacy_officer")
    assert client.get(f"{path}.xlsx", headers=privacy).status_code == 200
