from __future__ import annotations

import gc
from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

import pytest

from contracts.envelope import CloudEvent
from contracts.events import (
    ApplicationReceived,
    ConsultationAttached,
    ConsultationOpened,
    ConsultationTriaged,
    IntegrationEvent,
    parse,
)
from services.feeds.changes import Change, Projector, Upsert
from services.feeds.runner import ORIGIN_HEADER, REASON_HEADER, FeedRunner, Outcome
from services.feeds.store import ViewStore
from services.platform.bus import InProcessBus, Message
from services.platform.collector import paused
from services.platform.pagination import Page
from services.platform.sql import SqliteDatabase
from services.projection import feed as projection_feed
from services.projection import queries
from services.projection.projectors import CONSULTATION_VIEW, consultations
from tests.unit.test_contracts import opened_event

pytestmark = pytest.mark.unit


class NoState:
    def get(self, table: str, key: dict[str, object]) -> None:
        return None


def test_projector_files_the_consultation_under_the_opening_agency() -> None:
    event = opened_event()
    [change] = consultations(NoState(), event, parse(event))
    assert isinstance(change, Upsert)
    assert change.table == "consultation_view"
    assert change.key["agency"] == "zama-jiritsu"
    assert change.values["route_in"] == "self"
    assert change.values["event_id"] == event.id


def consultation_feed(
    projector: Projector = consultations,
) -> tuple[FeedRunner, ViewStore, list[Message]]:
    """A runner of ``projector`` on the consultation view in memory, and its dead letters."""
    bus = InProcessBus()
    dead: list[Message] = []
    bus.subscribe("dlq", dead.append)
    store = ViewStore(SqliteDatabase(":memory:"), CONSULTATION_VIEW)
    return FeedRunner(store, [projector], bus, "dlq"), store, dead


@pytest.fixture
def runner_and_dead_letters() -> tuple[FeedRunner, ViewStore, list[Message]]:
    return consultation_feed()


def test_a_redelivered_event_changes_the_view_once(
    runner_and_dead_letters: tuple[FeedRunner, ViewStore, list[Message]],
) -> None:
    runner, store, _ = runner_and_dead_letters
    message = Message("t.intake.events", "k", opened_event().to_bytes())
    assert runner.consume(message).outcome is Outcome.APPLIED
    assert runner.consume(message).outcome is Outcome.DUPLICATE
    assert store.count("consultation_view") == 1
    assert store.count("processed_event") == 1


def test_a_malformed_message_is_dead_lettered_with_its_reason_and_the_next_one_applies(
    runner_and_dead_letters: tuple[FeedRunner, ViewStore, list[Message]],
) -> None:
    runner, store, dead = runner_and_dead_letters
    result = runner.consume(Message("t.intake.events", "k", b"{broken"))
    assert result.outcome is Outcome.DEAD_LETTERED
    [letter] = dead
    assert letter.value == b"{broken"
    assert "not a CloudEvent" in (letter.header(REASON_HEADER) or "")
    assert letter.header(ORIGIN_HEADER) == "t.intake.events"
    good = opened_event()
    assert (
        runner.consume(Message("t.intake.events", "k", good.to_bytes())).outcome is Outcome.APPLIED
    )
    with store.database.transaction() as tx:
        [row] = queries.consultations(tx, "zama-jiritsu", Page())
    assert row["consultation_id"] == str(
        ConsultationOpened.model_validate(good.data).consultation_id
    )


def test_unknown_event_version_is_dead_lettered(
    runner_and_dead_letters: tuple[FeedRunner, ViewStore, list[Message]],
) -> None:
    runner, store, dead = runner_and_dead_letters
    runner.consume(Message("t", "k", opened_event(eventversion=7).to_bytes()))
    assert "version 7" in (dead[0].header(REASON_HEADER) or "")
    assert store.count("consultation_view") == 0


def test_the_collector_stands_aside_while_a_batch_is_applied_and_resumes_after() -> None:
    seen: list[bool] = []

    def watching(state: object, event: CloudEvent, data: IntegrationEvent) -> list[Change]:
        seen.append(gc.isenabled())
        return []

    store = ViewStore(SqliteDatabase(":memory:"), CONSULTATION_VIEW)
    runner = FeedRunner(store, [watching], InProcessBus(), "dlq")
    assert gc.isenabled()
    runner.consume_batch([Message("t", "k", opened_event().to_bytes())])
    assert seen == [False]
    assert gc.isenabled()


def test_a_paused_collector_is_left_as_it_was_found() -> None:
    gc.disable()
    try:
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), paused():
        raise RuntimeError("the block failed")
    assert gc.isenabled()


def later_event(opened: CloudEvent, data: IntegrationEvent, version: int) -> CloudEvent:
    """An event of the same consultation after ``opened``, as intake's relay would key it."""
    person = getattr(data, "person_id", None)
    return opened.model_copy(
        update={
            "id": f"{opened.id}-{version}",
            "type": data.cloudevent_type(),
            "partitionkey": str(person) if person else opened.partitionkey,
            "data": data.model_dump(mode="json"),
        }
    )


def consultation_row(events: list[CloudEvent]) -> dict[str, Any]:
    store = ViewStore(SqliteDatabase(":memory:"), CONSULTATION_VIEW)
    runner = FeedRunner(store, [consultations], InProcessBus(), "dlq")
    for event in events:
        assert runner.consume(Message("t", "k", event.to_bytes())).outcome is Outcome.APPLIED
    with store.database.transaction() as tx:
        rows: list[dict[str, Any]] = tx.fetchall("SELECT * FROM consultation_view")
    [row] = rows
    return row


def lifecycle() -> tuple[CloudEvent, list[CloudEvent]]:
    """An anonymous consultation, then triaged elsewhere, attached, and applied for."""
    opened = opened_event()
    data = ConsultationOpened.model_validate(opened.data)
    person = uuid4()
    common: dict[str, Any] = {
        "consultation_id": data.consultation_id,
        "agency": "zama-jiritsu",
        "staff_id": "s1",
    }
    later: list[IntegrationEvent] = [
        ConsultationTriaged(
            **common,
            at=datetime(2025, 8, 3, 1, tzinfo=UTC),
            outcome="connect_elsewhere",
            target_agency="zama-seikatsushien",
            follow_up_on=date(2025, 8, 10),
        ),
        ConsultationAttached(
            **common,
            at=datetime(2025, 8, 4, tzinfo=UTC),
            person_id=person,
            consultation_opened_at=data.at,
        ),
        ApplicationReceived(**common, at=datetime(2025, 8, 5, tzinfo=UTC), person_id=person),
    ]
    return opened, [later_event(opened, d, n) for n, d in enumerate(later, start=2)]


def test_the_consultation_line_gains_its_triage_person_and_application() -> None:
    opened, later = lifecycle()
    row = consultation_row([opened, *later])
    assert row["triage_outcome"] == "connect_elsewhere"
    assert row["triage_target_agency"] == "zama-seikatsushien"
    assert row["follow_up_on"] == "2025-08-10"
    assert row["person_id"] == later[-1].data["person_id"]
    assert row["application_at"] == "2025-08-05T00:00:00.000000+00:00"
    assert row["route_in"] == "self"


def test_events_keyed_by_the_person_may_arrive_before_the_opening() -> None:
    opened, later = lifecycle()
    # Attach and application go on the person's partition, ahead of the opening's.
    row = consultation_row([later[1], later[2], opened, later[0]])
    assert row["person_id"] == later[-1].data["person_id"]
    assert row["opened_at"] == "2025-08-03T00:00:00.000000+00:00"
    assert row["application_at"] is not None and row["triage_outcome"] == "connect_elsewhere"


def test_an_earlier_triage_arriving_late_does_not_undo_a_later_one() -> None:
    opened, [triaged, *_] = lifecycle()
    data = ConsultationTriaged.model_validate(triaged.data)
    again = data.model_copy(
        update={"at": datetime(2025, 8, 6, tzinfo=UTC), "outcome": "continue_here"}
    )
    row = consultation_row([opened, later_event(opened, again, 9), triaged])
    assert row["triage_outcome"] == "continue_here"


@pytest.mark.parametrize("reads_lines_up_front", [True, False])
def test_a_batch_reads_the_lines_of_all_its_consultations_in_one_query(
    reads_lines_up_front: bool,
) -> None:
    """Each consultation event sets some columns over its line, which is read first: the views
    feed names the consultations (``feed.reads``), so a batch reads them together, not one
    query per consultation (a catch-up of 30,000 events made 3,000 such round trips)."""
    database = SqliteDatabase(":memory:")
    store = ViewStore(database, CONSULTATION_VIEW)
    runner = FeedRunner(
        store,
        [consultations],
        InProcessBus(),
        "dlq",
        projection_feed.reads if reads_lines_up_front else (lambda _: {}),
    )
    events = [event for opened, later in (lifecycle() for _ in range(12)) for event in later]
    selects: list[str] = []
    database._connection.set_trace_callback(selects.append)
    runner.consume_batch([Message("t", "k", event.to_bytes()) for event in events])
    read = [
        s for s in selects if s.lstrip().upper().startswith("SELECT") and "consultation_view" in s
    ]
    assert len(read) == (1 if reads_lines_up_front else 12)
    with database.transaction() as tx:
        lines = tx.fetchall("SELECT application_at, triage_outcome FROM consultation_view")
    assert len(lines) == 12
    assert all(line["application_at"] and line["triage_outcome"] for line in lines)
