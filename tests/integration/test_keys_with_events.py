"""A new subject's data key is stored in the transaction of the event that creates the subject
(#20, B1): no transaction of its own, an event never without its key nor a key without its
event, and a key some other process stored first is the one used."""

from __future__ import annotations

import base64
import copy
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from contracts.errors import Conflict
from services.intake.application import IntakeApplication
from services.intake.consultation import Consultation
from services.platform import keys as keys_module
from services.platform.eventstore import eventstore_env
from services.platform.keys import MISSING, KeyRotated, KeyStore, WrongKeyEncryptionKey
from services.platform.sealing import Opener
from services.platform.settings import Settings
from services.platform.sql import Transaction
from services.wiring import intake_application, key_store
from tests.unit.test_sealing import AT, unsaved_consultation

pytestmark = pytest.mark.integration

COMPLAINT = "家賃を三か月滞納している"


@pytest.fixture
def keys(distributed_settings: Settings) -> Iterator[KeyStore]:
    store = key_store(distributed_settings)
    yield store
    store.close()


@pytest.fixture
def elsewhere(distributed_settings: Settings) -> Iterator[KeyStore]:
    """The same key store as another process reaches it: a store of its own, same tables."""
    store = key_store(distributed_settings)
    yield store
    store.close()


@pytest.fixture
def intake(distributed_settings: Settings, keys: KeyStore) -> Iterator[IntakeApplication]:
    application = intake_application(distributed_settings, keys)
    yield application
    application.close()


def consultation() -> Consultation:
    return unsaved_consultation(COMPLAINT)


def complaint_of(intake: IntakeApplication, opened: Consultation) -> object:
    stored = intake.fetch(Consultation, opened.id, "consultation").main_complaint
    assert stored != COMPLAINT
    return stored


def test_a_new_subjects_key_takes_no_transaction_of_its_own_and_is_read_elsewhere_at_once(
    intake: IntakeApplication, elsewhere: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[object] = []
    put = keys_module._KeyMaker.put

    def counted_put(maker: keys_module._KeyMaker, each: keys_module._Asked) -> None:
        asked.append(each)
        put(maker, each)

    monkeypatch.setattr(keys_module._KeyMaker, "put", counted_put)
    opened = consultation()

    intake.save(opened)

    assert asked == []
    assert Opener(elsewhere).open(complaint_of(intake, opened)) == COMPLAINT


def test_an_event_that_is_not_stored_leaves_no_key_behind(
    distributed_settings: Settings, intake: IntakeApplication, elsewhere: KeyStore
) -> None:
    opened = consultation()
    # Another writer stored this consultation's first event (unsealed) first.
    other = IntakeApplication(eventstore_env(distributed_settings, "intake"))
    try:
        other.save(copy.deepcopy(opened))
    finally:
        other.close()

    with pytest.raises(IntegrityError):
        intake.save(opened)

    assert elsewhere.opening_keys([opened.id]) == {opened.id: MISSING}


def test_a_key_stored_first_by_another_process_is_the_one_both_use(
    intake: IntakeApplication, elsewhere: KeyStore
) -> None:
    """Each consultation's subject is given a key by another process while intake saves its
    first event with a key of its own (the first, before): one key is stored, and it opens
    intake's event."""
    openings = [consultation() for _ in range(20)]
    theirs: dict[UUID, object] = {openings[0].id: elsewhere.sealing_key(openings[0].id, AT)}
    failures: list[BaseException] = []

    def give_keys() -> None:
        try:
            for each in openings[1:]:
                theirs[each.id] = elsewhere.sealing_key(each.id, AT)
        except BaseException as error:
            failures.append(error)

    giver = threading.Thread(target=give_keys)
    giver.start()
    for each in openings:
        intake.save(each)
    giver.join(timeout=60)

    assert failures == []
    stored = elsewhere.opening_keys([each.id for each in openings])
    assert {each.id: stored[each.id] for each in openings} == theirs
    for each in openings:
        assert Opener(elsewhere).open(complaint_of(intake, each)) == COMPLAINT


def test_a_subject_erased_before_its_first_event_is_stored_is_refused(
    intake: IntakeApplication, keys: KeyStore
) -> None:
    person, opened = uuid4(), consultation()
    keys.link(opened.id, person)
    keys.erase([person], "subject_request", AT)

    with pytest.raises(Conflict):
        intake.save(opened)

    assert intake.find(Consultation, opened.id) is None


def test_a_rotation_rewraps_the_keys_stored_with_events_and_only_the_new_key_opens_them(
    distributed_settings: Settings, intake: IntakeApplication, elsewhere: KeyStore
) -> None:
    openings = [consultation() for _ in range(3)]
    intake.save(*openings)
    new = os.urandom(32)

    rotated = elsewhere.rotate(new)

    assert rotated.data_keys >= len(openings) and rotated.unopened == 0
    with pytest.raises(WrongKeyEncryptionKey):
        key_store(distributed_settings).close()
    under_new = replace(distributed_settings, key_encryption_key=base64.b64encode(new).decode())
    keys = key_store(under_new)
    try:
        assert [Opener(keys).open(complaint_of(intake, o)) for o in openings] == [COMPLAINT] * 3
    finally:
        keys.close()


def _waiting_on_a_turn(database_url: str) -> bool:
    """Whether some session of the database waits for an advisory lock (a turn)."""
    with psycopg.connect(database_url) as connection:
        found = connection.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
        ).fetchone()
    return found is not None and found[0] > 0


def _run_while_held(
    distributed_settings: Settings,
    holder: KeyStore,
    hold: Callable[[Transaction], None],
    work: Callable[[], object],
) -> list[BaseException]:
    """``work`` in a thread while ``holder``'s transaction, having done ``hold``, stays open
    until ``work`` either waits for a turn or is done; then the transaction commits. What
    ``work`` raised."""
    assert distributed_settings.database_url
    raised: list[BaseException] = []

    def attempt() -> None:
        try:
            work()
        except BaseException as error:
            raised.append(error)

    worker = threading.Thread(target=attempt)
    with holder.database.transaction() as tx:
        hold(tx)
        worker.start()
        while worker.is_alive() and not _waiting_on_a_turn(distributed_settings.database_url):
            time.sleep(0.05)
    worker.join(timeout=60)
    assert not worker.is_alive()
    return raised


def test_a_record_tied_to_the_person_while_they_are_erased_is_erased_with_them(
    distributed_settings: Settings, keys: KeyStore, elsewhere: KeyStore
) -> None:
    person, record = uuid4(), uuid4()
    keys.sealing_key(person, AT)
    keys.sealing_key(record, AT)

    def link_not_yet_committed(tx: Transaction) -> None:
        # What ``KeyStore.link`` does in another process, caught before its commit.
        tx.take_turn(keys_module._subject_turn(person))
        tx.execute(
            "INSERT INTO subject_link (subject, about) VALUES (?, ?)", (str(record), str(person))
        )

    raised = _run_while_held(
        distributed_settings,
        elsewhere,
        link_not_yet_committed,
        lambda: keys.erase([person], "subject_request", AT),
    )

    assert raised == []
    assert keys.unerased([person, record]) == []


def test_a_record_tied_to_the_person_while_they_are_being_erased_is_refused(
    distributed_settings: Settings, keys: KeyStore, elsewhere: KeyStore
) -> None:
    person, record = uuid4(), uuid4()
    keys.sealing_key(person, AT)

    def erasure_not_yet_committed(tx: Transaction) -> None:
        # What ``KeyStore.erase`` does in another process, caught before its commit.
        tx.take_turn(keys_module._subject_turn(person))
        tx.execute(
            "UPDATE data_key SET wrapped = NULL, erased_at = ?, reason = ? WHERE subject = ?",
            (AT.isoformat(), "subject_request", str(person)),
        )

    raised = _run_while_held(
        distributed_settings,
        elsewhere,
        erasure_not_yet_committed,
        lambda: keys.link(record, person),
    )

    assert [type(error) for error in raised] == [Conflict]


def test_a_process_still_on_the_old_key_stores_and_opens_no_key_after_a_rotation(
    intake: IntakeApplication, keys: KeyStore, elsewhere: KeyStore
) -> None:
    before, after = consultation(), consultation()
    intake.save(before)

    elsewhere.rotate(os.urandom(32))

    # Its keys would be wrapped under a key no process has any more: lost at its next restart.
    with pytest.raises(WrongKeyEncryptionKey, match="rotated"):
        intake.save(after)  # the new subject's key stored with the events
    with pytest.raises(WrongKeyEncryptionKey, match="rotated"):
        keys.sealing_key(uuid4(), AT)  # a key stored in a transaction of its own
    # And what it cannot open is not shown as erased.
    with pytest.raises(WrongKeyEncryptionKey, match="rotated"):
        keys.opening_keys([before.id])
    assert intake.find(Consultation, after.id) is None


@pytest.mark.parametrize("store", ["with the events", "on its own"])
def test_a_key_made_while_a_rotation_commits_is_refused(
    distributed_settings: Settings,
    intake: IntakeApplication,
    keys: KeyStore,
    elsewhere: KeyStore,
    store: str,
) -> None:
    def rotation_not_yet_committed(tx: Transaction) -> None:
        # What ``KeyStore.rotate`` does in another process, caught before its commit.
        tx.take_turn(keys_module.KEY_CHECK_TURN)
        tx.execute("UPDATE key_check SET wrapped = 'rewrapped' WHERE id = 1")

    opened = consultation()
    work: Callable[[], object] = (
        (lambda: intake.save(opened))
        if store == "with the events"
        else (lambda: keys.sealing_key(uuid4(), AT))
    )
    raised = _run_while_held(distributed_settings, elsewhere, rotation_not_yet_committed, work)

    assert [type(error) for error in raised] == [KeyRotated]
