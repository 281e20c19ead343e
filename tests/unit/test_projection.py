from __future__ import annotations

import gc

import pytest

from contracts.envelope import CloudEvent
from contracts.events import ConsultationOpened, IntegrationEvent, parse
from services.platform.bus import InProcessBus, Message
from services.platform.collector import paused
from services.platform.sql import SqliteDatabase
from services.projection.changes import Change, Upsert
from services.projection.projectors import consultations
from services.projection.runner import ORIGIN_HEADER, REASON_HEADER, Outcome, ProjectionRunner
from services.projection.store import CONSULTATION_VIEW, ViewStore
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


@pytest.fixture
def runner_and_dead_letters() -> tuple[ProjectionRunner, ViewStore, list[Message]]:
    bus = InProcessBus()
    dead: list[Message] = []
    bus.subscribe("dlq", dead.append)
    store = ViewStore(SqliteDatabase(":memory:"), CONSULTATION_VIEW)
    return ProjectionRunner(store, [consultations], bus, "dlq"), store, dead


def test_a_redelivered_event_changes_the_view_once(
    runner_and_dead_letters: tuple[ProjectionRunner, ViewStore, list[Message]],
) -> None:
    runner, store, _ = runner_and_dead_letters
    message = Message("t.intake.events", "k", opened_event().to_bytes())
    assert runner.consume(message).outcome is Outcome.APPLIED
    assert runner.consume(message).outcome is Outcome.DUPLICATE
    assert store.count("consultation_view") == 1
    assert store.count("processed_event") == 1


def test_a_malformed_message_is_dead_lettered_with_its_reason_and_the_next_one_applies(
    runner_and_dead_letters: tuple[ProjectionRunner, ViewStore, list[Message]],
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
    assert store.consultations("zama-jiritsu")[0]["consultation_id"] == str(
        ConsultationOpened.model_validate(good.data).consultation_id
    )


def test_unknown_event_version_is_dead_lettered(
    runner_and_dead_letters: tuple[ProjectionRunner, ViewStore, list[Message]],
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
    runner = ProjectionRunner(store, [watching], InProcessBus(), "dlq")
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
