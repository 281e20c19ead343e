"""The shared page cursor and the municipality's times, without a server."""

from __future__ import annotations

import pytest

from contracts.errors import Invalid
from services.platform.pagination import Page, after_cursor, decode_cursor, encode_cursor
from services.platform.times import municipal, municipal_times

pytestmark = pytest.mark.unit


def test_a_cursor_round_trips_and_a_page_starts_after_it() -> None:
    rows = [("2025-01-0" + str(day), f"id{day}") for day in range(1, 6)]
    first = after_cursor(rows, lambda row: row, Page(limit=2))
    assert first == rows[:3]  # one more than shown: there is a next page
    cursor = decode_cursor(encode_cursor(first[1]))
    assert after_cursor(rows, lambda row: row, Page(2, cursor)) == rows[2:5]
    with pytest.raises(Invalid):
        after_cursor(rows, lambda row: row, Page(2, ("only one",)))


@pytest.mark.parametrize("cursor", ["%%%", "bnVsbA", "WzFd", "W10"])  # junk, null, [1], []
def test_a_cursor_no_list_gave_is_refused(cursor: str) -> None:
    with pytest.raises(Invalid) as refused:
        decode_cursor(cursor)
    assert refused.value.detail["problems"][0]["field"] == "cursor"


@pytest.mark.parametrize("number", [str(2**63), "9" * 5000])
def test_a_position_cursor_past_the_stores_largest_number_is_refused(number: str) -> None:
    with pytest.raises(Invalid) as refused:
        Page(2, (number,)).after_number()
    assert refused.value.detail["problems"][0]["field"] == "cursor"
    assert Page(2, (str(2**63 - 1),)).after_number() == 2**63 - 1


def test_instants_read_back_at_the_municipalitys_offset_and_dates_stay_dates() -> None:
    assert municipal("2027-12-30T15:00:00.000000+00:00") == "2027-12-31T00:00:00+09:00"
    assert municipal_times(
        {
            "at": "2027-12-31T00:00+09:00",
            "on": "2027-12-31",
            "services": [{"from": "2025-06-01"}],
            "note": "2027-12-31T00:00 と書いた",
            "n": 3,
        }
    ) == {
        "at": "2027-12-31T00:00:00+09:00",
        "on": "2027-12-31",
        "services": [{"from": "2025-06-01"}],
        "note": "2027-12-31T00:00 と書いた",
        "n": 3,
    }
