"""Retention's dates and its feed: when a person's records are due, counted on the
municipality's calendar, from meeting's case events and intake's extensions and erasures."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.envelope import CloudEvent
from contracts.events import (
    CaseClosed,
    CaseOpened,
    CaseReopened,
    IntegrationEvent,
    PersonErased,
    RetentionExtended,
)
from contracts.reference import Municipality, _retention, reference
from services.feeds.store import ViewStore
from services.intake.retention import (
    TABLES,
    Extension,
    Retention,
    RetentionBook,
    add_years,
    municipal_date,
    project_retention,
)
from services.platform.sql import connect

pytestmark = pytest.mark.unit

ZAMA, EBINA = "142182", "142158"
# 2021-04-01 00:30 in Japan: still 31 March in UTC.
CLOSED = datetime(2021, 3, 31, 15, 30, tzinfo=UTC)


def test_a_year_later_is_the_same_date_and_29_february_ends_on_the_28th() -> None:
    assert add_years(date(2021, 4, 1), 5) == date(2026, 4, 1)
    assert add_years(date(2020, 2, 29), 5) == date(2025, 2, 28)
    assert add_years(date(2020, 2, 29), 4) == date(2024, 2, 29)
    assert add_years(date(2026, 4, 1), -5) == date(2021, 4, 1)


def test_each_municipality_keeps_records_its_years_five_by_default() -> None:
    assert {c: m.retention_years for c, m in reference().municipalities.items()} == {
        ZAMA: 5,
        EBINA: 10,
    }
    found = {ZAMA: Municipality(ZAMA, "座間市", None), EBINA: Municipality(EBINA, "海老名市", 1)}
    _retention({"default_years": 7, "years": {EBINA: 3}}, found)
    assert (found[ZAMA].retention_years, found[EBINA].retention_years) == (7, 3)
    for wrong in ({"years": {"999999": 5}}, {"years": {ZAMA: 0}}, {"default_years": True}):
        with pytest.raises(ValueError, match="retention"):
            _retention(wrong, dict(found))


def test_the_retention_ends_years_after_the_closure_date_or_on_a_later_extension() -> None:
    person = uuid4()
    closed = Retention(person, ZAMA, municipal_date(CLOSED), None)
    assert closed.closed_on == date(2021, 4, 1)
    assert (closed.retained_until, closed.erasure_on) == (date(2026, 4, 1), date(2026, 4, 2))
    ebina = replace(closed, municipality=EBINA)
    assert ebina.retained_until == date(2031, 4, 1)
    extension = Extension(date(2027, 1, 31), "sealed:v1:x", CLOSED, "zama-jiritsu")
    extended = replace(closed, extension=extension)
    assert (extended.retained_until, extended.erasure_on) == (date(2027, 1, 31), date(2027, 2, 1))
    assert replace(closed, closed_on=None, extension=extension).erasure_on is None


class Feed:
    """Intake's retention feed on SQLite, fed one event at a time."""

    def __init__(self, directory: Path) -> None:
        self.store = ViewStore(connect(None, "intake", directory / "feed.sqlite3"), TABLES)
        self.book = RetentionBook(self.store)

    def apply(self, data: IntegrationEvent, municipality: str = ZAMA) -> None:
        person: Any = getattr(data, "person_id")  # noqa: B009
        event = CloudEvent(
            id=str(uuid4()),
            source="/test",
            type=data.cloudevent_type(),
            time=datetime.now(UTC),
            municipality=municipality,
            partitionkey=str(person),
            eventversion=data.version,
            data=data.model_dump(mode="json"),
        )
        self.store.apply(event.id, event.type, lambda s: project_retention(s, event, data))

    def due(self, by: date, municipality: str = ZAMA) -> list[UUID]:
        return [r.person_id for r in self.book.due(municipality, by)]


def actor(at: datetime) -> dict[str, Any]:
    return {"agency": "zama-jiritsu", "staff_id": "s1", "at": at}


def case_events(person: UUID, case: UUID) -> tuple[CaseOpened, CaseClosed, CaseReopened]:
    return (
        CaseOpened(
            **actor(datetime(2020, 4, 1, tzinfo=UTC)),
            case_id=case,
            person_id=person,
            consultation_id=uuid4(),
        ),
        CaseClosed(**actor(CLOSED), case_id=case, person_id=person, reason="goals_achieved"),
        CaseReopened(
            **actor(datetime(2022, 6, 1, tzinfo=UTC)), case_id=case, person_id=person, reason="r"
        ),
    )


@pytest.fixture
def feed(tmp_path: Path) -> Feed:
    return Feed(tmp_path)


def test_a_person_is_due_from_the_day_after_the_retention_ends_on_the_municipal_calendar(
    feed: Feed,
) -> None:
    person, case = uuid4(), uuid4()
    opened, closed, _ = case_events(person, case)
    feed.apply(opened)
    assert feed.due(date(2099, 1, 1)) == []
    feed.apply(closed)
    assert feed.due(date(2026, 4, 1)) == []
    assert feed.due(date(2026, 4, 2)) == [person]
    [due] = feed.book.due(ZAMA, date(2026, 4, 2))
    assert (due.closed_on, due.erasure_on) == (date(2021, 4, 1), date(2026, 4, 2))
    # Another municipality's list never shows it.
    assert feed.due(date(2099, 1, 1), EBINA) == []


def test_a_reopened_case_is_open_until_closed_again(feed: Feed) -> None:
    person, case = uuid4(), uuid4()
    opened, closed, reopened = case_events(person, case)
    for event in (opened, closed, reopened):
        feed.apply(event)
    assert feed.due(date(2099, 1, 1)) == []
    assert feed.book.of(person, ZAMA).erasure_on is None
    again = datetime(2023, 9, 30, 20, tzinfo=UTC)  # 1 October in Japan
    feed.apply(replace_at(closed, again))
    assert feed.due(date(2028, 10, 1)) == []
    assert feed.due(date(2028, 10, 2)) == [person]


def replace_at(event: CaseClosed, at: datetime) -> CaseClosed:
    return event.model_copy(update={"at": at})


def test_an_extension_moves_the_erasure_and_an_erased_person_is_never_due_again(
    feed: Feed,
) -> None:
    person, case = uuid4(), uuid4()
    opened, closed, _ = case_events(person, case)
    feed.apply(opened)
    feed.apply(closed)
    feed.apply(
        RetentionExtended(
            **actor(datetime(2026, 3, 1, tzinfo=UTC)),
            person_id=person,
            until=date(2027, 3, 31),
            reason="sealed:v1:abc",
        )
    )
    assert feed.due(date(2027, 3, 31)) == []
    [due] = feed.book.due(ZAMA, date(2027, 4, 1))
    assert due.extension == Extension(
        date(2027, 3, 31), "sealed:v1:abc", datetime(2026, 3, 1, tzinfo=UTC), "zama-jiritsu"
    )
    feed.apply(
        PersonErased(
            **actor(datetime(2027, 4, 1, tzinfo=UTC)), person_id=person, reason="retention"
        )
    )
    assert feed.due(date(2099, 1, 1)) == []
