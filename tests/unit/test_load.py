"""The load generator: Zama's mix, events as the relays would publish them, lifecycles in order."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from bench.load import (
    ASSESSED_PERSONS,
    NEW_PER_YEAR,
    ROUTE_SHARES,
    Generated,
    Lifecycle,
    LoadProfile,
    Relaying,
    draw_issues,
    event_stream,
    lifecycles,
    municipality_codes,
    render_events,
    stories,
    story,
    tally,
)
from contracts.envelope import CloudEvent, event_id
from contracts.events import CATALOGUE, IntegrationEvent, latest_versions, parse
from contracts.reference import reference
from services.feeds.changes import Upsert
from services.intake import integration as intake
from services.meeting import integration as meeting
from services.platform.keys import KeyStore
from services.platform.publishing import Published
from services.platform.relay import message
from services.platform.sealed_events import Sealing, sealed_fields
from services.platform.sealing import Opener, Sealer, is_sealed, subject_of
from services.platform.settings import Settings
from services.platform.sql import SqliteDatabase
from services.projection import statistics
from services.referral import integration as referral
from services.scenarios import INTAKE_STEPS, STEP_HANDLERS, step_time
from services.wiring import key_store

pytestmark = pytest.mark.unit

REF = reference()
PROFILE = LoadProfile(seed=11, municipalities=5)


@pytest.fixture(scope="module")
def population() -> list[Lifecycle]:
    return list(lifecycles(PROFILE, 20_000))


@pytest.fixture(scope="module")
def stream() -> list[Generated]:
    return list(event_stream(PROFILE, 3_000))


def test_first_assessments_find_zamas_3_88_issues_in_zamas_mix() -> None:
    rng = random.Random(1)
    persons = [draw_issues(rng) for _ in range(20_000)]
    assert all(issues for issues in persons)
    assert sum(map(len, persons)) / len(persons) == pytest.approx(446 / 115, abs=0.04)
    found = Counter(issue for issues in persons for issue in issues)
    assert set(found) == set(REF.issue_categories)
    for category in REF.raw["issue_categories"]:
        if "zama_h30" in category:
            share = found[category["code"]] / len(persons)
            assert share == pytest.approx(category["zama_h30"] / ASSESSED_PERSONS, abs=0.02)


def test_lifecycles_carry_zamas_figures(population: list[Lifecycle]) -> None:
    counted = Counter[str]()
    for figures in tally((life, timedelta(0)) for life in population).values():
        counted.update(figures)
    assert counted["new_consultations"] == len(population)
    assessments = counted["first_assessments"]
    assert assessments / len(population) == pytest.approx(ASSESSED_PERSONS / NEW_PER_YEAR, abs=0.01)
    assert counted["first_assessment_issues"] / assessments == pytest.approx(446 / 115, abs=0.08)
    latest = max(REF.raw["zama_yearly"], key=lambda year: year["year"])
    to_public_assistance = latest["to_public_assistance"] / latest["new_consultations"]
    assert counted["to_public_assistance"] / len(population) == pytest.approx(
        to_public_assistance, abs=0.01
    )


def test_routes_in_follow_the_reference_and_zamas_public_assistance_share(
    population: list[Lifecycle],
) -> None:
    assert set(ROUTE_SHARES) == set(REF.routes_in)
    assert sum(ROUTE_SHARES.values()) == pytest.approx(1)
    latest = max(REF.raw["zama_yearly"], key=lambda year: year["year"])
    outside = latest["from_outside_public_assistance"] / latest["new_consultations"]
    assert ROUTE_SHARES["public_assistance_desk"] == pytest.approx(1 - outside)
    opened = [s.args for life in population for s in life.steps if s.kind == "open"]
    routes = Counter(args["route_in"] for args in opened)
    for route, share in ROUTE_SHARES.items():
        assert routes[route] / len(opened) == pytest.approx(share, abs=0.01), route
    assert {args["channel"] for args in opened} == set(REF.channels)
    assert {args["caller"] for args in opened} == set(REF.caller_kinds)


def test_every_event_is_exactly_what_a_relay_would_publish(stream: list[Generated]) -> None:
    for generated in stream:
        event = CloudEvent.from_bytes(generated.value)
        data = parse(event)
        # The bytes a relay makes from this data, in this envelope: the very same bytes.
        relayed = event.model_copy(update={"data": data.model_dump(mode="json")}).to_bytes()
        assert relayed == generated.value
        assert data.service == generated.service
        assert event.id == generated.event_id
        assert event.partitionkey == generated.key == (event.personid or event.subject)
        assert event.personid == generated.person == _person_of(data)


def test_event_ids_are_unique_and_follow_each_aggregates_versions(
    stream: list[Generated],
) -> None:
    assert len({g.event_id for g in stream}) == len(stream)
    versions: dict[str, int] = defaultdict(int)
    for generated in stream:
        subject = str(CloudEvent.from_bytes(generated.value).subject)
        # A plan discussed at a meeting takes a version of the case and is not published.
        later = (v for v in range(versions[subject] + 1, versions[subject] + 3))
        version = next(v for v in later if event_id(subject, v) == generated.event_id)
        # Every aggregate's first event is published: it is its first version.
        assert versions[subject] or version == 1, generated.name
        versions[subject] = version


def test_the_stream_holds_every_kind_of_event_the_services_publish(
    stream: list[Generated],
) -> None:
    # The command services' events: the views' (ViewPurged) and the audit's (RecordViewed) are
    # no step of a lifecycle.
    published = {c.name for c in CATALOGUE.values() if c.service not in ("projection", "audit")}
    assert {g.name for g in stream} == published


def test_each_persons_events_keep_their_lifecycle_order(stream: list[Generated]) -> None:
    by_person: dict[str, list[Generated]] = defaultdict(list)
    for generated in stream:
        if generated.person is not None:
            by_person[generated.person].append(generated)
    for events in by_person.values():
        ats = [_data(g).at for g in events]  # type: ignore[attr-defined]
        assert ats == sorted(ats)
        names = [g.name for g in events]
        _before(names, "PersonRegistered", "ConsultationAttached", "ApplicationReceived")
        _before(names, "ApplicationReceived", "CaseOpened", "AssessmentRecorded", "PlanDrafted")
        _before(names, "PlanDrafted", "MeetingHeld", "PlanApproved", "MonitoringRecorded")
        _before(names, "PlanApproved", "PlanEvaluated", "CaseClosed", "FollowUpRecorded")
        _before(names, "ConsentRecorded", "ConsentWithdrawn")
    # Whole lifecycles merged by time: each one's events in the order it was rendered.
    with Relaying.of(None) as relaying:
        lives = lifecycles(PROFILE, 3_000)
        rendered = [render_events(life, PROFILE.seed, relaying) for life in lives]
    assert sorted(g.event_id for g in stream) == sorted(
        g.event_id for events in rendered for g in events
    )
    position = {g.event_id: n for n, g in enumerate(stream)}
    for events in rendered:
        places = [position[g.event_id] for g in events]
        assert places == sorted(places)


def test_a_referral_loop_is_never_left_open_after_a_decline(stream: list[Generated]) -> None:
    closing = ("ReferralDeclineFollowedUp", "ReferralRerouted")
    moves: dict[str, list[str]] = defaultdict(list)
    for generated in stream:
        referral = getattr(_data(generated), "referral_id", None)
        if referral is not None:
            moves[str(referral)].append(generated.name)
    declined = [names for names in moves.values() if "ReferralDeclined" in names]
    assert declined
    for names in declined:
        after = names[names.index("ReferralDeclined") + 1 :]
        assert after and after[0] in closing, names


def test_the_streams_statistics_are_the_generators_tally() -> None:
    """The projection's counting functions, run over the stream, find the generator's tally."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    declined: dict[str, dict[str, Any]] = {}
    for generated in event_stream(PROFILE, 3_000):
        event = CloudEvent.from_bytes(generated.value)
        for change in statistics.count(None, event, parse(event)):  # type: ignore[arg-type]
            assert isinstance(change, Upsert)
            if change.table == "stat_count":
                rows[(change.key["counted"], change.key["metric"])] = change.values
            else:
                declined.setdefault(change.key["referral_id"], {}).update(change.values)
    counted: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (_, metric), values in rows.items():
        counted[(values["municipality"], values["month"])][metric] += values["amount"]
    expected = tally((life, timedelta(0)) for life in lifecycles(PROFILE, 3_000))
    assert counted == expected
    assert declined and all(row["followed_up"] == 1 for row in declined.values())


def test_stories_use_only_the_players_verbs_and_close_every_decline() -> None:
    verbs = set(INTAKE_STEPS) | set(STEP_HANDLERS)
    played = stories(PROFILE, 500)
    used = Counter(entry["do"] for _, s in played for entry in s.steps)
    assert set(used) <= verbs
    assert {"decline", "share_in_meeting", "link_person", "approve_plan"} <= set(used)
    for life, scenario in played:
        times = [step_time(entry["at"]) for entry in scenario.steps]
        assert times == sorted(set(times))
        for entry, following in zip(scenario.steps, scenario.steps[1:], strict=False):
            if entry["do"] == "decline":
                assert following["do"] == "note_resource_gap"
        for entry in scenario.steps:
            if entry["do"] == "record_consent":
                assert step_time(f"{entry['until']}T00:00") > times[-1] + timedelta(days=30)
        assert [s.kind for s in life.steps if s.kind == "open"] == ["open"]


def test_a_lifecycle_with_stream_only_steps_makes_no_story(population: list[Lifecycle]) -> None:
    rich = next(life for life in population if any(s.kind == "move" for s in life.steps))
    with pytest.raises(ValueError, match="no story can play"):
        story(rich)


def test_the_same_seed_gives_the_same_events_with_any_number_of_workers(tmp_path: Path) -> None:
    """The same events, each sealed afresh (a nonce of its own) under the deployment's keys."""
    deployment = Settings(var_dir=tmp_path)
    keys = key_store(deployment)
    opener = Opener(keys)

    def opened(events: Iterable[Generated]) -> list[tuple[str, Any]]:
        return [(g.event_id, opener.open(json.loads(g.value))) for g in events]

    try:
        alone = opened(event_stream(PROFILE, 150, deployment))
        assert alone == opened(event_stream(PROFILE, 150, deployment))
        assert alone == opened(event_stream(PROFILE, 150, deployment, workers=2))
        assert alone != opened(event_stream(LoadProfile(seed=12), 150, deployment))
    finally:
        keys.close()


def test_municipality_codes_are_zamas_then_well_formed_others() -> None:
    codes = municipality_codes(900)
    assert codes[0] == REF.municipality_code == "142182"
    assert len(set(codes)) == 900
    for code in codes:
        weighted = sum(int(d) * w for d, w in zip(code[:5], (6, 5, 4, 3, 2), strict=True))
        assert int(code[5]) == (11 - weighted % 11) % 10
    events = event_stream(LoadProfile(seed=3, municipalities=4), 400)
    assert {CloudEvent.from_bytes(g.value).municipality for g in events} == set(codes[:4])


# Where a service derives a published field from its domain event instead of copying it: the
# domain attributes that give the value back (the others keep the field's own name).
DERIVED: dict[tuple[str, str], Callable[[Any], dict[str, Any]]] = {
    ("ReferralSent", "provisional"): lambda provisional: {
        "provisional_identity": {"family_name": "仮名"} if provisional else None
    },
    ("ReferralSent", "agency"): lambda agency: {"sender": agency},
}


def test_each_event_is_what_its_services_relay_publishes_of_the_same_domain_event() -> None:
    """Each kind of event, given back as the domain event it stands for, through the service's
    own ``Published`` declarations, ``Sealing`` and relay: the same envelope, id, key and
    headers, the same fields sealed under the same subjects, opening to the same values."""
    keys = KeyStore(SqliteDatabase(":memory:"), bytes(32))
    sealer, opener = Sealer(keys), Opener(keys)
    relaying = Relaying(sealer)
    services = {"intake": intake, "referral": referral, "meeting": meeting}
    declared: dict[str, tuple[str, Published]] = {}
    for service, integration in services.items():
        for published in integration.PUBLISHED:
            for contract in published.variants or (published.contract,):
                declared[contract.name] = (service, published)
    sealings = {s: Sealing(i.PUBLISHED, sealer) for s, i in services.items()}
    contracts = {c.name: c for c in latest_versions()}
    moves = {contract.name: move for move, contract in referral.MOVE_EVENTS.items()}
    sample: dict[str, list[Generated]] = defaultdict(list)
    for life in lifecycles(PROFILE, 3_000):
        for generated in render_events(life, PROFILE.seed, relaying):
            if len(sample[generated.name]) < 5:
                sample[generated.name].append(generated)
    # That every kind is generated is the test above's to say.
    assert len(sample) > 30 and set(sample) <= set(declared)

    for generated in (g for events in sample.values() for g in events):
        event = CloudEvent.from_bytes(generated.value)
        service, published = declared[event.name]
        data = opener.open(event.data)
        domain_event = _domain_event(published, data, event)
        if event.name in moves:
            domain_event.__dict__["move"] = moves[event.name]
        for field in sealed_fields(published.domain, published):
            domain_event.__dict__.setdefault(field.path[0], None)
        relayed = services[service].to_cloudevent(sealings[service].seal(domain_event))
        assert relayed is not None
        sent = message(service, relayed, {"traceparent": str(event.traceparent)})
        assert (sent.key, sent.headers) == (generated.key, generated.headers)
        published_event = CloudEvent.from_bytes(sent.value)
        assert published_event.model_dump(exclude={"data"}) == event.model_dump(exclude={"data"})
        assert _seals(published_event.data, opener) == _seals(event.data, opener), event.name
        assert contracts[event.name].model_validate(event.data)


def _domain_event(published: Published, data: dict[str, Any], event: CloudEvent) -> Any:
    """The domain event ``published`` would make ``event`` of: the data's fields under their
    domain names, with its aggregate, version and recording time."""
    subject = UUID(str(event.subject))
    version = next(v for v in itertools.count(1) if event_id(subject, v) == event.id)
    domain_event: Any = object.__new__(published.domain)
    state = domain_event.__dict__
    state.update(originator_id=subject, originator_version=version, timestamp=event.time)
    state["municipality"] = event.municipality
    for name, value in data.items():
        derived = DERIVED.get((event.name, name))
        source = published.source(name)
        if derived is not None:
            state.update(derived(value))
        elif source is not None:
            state[source] = value
        else:
            state[name] = value
    return domain_event


def _seals(document: Any, opener: Opener) -> Any:
    """``document`` with each sealed value shown as (its subject, what it opens to)."""
    if is_sealed(document):
        return ("sealed", subject_of(document), opener.open(document))
    if isinstance(document, dict):
        return {key: _seals(value, opener) for key, value in document.items()}
    if isinstance(document, list):
        return [_seals(value, opener) for value in document]
    return document


def _data(generated: Generated) -> IntegrationEvent:
    return parse(CloudEvent.from_bytes(generated.value))


def _person_of(data: IntegrationEvent) -> str | None:
    person = getattr(data, "person_id", None)
    return str(person) if person is not None else None


def _before(names: Sequence[str], *order: str) -> None:
    """Where the names occur, their first occurrences come in ``order``."""
    firsts = [names.index(name) for name in order if name in names]
    assert firsts == sorted(firsts), (order, names)
