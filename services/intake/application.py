"""The intake application: consultations, persons and the consent ledger, on `eventsourcing`.

Each command checks who may do it, validates against the reference data, and saves the changed
aggregates (and their index aggregates) in one atomic write. Every person, consultation and
consent belongs to the municipality that recorded it: to staff of any other it does not exist.
What intake shows of a person is decided field group by field group (``person_disclosure``).

Erasure (消去) destroys the data keys of a person, of the duplicates merged into them and of
every record linked to them (``services.platform.keys``), and records PersonErased: whatever
was sealed under those keys, in any store or topic, then opens to 消去済み with when and why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder
from pydantic import Field
from pydantic_core import to_jsonable_python

from contracts import disclosure
from contracts.errors import Conflict, Forbidden, Invalid, NotFound
from contracts.fields import (
    Code,
    Codes,
    Day,
    Line,
    Moment,
    Name,
    Note,
    Reason,
    RequestModel,
    Year,
)
from contracts.identity import Staff
from contracts.reference import reference
from services.intake.consent import Consent, check_terms
from services.intake.consultation import Consultation, check_codes
from services.intake.person import SEXES, Person, duplicate_key
from services.intake.retention import Extension, Retention, RetentionBook, municipal_date
from services.platform.blind_index import BlindIndex
from services.platform.calendar import DateAsISO, past_or_now
from services.platform.disclose import Disclosure, Part, bases_map, decide_parts, withheld_list
from services.platform.eventstore import TracingApplication
from services.platform.indexes import LocalIdIndex, consents_key, duplicates_key, local_id_key
from services.platform.keys import KEY_BYTES, REQUESTED_ERASURE_REASONS, KeyStore
from services.platform.sealed_events import Sealing
from services.platform.sealing import Opener

INTAKE_ROLE = "self_reliance_office"
# Who erases when a retention period ends: the municipality's self-reliance office, as a
# process rather than a member of staff.
RETENTION_STAFF_ID = "system:retention"
A = TypeVar("A", bound=Aggregate)
IDENTITY_FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "birth_year",
    "sex",
)
CONTACT_FIELDS = ("address", "phone")


# The commands, declared once: the bodies of intake's routes and what the application takes.


class OpenConsultation(RequestModel):
    channel: Code = Field(description="How the contact came: reference.yaml `channels`.")
    route_in: Code = Field(description="相談経路: reference.yaml `routes_in`.")
    caller_kind: Code = Field(description="Who called: reference.yaml `caller_kinds`.")
    person_id: UUID | None = Field(default=None, description="A registered person, when known.")
    main_complaint: Reason | None = Field(default=None, description="主訴, if any.")
    notes: Note | None = None
    opened_at: Moment | None = Field(
        default=None, description="When the contact began; default now."
    )


class RegisterPerson(RequestModel):
    family_name: Name | None = None
    given_name: Name | None = None
    family_name_kana: Name | None = None
    given_name_kana: Name | None = None
    birth_date: Day | None = None
    birth_year: Year | None = None
    sex: Code = "unknown"
    address: Line | None = None
    phone: Line | None = Field(default=None, max_length=40)
    local_id: Line | None = Field(
        default=None, max_length=100, description="the caller agency's own id"
    )
    registered_at: Moment | None = None


class RecordConsent(RequestModel):
    person_id: UUID
    recipients: Codes
    categories: Codes
    purposes: Codes
    valid_from: Moment | None = None
    valid_until: Moment
    method: Code = "written_application_form"
    evidence_ref: Line | None = None
    witness: Name | None = None
    given_by: Code = "person"
    representative_name: Name | None = None
    representative_relationship: Line | None = Field(default=None, max_length=100)


class WithdrawConsent(RequestModel):
    recipients: Codes | None = Field(default=None, description="omit for every recipient")
    categories: Codes | None = Field(default=None, description="omit for every category")
    reason: Reason | None = None
    at: Moment | None = None


class Triage(RequestModel):
    outcome: Code = Field(description="continue_here, connect_elsewhere or information_only")
    target_agency: Code | None = None
    target_system: Line | None = Field(default=None, max_length=200, description="e.g. 生活保護")
    follow_up_on: Day | None = Field(default=None, description="required when connecting elsewhere")
    note: Note | None = None
    at: Moment | None = None


@dataclass
class DuplicateCandidates:
    person_id: UUID
    key: str | None
    candidates: list[UUID] = field(default_factory=list)


@dataclass(frozen=True)
class ErasureDone:
    """A person's erasure: the person asked for and the duplicates merged into them."""

    person_id: UUID
    persons: list[UUID]
    reason: str
    erased_at: datetime


class IntakeApplication(TracingApplication):
    name = "intake"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        sealing: Sealing | None = None,
        blind: BlindIndex | None = None,
    ) -> None:
        super().__init__(env, sealing)
        # An erasure destroys keys in the store the sealing takes them from: without sealing
        # (a relay, a unit test of the domain) nothing was sealed and nothing can be erased.
        self.keys: KeyStore | None = sealing.sealer.keys if sealing is not None else None
        # The index aggregates' keys (local ids, likely duplicates) are tokens under the
        # deployment's blind index key. Without one (a unit test of the domain, a relay, which
        # records nothing) a key of this instance's own: its tokens match only each other.
        self.blind = blind or BlindIndex(os.urandom(KEY_BYTES))

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # Consultations (相談受付・振り分け・利用申込)

    def open_consultation(self, staff: Staff, command: OpenConsultation) -> Consultation:
        agency = reference().agency(staff.agency)
        if agency is None or agency.role != INTAKE_ROLE:
            raise Forbidden(
                f"agency {staff.agency!r} does not run a consultation desk; "
                "refer the person to the self-reliance support office instead",
                allowed_agencies=list(
                    reference().agencies_with_role(INTAKE_ROLE, staff.municipality)
                ),
            )
        check_codes(command.channel, command.route_in, command.caller_kind)
        if command.person_id is not None:
            self._registered(staff, command.person_id).refuse_if_erased()
        consultation = Consultation(
            municipality=staff.municipality,
            agency=staff.agency,
            staff_id=staff.staff_id,
            opened_at=past_or_now("opened_at", command.opened_at),
            channel=command.channel,
            route_in=command.route_in,
            caller_kind=command.caller_kind,
            person_id=command.person_id,
            main_complaint=_blank_to_none(command.main_complaint),
            notes=_blank_to_none(command.notes),
        )
        self.save(consultation)
        return consultation

    def consultation(self, consultation_id: UUID) -> Consultation:
        return self.fetch(Consultation, consultation_id, "consultation")

    def own_consultation(self, staff: Staff, consultation_id: UUID) -> Consultation:
        consultation = _here(staff, self.consultation(consultation_id), "consultation")
        if consultation.agency != staff.agency:
            raise Forbidden(f"consultation {consultation_id} belongs to another agency's record")
        return consultation

    def triage(self, staff: Staff, consultation_id: UUID, command: Triage) -> None:
        consultation = self._open_to_records(staff, consultation_id)
        consultation.triage_as(
            command.outcome,
            target_agency=command.target_agency,
            target_system=command.target_system,
            follow_up_on=command.follow_up_on,
            note=_blank_to_none(command.note),
            staff_id=staff.staff_id,
            at=past_or_now("at", command.at),
        )
        self.save(consultation)

    def attach(
        self, staff: Staff, consultation_id: UUID, person_id: UUID, at: datetime | None = None
    ) -> None:
        consultation = self._open_to_records(staff, consultation_id)
        self.person_here(staff, person_id).refuse_if_erased()
        consultation.attach(person_id, staff.staff_id, past_or_now("at", at))
        self.save(consultation)

    def receive_application(
        self, staff: Staff, consultation_id: UUID, at: datetime | None = None
    ) -> None:
        consultation = self._open_to_records(staff, consultation_id)
        consultation.receive_application(staff.staff_id, past_or_now("at", at))
        self.save(consultation)

    # Persons

    def register_person(self, staff: Staff, command: RegisterPerson) -> UUID:
        if command.sex not in SEXES:
            raise Invalid("sex", "reference_code", f"unknown sex {command.sex!r}", allowed=SEXES)
        if (
            command.birth_date
            and command.birth_year
            and command.birth_date.year != command.birth_year
        ):
            raise Invalid("birth_year", "matches_birth_date", "birth year and date disagree")
        person = Person(
            municipality=staff.municipality,
            agency=staff.agency,
            staff_id=staff.staff_id,
            registered_at=past_or_now("registered_at", command.registered_at),
            family_name=command.family_name,
            given_name=command.given_name,
            family_name_kana=command.family_name_kana,
            given_name_kana=command.given_name_kana,
            birth_date=command.birth_date,
            birth_year=command.birth_year
            or (command.birth_date.year if command.birth_date else None),
            sex=command.sex,
            address=command.address,
            phone=command.phone,
        )
        changed: list[Aggregate] = [person]
        key = self._duplicates(person)
        if key is not None:
            changed.append(self.listed(key, person.id))
        if command.local_id:
            changed.append(self._link(person, staff, command.local_id))
        self._save_unique(changed)
        return person.id

    def person(self, person_id: UUID) -> Person:
        return self.fetch(Person, person_id, "person")

    def person_here(self, staff: Staff, person_id: UUID) -> Person:
        """The person, if registered in the caller's municipality; else 404."""
        return _here(staff, self.person(person_id), "person")

    def person_disclosure(
        self, staff: Staff, person_id: UUID, *, refuse_if_nothing: bool = True
    ) -> Disclosure:
        """What ``staff``'s agency may see of the person now, field group by field group:
        names, kana, birth date and sex under ``identity``, address and phone under
        ``contact``, each agency's local id under ``identity`` as that agency's own record.
        "Own record" is the registering agency's for the first two, the filing agency's for
        its local id. ``refuse_if_nothing``: 403 naming what is missing when nothing is."""
        person = self.person_here(staff, person_id)
        registered = frozenset({person.agency})
        parts = [
            Part("identity", registered, {f: getattr(person, f) for f in IDENTITY_FIELDS}),
            Part("contact", registered, {f: getattr(person, f) for f in CONTACT_FIELDS}),
            *(
                Part("identity", frozenset({agency}), {f"local_id:{agency}": local_id})
                for agency, local_id in sorted(person.local_ids.items())
            ),
        ]
        viewer = disclosure.Viewer(staff.agency, staff.staff_id)
        decided = decide_parts(
            viewer, self.person_record(person_id), parts, disclosure.PURPOSES, datetime.now(UTC)
        )
        if not decided.shown and refuse_if_nothing:
            category, reason = next(iter(decided.withheld.items()))
            raise Forbidden(reason, category=category, recipient=staff.agency)
        fields = {f: decided.fields.get(f) for f in (*IDENTITY_FIELDS, *CONTACT_FIELDS)}
        local_ids = {
            name.removeprefix("local_id:"): value
            for name, value in decided.fields.items()
            if name.startswith("local_id:")
        }
        document = {
            # Which record it is, whatever the caller may see of it.
            "id": person.id,
            "registered_by": person.agency,
            "merged_into": person.merged_into,
            # Its fields then read 消去済み: the keys they were sealed under are destroyed.
            "erased": person.erased.shown() if person.erased else None,
            **fields,
            "local_ids": local_ids,
            "bases": bases_map(decided.shown),
            "withheld": withheld_list(decided.withheld),
        }
        return Disclosure(
            to_jsonable_python(document),
            decided.shown,
            person_id=str(person_id),
            disclosed_by=decided.disclosed_by,
            withheld=decided.withheld,
        )

    def link(self, staff: Staff, person_id: UUID, local_id: str) -> None:
        person = self.person_here(staff, person_id)
        self.require(staff, person_id, "identity")
        self._save_unique([person, self._link(person, staff, local_id)])

    def find_by_local_id(
        self, staff: Staff, agency: str, local_id: str
    ) -> tuple[UUID, disclosure.Allow]:
        """The person ``agency`` filed under ``local_id``, and the basis the caller knows it
        on: its own filing key, or an identity basis for another agency's."""
        key = local_id_key(self.blind, agency, local_id)
        index = self.find(LocalIdIndex, LocalIdIndex.create_id(key))
        if index is None or not reference().in_municipality(agency, staff.municipality):
            raise NotFound(f"no person has {agency!r} local id {local_id!r}")
        self.person_here(staff, index.person_id)
        if agency == staff.agency:
            return index.person_id, disclosure.Allow("own_record", None)
        return index.person_id, self.require(staff, index.person_id, "identity")

    def duplicates(self, staff: Staff, person_id: UUID) -> DuplicateCandidates:
        self._require_intake_office(staff, "look for duplicate persons")
        person = self.person_here(staff, person_id)
        found = DuplicateCandidates(person_id, self._duplicates(person))
        if found.key is not None:
            index = self.index(found.key)
            found.candidates = [
                p
                for p in (index.ids if index else [])
                if p != person_id and self.person(p).municipality == staff.municipality
            ]
        return found

    def merge(self, staff: Staff, person_id: UUID, survivor_id: UUID, reason: str) -> None:
        self._require_intake_office(staff, "merge persons")
        duplicate = self.person_here(staff, person_id)
        survivor = self.person_here(staff, survivor_id)
        survivor.refuse_if_erased()
        if survivor.merged_into is not None:
            raise Conflict(f"person {survivor_id} is itself merged into {survivor.merged_into}")
        duplicate.merge_into(survivor_id, staff.agency, staff.staff_id, reason, datetime.now(UTC))
        # Kept so that erasing the survivor finds the duplicates merged into them.
        self.save(duplicate, self.listed(merged_key(survivor_id), person_id))

    def erase_person(
        self, staff: Staff, person_id: UUID, reason: str, at: datetime | None = None
    ) -> ErasureDone:
        """Erase the person's data everywhere: destroy the data keys of the person, of every
        duplicate merged into them and of every record linked to either; record PersonErased
        on each. ``staff``: a privacy officer over the municipality or the self-reliance
        office (the retention sweeper acts as ``retention_staff``). 409 once erased, or for a
        duplicate merged into another (the survivor is the person to erase)."""
        self._require_eraser(staff)
        if reason not in REQUESTED_ERASURE_REASONS:
            raise Invalid(
                "reason",
                "reference_code",
                f"unknown erasure reason {reason!r}",
                REQUESTED_ERASURE_REASONS,
            )
        person = self.person_here(staff, person_id)
        person.refuse_if_erased()
        if person.merged_into is not None:
            raise Conflict(
                f"person {person_id} is merged into {person.merged_into}: erase that person, "
                "which erases this one too, or unmerge first",
                current=str(person.merged_into),
            )
        if self.keys is None:
            raise RuntimeError("this intake application seals nothing and can erase nothing")
        when = at or datetime.now(UTC)
        if reason == "retention":
            _refuse_if_retained(person, municipal_date(when))
        duplicates = [p for p in self._merged_into(person) if p.erased is None]
        person.erase(staff.agency, staff.staff_id, reason, when)
        for duplicate in duplicates:
            duplicate.erase(staff.agency, staff.staff_id, reason, when, erased_with=person.id)
        # The events first, stored only if nothing was recorded about these persons since they
        # were read (an extension of the retention, above all): the event store's versions are
        # the persons' turn. Then the keys. A crash between the two leaves an erasure recorded
        # and keys still there, which the next retention sweep destroys (``erase_due``).
        try:
            self.save(person, *duplicates)
        except IntegrityError as clash:
            raise Conflict(
                f"person {person_id}'s record changed while they were being erased: nothing "
                "was erased; ask again"
            ) from clash
        self.keys.erase([person.id, *(p.id for p in duplicates)], reason, when)
        return ErasureDone(person.id, [person.id, *(p.id for p in duplicates)], reason, when)

    def _merged_into(self, survivor: Person) -> list[Person]:
        """The persons merged into ``survivor`` now, and into them in turn."""
        found: dict[UUID, Person] = {}
        frontier = [survivor.id]
        while frontier:
            into = frontier.pop()
            index = self.index(merged_key(into))
            for member in dict.fromkeys(index.ids if index else []):
                person = self.person(member)
                # Listed once merged: one unmerged since is no longer the same person.
                if person.merged_into == into and person.id not in found:
                    found[person.id] = person
                    frontier.append(person.id)
        return list(found.values())

    def unmerge(self, staff: Staff, person_id: UUID, reason: str) -> None:
        self._require_intake_office(staff, "unmerge persons")
        duplicate = self.person_here(staff, person_id)
        duplicate.unmerge(staff.agency, staff.staff_id, reason, datetime.now(UTC))
        self.save(duplicate)

    # The consent ledger (本人同意)

    def record_consent(self, staff: Staff, command: RecordConsent) -> UUID:
        self._registered(staff, command.person_id).refuse_if_erased()
        self.require(staff, command.person_id, "identity")
        valid_from = past_or_now("valid_from", command.valid_from)
        check_terms(
            command.recipients,
            command.categories,
            command.purposes,
            valid_from,
            command.valid_until,
            command.method,
            command.witness,
            command.given_by,
            command.representative_relationship,
            staff.municipality,
        )
        consent = Consent(
            municipality=staff.municipality,
            person_id=command.person_id,
            given_by=command.given_by,
            representative_name=command.representative_name,
            representative_relationship=command.representative_relationship,
            recipients=list(dict.fromkeys(command.recipients)),
            categories=list(dict.fromkeys(command.categories)),
            purposes=list(dict.fromkeys(command.purposes)),
            valid_from=valid_from,
            valid_until=command.valid_until,
            method=command.method,
            evidence_ref=command.evidence_ref,
            witness=command.witness,
            agency=staff.agency,
            staff_id=staff.staff_id,
        )
        self._save_unique([consent, self.listed(consents_key(command.person_id), consent.id)])
        return consent.id

    def consent(self, consent_id: UUID) -> Consent:
        return self.fetch(Consent, consent_id, "consent")

    def readable_consent(self, staff: Staff, consent_id: UUID) -> Consent:
        """A consent, to its recording agency, its recipients and privacy officers."""
        consent = _here(staff, self.consent(consent_id), "consent")
        if not _may_read(staff, consent):
            raise Forbidden(
                f"consent {consent_id} is readable by its recording agency, its recipients "
                "and privacy officers"
            )
        return consent

    def withdraw_consent(self, staff: Staff, consent_id: UUID, command: WithdrawConsent) -> UUID:
        consent = self.readable_consent(staff, consent_id)
        withdrawal_id = consent.withdraw(
            at=past_or_now("at", command.at),
            recipients=command.recipients,
            categories=command.categories,
            reason=_blank_to_none(command.reason),
            agency=staff.agency,
            staff_id=staff.staff_id,
        )
        self.save(consent)
        return withdrawal_id

    def consents_of(self, person_id: UUID) -> list[Consent]:
        index = self.index(consents_key(person_id))
        return [self.consent(c) for c in (index.ids if index else [])]

    def readable_consents(self, staff: Staff, person_id: UUID) -> list[Consent]:
        """The person's consents, in force or not, that ``staff`` may read, in consent order."""
        readable = (c for c in self.consents_of(person_id) if _may_read(staff, c))
        return sorted(readable, key=consent_order)

    def consents_in_force(
        self, person_id: UUID, recipient: str, category: str, purpose: str, at: datetime
    ) -> list[Consent]:
        """Which consents covered ``recipient``, ``category`` and ``purpose`` at instant ``at``,
        in ``consent_order``."""
        return sorted(
            (
                c
                for c in self.consents_of(person_id)
                if c.as_policy().covers(recipient, category, purpose, at)
            ),
            key=consent_order,
        )

    # Disclosure: what intake itself may show

    def person_record(self, person_id: UUID) -> disclosure.PersonRecord:
        person = self.person(person_id)
        own = frozenset({person.agency})
        return disclosure.PersonRecord(
            person_id=str(person_id),
            recorded_by={"identity": own, "contact": own},
            consents=tuple(c.as_policy() for c in self.consents_of(person_id)),
        )

    def require(self, staff: Staff, person_id: UUID, category: str) -> disclosure.Allow:
        """Allowed for any purpose, or 403 naming what is missing (``category`` as a whole:
        the registering agency's record of it)."""
        self.person_here(staff, person_id)
        record = self.person_record(person_id)
        viewer = disclosure.Viewer(staff.agency, staff.staff_id)
        now = datetime.now(UTC)
        denials = []
        for purpose in disclosure.PURPOSES:
            decision = disclosure.decide(viewer, record, category, purpose, now)
            if isinstance(decision, disclosure.Allow):
                return decision
            denials.append(decision.reason)
        raise Forbidden(denials[0], category=category, recipient=staff.agency)

    # Retention (保存期間): see services.intake.retention

    def retention(self, staff: Staff, book: RetentionBook, person_id: UUID) -> Retention:
        """The person's retention, to those who may erase them."""
        self._require_eraser(staff)
        self.person_here(staff, person_id)
        return book.of(person_id, staff.municipality)

    def retention_due(self, staff: Staff, book: RetentionBook, within_days: int) -> list[Retention]:
        """Whose records in the caller's municipality the sweep erases within ``within_days``
        from today (and any it has yet to erase), soonest first."""
        self._require_eraser(staff)
        by = municipal_date(datetime.now(UTC)) + timedelta(days=within_days)
        return book.due(staff.municipality, by)

    def extend_retention(
        self, staff: Staff, book: RetentionBook, person_id: UUID, until: date, reason: str
    ) -> Retention:
        """Keep the person's records until ``until`` (later than today and than the retention's
        end), for ``reason``; the retention it makes."""
        self._require_eraser(staff)
        person = self.person_here(staff, person_id)
        now = datetime.now(UTC)
        held = book.of(person_id, staff.municipality)
        floor = max(municipal_date(now), held.retained_until or date.min)
        person.extend_retention(staff.agency, staff.staff_id, until, reason, now, floor)
        self.save(person)
        return replace(held, extension=Extension(until, reason, now, staff.agency))

    def erase_due(self, book: RetentionBook, now: datetime) -> list[UUID]:
        """The retention sweep: erase for ``retention`` everyone whose records' retention ended
        before the date of ``now``, in every municipality; the persons erased (with the
        duplicates merged into them). An erased person is not due again, so a second sweep
        erases nothing more."""
        today = municipal_date(now)
        erased: list[UUID] = []
        for municipality in reference().municipalities:
            self._destroy_keys_left(book.erased(municipality))
            for due in book.due(municipality, today):
                # The feed may be a moment behind: ``erase_person`` judges on the person as
                # stored (an extension, an erasure, a merge since) and refuses with 409.
                try:
                    erased += self.erase_person(
                        retention_staff(municipality), due.person_id, "retention", now
                    ).persons
                except (Conflict, NotFound):
                    continue
        return erased

    def _destroy_keys_left(self, erased: list[UUID]) -> None:
        """Destroy the keys that outlived a recorded erasure (a crash after PersonErased was
        stored), with the erasure's own date and reason. A deployment from before sealing has
        none (``tsunagu upgrade``)."""
        if self.keys is None:
            return
        for person_id in self.keys.unerased(erased):
            erasure = self.person(person_id).erased
            assert erasure is not None
            self.keys.erase([person_id], erasure.reason, erasure.at)

    # Plumbing

    def _link(self, person: Person, staff: Staff, local_id: str) -> LocalIdIndex:
        if not local_id.strip():
            raise Invalid("local_id", "not_empty", "a local id cannot be blank")
        person.link(staff.agency, local_id, staff.staff_id, datetime.now(UTC))
        return LocalIdIndex.of(self.blind, staff.agency, local_id, person.id)

    def _duplicates(self, person: Person) -> str | None:
        opener = Opener(self.keys) if self.keys is not None else None
        return duplicates_list_key(person, self.blind, opener)

    def _save_unique(self, aggregates: list[Aggregate]) -> None:
        try:
            self.save(*aggregates)
        except IntegrityError as clash:
            raise Conflict("that local id already belongs to another person") from clash

    def _registered(self, staff: Staff, person_id: UUID) -> Person:
        """The person named in a request body; 422 (not 404) when nobody is registered so in
        the caller's municipality."""
        person = self.find(Person, person_id)
        if person is None or person.municipality != staff.municipality:
            raise Invalid("person_id", "registered_person", f"no person {person_id} is registered")
        return person

    def _open_to_records(self, staff: Staff, consultation_id: UUID) -> Consultation:
        """The caller's consultation, if its person (when known) was not erased."""
        consultation = self.own_consultation(staff, consultation_id)
        if consultation.person_id is not None:
            self.person(consultation.person_id).refuse_if_erased()
        return consultation

    def _require_eraser(self, staff: Staff) -> None:
        agency = reference().agency(staff.agency)
        office = agency is not None and agency.role == INTAKE_ROLE
        if not office and not staff.oversees_municipality("privacy_officer"):
            raise Forbidden(
                "only the self-reliance support office or a privacy officer over the whole "
                "municipality may erase a person's data: it erases every agency's records",
                allowed_agencies=list(
                    reference().agencies_with_role(INTAKE_ROLE, staff.municipality)
                ),
            )

    def _require_intake_office(self, staff: Staff, action: str) -> None:
        agency = reference().agency(staff.agency)
        if agency is None or agency.role != INTAKE_ROLE:
            raise Forbidden(f"only a self-reliance support office may {action}")


def duplicates_list_key(person: Person, blind: BlindIndex, opener: Opener | None) -> str | None:
    """The key of the list of ``person``'s likely duplicates: their duplicate key's token,
    made of their names and birth date opened for as long as it takes (a person read back
    from the store holds them sealed); None if too little is known, or they were erased."""
    fields = list(person.duplicate_fields)
    opened = opener.open(fields) if opener is not None else fields
    if any(isinstance(value, dict) for value in opened):
        return None
    key = duplicate_key(*opened)
    return duplicates_key(blind, person.municipality, key) if key else None


def merged_key(survivor_id: UUID) -> str:
    return f"merged:{survivor_id}"


def _refuse_if_retained(person: Person, today: date) -> None:
    """409 when the person's retention was extended to ``today`` or later."""
    kept = person.retention_extended_until
    if kept is not None and kept >= today:
        raise Conflict(
            f"person {person.id}'s records are kept until {kept.isoformat()}",
            current={"state": "retained", "retained_until": kept.isoformat()},
        )


def retention_staff(municipality: str) -> Staff:
    """Who the retention sweeper erases as: the municipality's self-reliance office."""
    [office, *_] = reference().agencies_with_role(INTAKE_ROLE, municipality)
    return Staff(RETENTION_STAFF_ID, office, frozenset(), municipality)


def _here(staff: Staff, found: A, kind: str) -> A:
    """``found``, if it belongs to the caller's municipality: another's is not found."""
    if getattr(found, "municipality", None) != staff.municipality:
        raise NotFound(f"no {kind} {found.id} in {staff.municipality}")
    return found


def _blank_to_none(text: str | None) -> str | None:
    return text if text and text.strip() else None


def consent_order(consent: Consent) -> tuple[str, str]:
    """Consents listed oldest first (by the start of their validity); also the key a page of
    the list starts after."""
    start = consent.valid_from.astimezone(UTC).isoformat(timespec="microseconds")
    return (start, str(consent.id))


def _may_read(staff: Staff, consent: Consent) -> bool:
    """The recorder, a recipient, or a privacy officer over the whole municipality (one over
    its own agency reads its agency's consents as recorder or recipient)."""
    return (
        staff.agency == consent.agency
        or staff.agency in consent.recipients
        or staff.oversees_municipality("privacy_officer")
    )
