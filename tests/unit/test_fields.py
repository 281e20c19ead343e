"""The shared request field types (contracts/fields.py), without a server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from contracts.fields import (
    MAX_ITEMS,
    MAX_POSITION,
    Code,
    Day,
    Flag,
    Items,
    Line,
    Moment,
    Name,
    Note,
    Number,
    Position,
    Year,
)

pytestmark = pytest.mark.unit


def rule(kind: Any, value: object) -> str:
    """The rule a refused value broke (its pydantic error type)."""
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(kind).validate_python(value)
    [error] = refused.value.errors()
    return str(error["type"])


def accepted(kind: Any, value: object) -> object:
    return TypeAdapter(kind).validate_python(value)


def test_paragraphs_keep_tab_and_line_breaks_but_not_other_controls() -> None:
    assert accepted(Note, "一行目\n\t二行目\r\n") == "一行目\n\t二行目\r\n"
    for control in ("\x00", "\x08", "\x0b", "\x1b", "\x7f", "\x85"):
        assert rule(Note, f"a{control}b") == "control_character"


def test_one_line_text_and_codes_refuse_line_breaks() -> None:
    for kind in (Line, Code):
        for brk in ("\n", "\r", "\t", "\u2028"):
            assert rule(kind, f"a{brk}b") == "control_character"


def test_names_keep_any_script_but_no_text_direction_controls() -> None:
    assert accepted(Name, "髙﨑 𠮷 Ünïcødé 🌸 ﾔﾏﾀﾞ") == "髙﨑 𠮷 Ünïcødé 🌸 ﾔﾏﾀﾞ"
    for bidi in ("\u202a", "\u202e", "\u2066", "\u2069", "\u200e", "\u200f", "\u061c"):
        assert rule(Name, f"仮名{bidi}") == "control_character"
    assert accepted(Note, "注記\u202e") == "注記\u202e"  # a note is not a name


def test_the_message_points_at_the_character_not_the_text() -> None:
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(Note).validate_python("x" * 10_000 + "\x00")
    assert refused.value.errors()[0]["msg"].endswith("(U+0000 at character 10001)")


def test_every_string_and_list_has_a_maximum() -> None:
    assert rule(Code, "a" * 41) == "string_too_long"
    assert rule(Name, "名" * 201) == "string_too_long"
    assert rule(Note, "x" * 20_001) == "string_too_long"
    assert rule(Items, ["x" * 2001]) == "string_too_long"
    assert rule(Items, ["x"] * (MAX_ITEMS + 1)) == "too_long"


def test_a_business_time_is_a_string_between_1900_and_ten_years_ahead() -> None:
    assert accepted(Moment, "1900-01-01T00:00:00+09:00") == datetime.fromisoformat(
        "1900-01-01T00:00:00+09:00"
    )
    assert accepted(Moment, datetime(2025, 4, 1, tzinfo=UTC)) == datetime(2025, 4, 1, tzinfo=UTC)
    nine_years = (datetime.now(UTC) + timedelta(days=9 * 365)).isoformat()
    assert accepted(Moment, nine_years)
    for value in (
        "1899-12-31T23:59:59+09:00",
        "0001-01-01T00:00:00+09:00",
        "9999-12-31T23:59:59-12:00",
        (datetime.now(UTC) + timedelta(days=3660)).isoformat(),
    ):
        assert rule(Moment, value) == "time_range"
    for number in (1e11, 100_000_000_000, 0, True):
        assert rule(Moment, number) == "datetime_type"


def test_a_calendar_date_is_a_string_in_the_same_range() -> None:
    assert accepted(Day, "1900-01-01") == date(1900, 1, 1)
    for value in ("1899-12-31", "0001-01-01", "9999-12-31"):
        assert rule(Day, value) == "time_range"
    assert rule(Day, 20250401) == "date_type"


def test_booleans_and_numbers_are_strict() -> None:
    assert rule(Flag, 1) == "bool_type"
    assert rule(Flag, "true") == "bool_type"
    assert accepted(Number, 72) == 72
    assert rule(Number, True) == "float_type"
    assert rule(Number, "72") == "float_type"
    assert rule(Number, float("nan")) == "finite_number"
    assert rule(Year, "1980") == "int_type"
    assert rule(Year, 1899) == "greater_than_equal"


def test_a_path_position_stops_at_the_stores_largest_number() -> None:
    assert accepted(Position, str(MAX_POSITION)) == MAX_POSITION
    assert rule(Position, str(MAX_POSITION + 1)) == "less_than_equal"
