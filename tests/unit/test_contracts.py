from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
import yaml

from contracts import export
from contracts.envelope import CloudEvent, EnvelopeError, event_id
from contracts.events import ConsultationOpened, InvalidEventData, UnknownEvent, parse
from contracts.reference import TSUNAGU_KEYS
from contracts.topics import Topics

pytestmark = pytest.mark.unit

SHARED = Path(__file__).resolve().parents[3] / "shared"


def opened_event(**overrides: object) -> CloudEvent:
    data = ConsultationOpened(
        consultation_id=uuid4(),
        at=datetime(2025, 8, 3, tzinfo=UTC),
        agency="zama-jiritsu",
        staff_id="s1",
        channel="phone",
        route_in="self",
        caller_kind="anonymous",
    )
    fields: dict[str, object] = dict(
        id=event_id(data.consultation_id, 1),
        source="/tsunagu/intake",
        type=data.cloudevent_type(),
        time=datetime.now(UTC),
        municipality="142182",
        partitionkey=str(data.consultation_id),
        eventversion=1,
        data=data.model_dump(mode="json"),
    )
    fields.update(overrides)
    return CloudEvent.model_validate(fields)


def test_envelope_round_trips_through_bytes_with_extensions() -> None:
    event = opened_event(traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    again = CloudEvent.from_bytes(event.to_bytes())
    assert again == event
    assert isinstance(parse(again), ConsultationOpened)
    assert again.name == "ConsultationOpened"


def test_event_ids_are_a_function_of_the_stored_event() -> None:
    origin = uuid4()
    assert event_id(origin, 1) == event_id(origin, 1)
    assert event_id(origin, 1) != event_id(origin, 2)


@pytest.mark.parametrize("raw", [b"not json", b"{}", b'{"specversion": "0.3"}', "名".encode()])
def test_unreadable_bytes_are_envelope_errors(raw: bytes) -> None:
    with pytest.raises(EnvelopeError):
        CloudEvent.from_bytes(raw)


def test_unknown_type_or_version_and_bad_data_are_refused() -> None:
    with pytest.raises(UnknownEvent):
        parse(opened_event(eventversion=99))
    with pytest.raises(UnknownEvent):
        parse(opened_event(type="jp.tsunagu.SomethingElse"))
    with pytest.raises(InvalidEventData, match="channel"):
        parse(opened_event(data={"consultation_id": str(uuid4())}))


def test_municipality_must_be_a_local_government_code() -> None:
    with pytest.raises(ValueError, match="municipality"):
        opened_event(municipality="Zama")


def test_topic_names() -> None:
    topics = Topics("tsunagu")
    assert topics.events("intake") == "tsunagu.intake.events"
    assert topics.dead_letter == "tsunagu.deadletter"
    assert topics.audit_checkpoints == "tsunagu.audit.checkpoints"
    with pytest.raises(ValueError, match="unknown service"):
        topics.events("billing")


def test_exported_schemas_and_asyncapi_are_current() -> None:
    """Run `make contracts` after changing an event model, and commit the result."""
    for relative, content in export.render().items():
        path = Path(export.__file__).parent / relative
        assert path.exists(), f"contracts/{relative} is missing; run make contracts"
        assert path.read_text(encoding="utf-8") == content, f"contracts/{relative} is stale"


def test_a_published_event_version_never_changes() -> None:
    """Change a model's fields and this fails: publish a new version and upcast instead."""
    rendered = export.render()
    locked = json.loads((Path(export.__file__).parent / export.LOCK).read_text())
    assert locked, "contracts/schemas.lock.json lists no published schema"
    for relative, fingerprint in locked.items():
        assert relative in rendered, f"{relative} was published and must still be exported"
        assert export.fingerprint(rendered[relative]) == fingerprint, f"{relative} changed"


def test_old_versions_are_upcast_to_the_newest_shape() -> None:
    from contracts.events import PlanEvaluated, PlanEvaluatedV1

    v1 = PlanEvaluatedV1(
        agency="zama-jiritsu",
        staff_id="s1",
        at=datetime(2025, 10, 1, tzinfo=UTC),
        case_id=uuid4(),
        person_id=uuid4(),
        plan_version=1,
        outcome="replan",
    )
    event = opened_event(
        type=PlanEvaluatedV1.cloudevent_type(), eventversion=1, data=v1.model_dump(mode="json")
    )
    data = parse(event)
    assert isinstance(data, PlanEvaluated) and data.version == 2
    assert (data.outcome, data.work_outcomes) == ("replan", [])


def test_asyncapi_names_every_event_on_its_topic() -> None:
    document = yaml.safe_load((Path(export.__file__).parent / "asyncapi.yaml").read_text())
    assert document["asyncapi"].startswith("3.")
    assert document["channels"]["intake"]["address"] == "tsunagu.intake.events"
    assert "ConsultationOpened.v1" in document["channels"]["intake"]["messages"]


@pytest.mark.skipif(not SHARED.exists(), reason="shared/ is not beside this checkout")
def test_reference_and_scenarios_are_the_shared_ones() -> None:
    ours = yaml.safe_load((Path(export.__file__).parent / "reference.yaml").read_text())
    theirs = yaml.safe_load((SHARED / "domain" / "reference.yaml").read_text())
    # Ours is shared's plus exactly these keys, which Tsunagu adds (contracts/reference.py).
    added = {"caller_kinds", "neighbours", "oversight_roles", "retention"}
    assert set(TSUNAGU_KEYS) == added
    assert set(ours) - set(theirs) == added
    assert {key: value for key, value in ours.items() if key not in added} == theirs
    scenario_dir = Path(export.__file__).parents[1] / "services" / "scenarios"
    for shared_scenario in (SHARED / "scenarios").glob("*.yaml"):
        assert (scenario_dir / shared_scenario.name).read_text() == shared_scenario.read_text()
