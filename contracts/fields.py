"""The bounded field types every request model of every service is built from.

What the stores cannot hold (a NUL byte in PostgreSQL text, a lone surrogate in UTF-8, a
position past a BIGINT, a time in year 1 or 9999) and what people should not type (a control
character in a name, a right-to-left override that makes a name read as another, a goal of
100,000 characters) is refused at the edge as a 422 naming the field, before any service sees
it.

Every string and every list has a maximum. Free text may hold tab and line breaks only where it
is written as paragraphs (notes, reasons, shared information, goals). Business times and dates
come as strings (a JSON number is not taken for a time) between 1900 and ten years ahead.
Booleans and numbers are strict: ``true`` is not an hour and ``"3"`` is not a number.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

MAX_ITEMS = 100
"""Entries in any list (goals, categories, members…) and keys in any map."""

MAX_POSITION = 2**63 - 1
"""The largest whole number both stores hold (PostgreSQL BIGINT, SQLite INTEGER)."""

EARLIEST = date(1900, 1, 1)
FUTURE = timedelta(days=3653)
"""How far ahead a business time may lie: a consent's or a membership's end, a plan's period."""

_CONTROLS_BUT_C0 = "\x7f-\x9f"
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_NOT_IN_A_LINE = re.compile(f"[\x00-\x1f{_CONTROLS_BUT_C0}\u2028\u2029]")
_NOT_IN_TEXT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_CONTROLS_BUT_C0}]")  # tab, LF, CR pass
_NOT_IN_A_NAME = re.compile(f"[\x00-\x1f{_CONTROLS_BUT_C0}\u2028\u2029{_BIDI}]")


def _refusing(pattern: re.Pattern[str], rule: str, what: str) -> AfterValidator:
    def check(value: str) -> str:
        found = pattern.search(value)
        if found is not None:
            raise PydanticCustomError(
                rule,
                "{what} (U+{code} at character {at})",
                {"what": what, "code": f"{ord(found.group()):04X}", "at": found.start() + 1},
            )
        return value

    return AfterValidator(check)


_ONE_LINE = _refusing(_NOT_IN_A_LINE, "control_character", "must be one line of text")
_TEXT = _refusing(_NOT_IN_TEXT, "control_character", "must not hold control characters")
_NAME = _refusing(
    _NOT_IN_A_NAME, "control_character", "must not hold control or text-direction characters"
)

Code = Annotated[str, StringConstraints(max_length=40), _ONE_LINE]
"""A code from the reference data or a route (an agency, a channel, a category, an outcome)."""

Name = Annotated[str, StringConstraints(max_length=200), _NAME]
"""A person's name or kana, a witness, a representative: no text-direction overrides."""

Line = Annotated[str, StringConstraints(max_length=500), _ONE_LINE]
"""A short text on one line: an address, a phone number, an agency's own id, a role."""

Reason = Annotated[str, StringConstraints(max_length=2000), _TEXT]
"""A few sentences: why, what came of it, one goal or strength or conclusion."""

Note = Annotated[str, StringConstraints(max_length=20000), _TEXT]
"""A caseworker's notes, what was shared at a meeting."""

T = TypeVar("T")
ListOf = Annotated[list[T], Field(max_length=MAX_ITEMS)]
Codes = ListOf[Code]
Items = ListOf[Reason]
MapOf = Annotated[dict[Code, T], Field(max_length=MAX_ITEMS)]


def _given_as_text(kind: type[date]) -> BeforeValidator:
    """A JSON number is not a time (1e11 would be a day in 1973): only a string, or the value
    itself from Python."""

    def check(value: Any) -> Any:
        if isinstance(value, str | kind):
            return value
        raise PydanticCustomError(
            f"{kind.__name__}_type",
            "give it as a string, e.g. {example}",
            {"example": "2025-04-01T09:00:00+09:00" if kind is datetime else "2025-04-01"},
        )

    return BeforeValidator(check)


def _out_of_range(latest: date) -> PydanticCustomError:
    return PydanticCustomError(
        "time_range",
        "must lie between {earliest} and {latest}",
        {"earliest": EARLIEST.isoformat(), "latest": latest.isoformat()},
    )


def _moment_in_range(value: datetime) -> datetime:
    latest = datetime.now(UTC) + FUTURE
    # The earliest by the date as written: 1900-01-01T00:00+09:00 is in, though 1899 in UTC.
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if value.date() < EARLIEST or aware > latest:
        raise _out_of_range(latest.date())
    return value


def _day_in_range(value: date) -> date:
    latest = datetime.now(UTC).date() + FUTURE
    if not EARLIEST <= value <= latest:
        raise _out_of_range(latest)
    return value


Moment = Annotated[datetime, _given_as_text(datetime), AfterValidator(_moment_in_range)]
"""A business time: when a step happened, or until when something holds."""

Day = Annotated[date, _given_as_text(date), AfterValidator(_day_in_range)]
"""A calendar date: a birth date, a plan's period, a follow-up deadline."""

Flag = Annotated[bool, Strict()]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Year = Annotated[int, Strict(), Field(ge=EARLIEST.year, le=2100)]

Position = Annotated[int, Field(ge=0, le=MAX_POSITION)]
"""A whole number in a path (an audit position): out of range names nothing, so 404."""


class RequestModel(BaseModel):
    """A request body: a field the model does not know is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")
