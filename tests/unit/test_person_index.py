"""The person index (blind tokens) and intake's index aggregates: a person is found by any
spelling of their name, their birth date or an agency's local id, while no store holds a folded
name, a birth date or a local id in clear; a person whose key is gone gets no tokens."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import pytest

from contracts.envelope import CloudEvent, event_id
from contracts.errors import Invalid
from contracts.events import PersonErased, PersonRegistered
from contracts.identity import Staff
from contracts.names import fold
from services.feeds.runner import FeedRunner, Outcome
from services.feeds.store import ViewStore
from services.intake.application import IntakeApplication, RegisterPerson
from services.intake.integration import PUBLISHED, to_cloudevent
from services.platform.blind_index import BlindIndex
from services.platform.bus import InProcessBus, Message
from services.platform.indexes import LocalIdIndex
from services.platform.keys import KeyStore
from services.platform.pagination import Page
from services.platform.sealed_events import Sealing
from services.platform.sealing import Sealer, seal_with
from services.platform.sql import Row, SqliteDatabase
from services.projection import feed, person_search, queries
from services.projection.person_search import Candidate, Criteria, PersonIndex, full_key
from tests.sealed_scan import file_places, in_clear

pytestmark = pytest.mark.unit

OFFICE = Staff("s001", "zama-jiritsu", frozenset({"caseworker"}), "142182")
ZAMA = OFFICE.municipality
AT = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
# Recognisable: no other test value, reference code or timestamp spells any of them.
FAMILY, GIVEN, FAMILY_KANA, GIVEN_KANA = "髙嶋", "瑠璃子", "タカシマ", "ルリコ"
BORN, LOCAL_ID = date(1953, 7, 19), "ZJ-58213"
SECRETS = {
    "name": f"{FAMILY}{GIVEN}",
    "kana": f"{FAMILY_KANA}{GIVEN_KANA}",
    "birth date": BORN.isoformat(),
    "local id": LOCAL_ID,
}


class Platform:
    """Intake sealing what it stores, and the views' feed fed from its published events, each
    in an SQLite file under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.keys = KeyStore(SqliteDatabase(directory / "keys.sqlite3"), os.urandom(32))
        self.blind = BlindIndex(os.urandom(32))
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(directory / "intake-events.sqlite3"),
        }
        self.intake = IntakeApplication(env, Sealing(PUBLISHED, Sealer(self.keys)), self.blind)
        self.index = PersonIndex(self.keys, self.blind)
        self.views = ViewStore(
            SqliteDatabase(directory / "projection-feed.sqlite3"), feed.TABLES, journal=True
        )
        self.dead: list[Message] = []
        bus = InProcessBus()
        bus.subscribe("dlq", self.dead.append)
        self.runner = FeedRunner(self.views, feed.projectors(self.index), bus, "dlq")
        self.relayed = 0

    def relay(self) -> None:
        stored = self.intake.recorder.select_notifications(start=self.relayed + 1, limit=1000)
        for notification in stored:
            self.relayed = notification.id
            event = to_cloudevent(self.intake.mapper.to_domain_event(notification))
            if event is not None:
                self.feed(event)

    def feed(self, event: CloudEvent) -> Outcome:
        message = Message("t.intake.events", event.partitionkey or "", event.to_bytes())
        return self.runner.consume(message).outcome

    def register(self, **fields: Any) -> UUID:
        person = self.intake.register_person(OFFICE, RegisterPerson(sex="unknown", **fields))
        self.relay()
        return person

    def search(
        self,
        name: str | None = None,
        page: Page | None = None,
        *,
        birth_date: date | None = None,
        local_id: str | None = None,
    ) -> list[str]:
        criteria = Criteria(fold(name) if name is not None else None, birth_date, local_id)
        with self.views.database.transaction() as tx:
            rows = person_search.search(
                tx, self.index, OFFICE.agency, ZAMA, criteria, page or Page(200), datetime.now(UTC)
            )
        return [row["person_id"] for row in rows]

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[Row]:
        with self.views.database.transaction() as tx:
            found: list[Row] = tx.fetchall(sql, params)
        return found

    def close(self) -> None:
        self.intake.close()
        self.views.database.close()
        self.keys.close()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    made = Platform(tmp_path)
    yield made
    made.close()


def recognisable(platform: Platform) -> UUID:
    return platform.register(
        family_name=FAMILY,
        given_name=GIVEN,
        family_name_kana=FAMILY_KANA,
        given_name_kana=GIVEN_KANA,
        birth_date=BORN,
        local_id=LOCAL_ID,
    )


def test_a_person_is_found_by_any_spelling_while_no_store_holds_their_keys_in_clear(
    platform: Platform,
) -> None:
    person = str(recognisable(platform))
    for query in ("ﾀｶｼﾏ ﾙﾘｺ", "たかしま", "高嶋", "髙嶋瑠璃", "た"):
        assert platform.search(query) == [person], query
    assert platform.search(birth_date=BORN) == [person]
    assert platform.search(local_id=LOCAL_ID) == [person]
    assert platform.search("たかしま", birth_date=date(1953, 7, 20)) == []
    assert platform.search(local_id="ZJ-5821") == []  # a local id is matched whole
    with platform.views.database.transaction() as tx:
        assert person_search.by_local_id(tx, platform.index, OFFICE.agency, LOCAL_ID) == person
        assert person_search.by_local_id(tx, platform.index, "zama-shuno", LOCAL_ID) is None
        candidate = Candidate(None, full_key("たかしま", "るりこ"), BORN)
        found = person_search.candidates(tx, platform.index, ZAMA, candidate, Page())
    assert [row["person_id"] for row in found] == [person]
    # Intake's own lookups: its local id index, and the likely duplicates of a second record.
    assert platform.intake.find_by_local_id(OFFICE, OFFICE.agency, LOCAL_ID)[0] == UUID(person)
    second = platform.register(
        family_name_kana="ﾀｶｼﾏ", given_name_kana="ﾙﾘｺ", family_name="高嶋", birth_date=BORN
    )
    assert platform.intake.duplicates(OFFICE, second).candidates == [UUID(person)]

    assert in_clear(file_places(platform.directory), SECRETS) == {}


def test_intake_files_a_local_id_under_its_token_not_under_the_local_id(
    platform: Platform,
) -> None:
    person = recognisable(platform)
    # Where it was filed before the blind index: an id made of the local id itself.
    old = uuid5(uuid5(NAMESPACE_URL, "urn:tsunagu:intake:index"), f"local:zama-jiritsu:{LOCAL_ID}")
    assert platform.intake.find(LocalIdIndex, old) is None
    token = platform.blind.token("local_id", OFFICE.agency, LOCAL_ID)
    index = platform.intake.find(LocalIdIndex, LocalIdIndex.create_id(token))
    assert index is not None and index.person_id == person and index.key == token
    other = BlindIndex(os.urandom(32)).token("local_id", OFFICE.agency, LOCAL_ID)
    assert platform.intake.find(LocalIdIndex, LocalIdIndex.create_id(other)) is None


def registered(keys: KeyStore, person: UUID, **fields: str) -> CloudEvent:
    """PersonRegistered as intake publishes it: each personal value sealed under the person's
    key in ``keys``."""
    key = keys.sealing_key(person, AT)
    assert isinstance(key, bytes)
    data = PersonRegistered(
        person_id=person,
        at=AT,
        agency=OFFICE.agency,
        staff_id=OFFICE.staff_id,
        sex=seal_with(key, person, "unknown"),
        **{name: seal_with(key, person, value) for name, value in fields.items()},
    )
    return envelope(data, person)


def envelope(data: PersonRegistered | PersonErased, person: UUID, version: int = 1) -> CloudEvent:
    return CloudEvent.model_validate(
        {
            "id": event_id(person, version),
            "source": "/tsunagu/intake",
            "type": data.cloudevent_type(),
            "time": AT,
            "municipality": ZAMA,
            "partitionkey": str(person),
            "eventversion": data.version,
            "data": data.model_dump(mode="json"),
        }
    )


def index_rows(platform: Platform, person: UUID) -> dict[str, list[Row]]:
    found = {
        table: platform.rows(f"SELECT * FROM {table} WHERE person_id = ?", (str(person),))
        for table in ("person_index", "person_prefix", "person_local_id")
    }
    return found


def test_a_person_whose_key_is_erased_or_missing_gets_no_tokens_and_fails_nothing(
    platform: Platform,
) -> None:
    erased, missing = uuid4(), uuid4()
    event = registered(platform.keys, erased, family_name=FAMILY, birth_date=BORN.isoformat())
    platform.keys.erase([erased], "subject_request", AT)
    elsewhere = KeyStore(SqliteDatabase(":memory:"), os.urandom(32))
    unknown = registered(elsewhere, missing, family_name=FAMILY, birth_date=BORN.isoformat())
    for person, message in ((erased, event), (missing, unknown)):
        assert platform.feed(message) is Outcome.APPLIED
        rows = index_rows(platform, person)
        [row] = rows["person_index"]
        assert row["municipality"] == ZAMA
        assert [row[c] for c in row if c not in ("person_id", "municipality")] == [None] * 5
        assert rows["person_prefix"] == []
        with platform.views.database.transaction() as tx:
            # Still a person of this municipality: their page says 消去済み, not 404.
            assert queries.municipality_of(tx, str(person)) == ZAMA
    assert platform.dead == []
    assert platform.search("たかしま") == platform.search(birth_date=BORN) == []


def test_a_batch_reads_the_keys_of_all_it_registers_at_once_and_indexes_each_as_alone(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up registers a person every ninth event: one key look-up per batch, not one
    per registration, and the same tokens as one event at a time (an erased key: none)."""
    persons = [uuid4() for _ in range(5)]
    events = [
        registered(platform.keys, person, family_name=f"{FAMILY}{n}", given_name=GIVEN)
        for n, person in enumerate(persons)
    ]
    platform.keys.erase([persons[0]], "subject_request", AT)
    asked: list[set[UUID]] = []
    opening_keys = platform.keys.opening_keys

    def counted(subjects: Any) -> Any:
        asked.append(set(subjects))
        return opening_keys(subjects)

    monkeypatch.setattr(platform.keys, "opening_keys", counted)
    batch = [
        Message("t.intake.events", str(p), e.to_bytes())
        for p, e in zip(persons, events, strict=True)
    ]
    results = platform.runner.consume_batch(batch)

    assert {r.outcome for r in results} == {Outcome.APPLIED}
    assert asked == [set(persons)]
    assert platform.search(f"{FAMILY}0") == []
    for n, person in enumerate(persons[1:], start=1):
        assert platform.search(f"{FAMILY}{n}{GIVEN}") == [str(person)]


def test_an_erasure_drops_every_token_of_the_person(platform: Platform) -> None:
    person = recognisable(platform)
    kept = platform.register(family_name="髙嶋", given_name="一郎")
    assert len(platform.search("高嶋")) == 2
    platform.intake.erase_person(OFFICE, person, "subject_request", AT)
    platform.relay()
    rows = index_rows(platform, person)
    assert rows["person_prefix"] == rows["person_local_id"] == []
    assert rows["person_index"][0]["sort_key"] is None
    assert platform.search("高嶋") == [str(kept)]
    assert platform.search(local_id=LOCAL_ID) == []
    assert platform.dead == []


def test_results_come_in_kana_order_and_each_page_starts_after_the_last_person_shown(
    platform: Platform,
) -> None:
    people = {
        kana: platform.register(family_name="高", given_name=given, family_name_kana=kana)
        for kana, given in (("タカミ", "一"), ("タカギ", "二"), ("タカハシ", "三"))
    }
    no_kana = platform.register(family_name="高野", given_name="四")
    whole = platform.search("高")
    # No kana sorts first; then 五十音順 of the kana.
    assert whole == [
        str(p) for p in (no_kana, people["タカギ"], people["タカハシ"], people["タカミ"])
    ]
    first = platform.search("高", Page(2))
    assert first == whole[:3]  # one more than asked: there is a next page
    # Someone registered between two pages who sorts before the cursor is not shown twice
    # nor shifts the page; one who sorts after it is on the next page.
    before = platform.register(family_name="高", given_name="五", family_name_kana="タカアシ")
    after = platform.register(family_name="高", given_name="六", family_name_kana="タカヤ")
    rest = platform.search("高", Page(200, (whole[1],)))
    assert rest == [*whole[2:], str(after)]
    assert str(before) not in rest


def test_a_query_longer_than_the_prefix_tokens_is_matched_on_the_whole_key(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(person_search, "MAX_PREFIX", 3)
    hanako = platform.register(family_name_kana="タカハシ", given_name_kana="ハナコ")
    platform.register(family_name_kana="タカハシ", given_name_kana="マサコ")
    assert len(platform.search("たかは")) == 2
    assert platform.search("たかはしは") == [str(hanako)]


def test_a_search_matching_more_than_can_be_ordered_asks_for_more_of_the_name(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(person_search, "MAX_MATCHES", 2)
    for given in ("一", "二", "三"):
        platform.register(family_name="高", given_name=given)
    with pytest.raises(Invalid) as refused:
        platform.search("高")
    [problem] = refused.value.detail["problems"]
    assert (problem["field"], problem["rule"]) == ("q", "too_many_matches")
    assert len(platform.search("高一")) == 1


def test_a_cursor_naming_a_person_erased_since_is_refused(platform: Platform) -> None:
    first = platform.register(family_name="高", given_name="一")
    platform.register(family_name="高", given_name="二")
    platform.intake.erase_person(OFFICE, first, "subject_request", AT)
    platform.relay()
    with pytest.raises(Invalid) as refused:
        platform.search("高", Page(1, (str(first),)))
    assert refused.value.detail["problems"][0]["field"] == "cursor"
