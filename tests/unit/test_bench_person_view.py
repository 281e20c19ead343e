"""B7's population and reads, tiny and on SQLite: who is read, and that its agency is shown
some persons and withheld from others. How fast is for ``bench.run`` to say."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench import b7_person_view
from bench.b7_person_view import AGENCY, Readable, Reads, population
from bench.common import SECRET
from bench.load import Generated
from bench.run import selected
from services.platform.settings import Settings
from services.wiring import projection_app

pytestmark = pytest.mark.unit


def event(name: str, person: str | None) -> Generated:
    return Generated("intake", person or "-", b"{}", f"{name}-{person}", name, person, 0.0)


def test_the_persons_read_are_those_registered_less_duplicates_still_merged() -> None:
    readable = Readable()
    stream = [
        event("PersonRegistered", "a"),
        event("ConsultationOpened", None),
        event("PersonRegistered", "b"),
        event("ConsultationAttached", "c"),
        event("PersonRegistered", "d"),
        event("PersonsMerged", "b"),
        event("PersonsMerged", "d"),
        event("PersonsUnmerged", "d"),
    ]

    passed = list(readable.passing(stream))

    assert passed == stream
    # "c" is named by an event but was never registered: the views know no such person.
    assert readable.persons == ["a", "d"]


def test_a_tiny_population_is_read_whole_and_its_agency_sees_some_on_several_bases(
    tmp_path: Path,
) -> None:
    settings = Settings(var_dir=tmp_path, jwt_secret=SECRET)

    persons, events = population(settings, 150)

    assert events > len(persons) > 0
    with TestClient(projection_app(settings)) as client:
        read = Reads(client)
        for person in persons:
            read(person)  # answers 200, or fails here
        bases = [read.bases(person) for person in persons]
    shown = [kinds for kinds in bases if kinds]
    assert 0 < len(shown) < len(persons), f"{AGENCY} was shown {len(shown)} of {len(persons)}"
    # Not only its own records: the lifecycles arrive recently enough for consents to be in
    # force when read.
    assert {"own_record", "consent"} <= frozenset().union(*shown)


def test_bench_run_knows_b7() -> None:
    [(name, measure)] = selected("b7")

    assert (name, measure) == ("B7", b7_person_view.run)
