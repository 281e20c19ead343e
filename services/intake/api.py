"""Intake's HTTP adapter: thin translation between JSON and the intake application.

Every answer that shows a person, a consultation or a consent is a disclosure, answered and
recorded through ``Disclosures`` (refusals too); a person's fields are shown category by
category as the application decides them.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python

from contracts.errors import Invalid
from contracts.fields import Code, Line, Moment, Reason, RequestModel
from contracts.identity import Staff
from contracts.reference import reference
from services.intake.application import (
    IntakeApplication,
    OpenConsultation,
    RecordConsent,
    RegisterPerson,
    Triage,
    WithdrawConsent,
    consent_order,
)
from services.intake.consent import Consent
from services.intake.consultation import Consultation
from services.platform.auth import authenticated_staff
from services.platform.disclose import OWN_RECORD, Disclosure, Disclosures, Reader
from services.platform.pagination import Page, after_cursor, link_of, page, respond


class AttachRequest(RequestModel):
    person_id: UUID
    at: Moment | None = None


class ApplicationRequest(RequestModel):
    at: Moment | None = None


class ShownBasis(BaseModel):
    basis: str
    basis_id: str | None


class Withheld(BaseModel):
    category: str
    reason: str


class Erased(BaseModel):
    erased_at: datetime
    reason: str


class PersonResponse(BaseModel):
    """The person as the caller may see them now: identity fields (names, kana, birth date,
    sex) under an ``identity`` basis, address and phone under a ``contact`` one, another
    agency's local id under an ``identity`` basis for it; the rest null, and named in
    ``withheld`` with the reason."""

    id: UUID
    registered_by: str
    family_name: str | None
    given_name: str | None
    family_name_kana: str | None
    given_name_kana: str | None
    birth_date: date | None
    birth_year: int | None
    sex: str | None
    address: str | None
    phone: str | None
    local_ids: dict[str, str]
    merged_into: UUID | None
    erased: Erased | None = Field(
        None, description="when and why the person's data was erased: its fields read 消去済み"
    )
    bases: dict[str, ShownBasis]
    withheld: list[Withheld]


class LinkRequest(RequestModel):
    local_id: Line = Field(min_length=1, max_length=100)


class MergeRequest(RequestModel):
    into: UUID
    reason: Reason = Field(min_length=1)


class UnmergeRequest(RequestModel):
    reason: Reason = Field(min_length=1)


class ErasureRequest(RequestModel):
    reason: Code = Field(
        description="subject_request (本人からの消去請求) or retention (保存期間満了)"
    )


class ErasureResponse(BaseModel):
    """What an erasure did: the person, and the duplicates merged into them, erased at
    ``erased_at`` for ``reason``. Their records now read 消去済み everywhere."""

    person_id: UUID
    persons: list[UUID]
    reason: str
    erased_at: datetime


def _json(model: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json")
    return dumped


def consent_disclosure(consent: Consent, document: dict[str, Any], view: str) -> Disclosure:
    """A consent is a record about its person that belongs to no data category: who may see
    what of them, given by them. Read by its recorder, recipients and privacy officers."""
    return Disclosure(
        to_jsonable_python(document),
        {},
        person_id=str(consent.person_id),
        disclosed_by=frozenset({consent.agency}),
        view={"view": view, "consent_id": str(consent.id)},
        about_person=True,
    )


class ConsentResponse(BaseModel):
    id: UUID
    person_id: UUID
    recorded_by: str
    given_by: str
    recipients: list[str]
    categories: list[str]
    purposes: list[str]
    valid_from: datetime
    valid_until: datetime
    method: str
    evidence_ref: str | None
    withdrawals: list[dict[str, Any]]

    @classmethod
    def of(cls, c: Consent) -> ConsentResponse:
        return cls(
            id=c.id,
            person_id=c.person_id,
            recorded_by=c.agency,
            given_by=c.given_by,
            recipients=c.recipients,
            categories=c.categories,
            purposes=c.purposes,
            valid_from=c.valid_from,
            valid_until=c.valid_until,
            method=c.method,
            evidence_ref=c.evidence_ref,
            withdrawals=[
                {
                    "id": w.withdrawal_id,
                    "at": w.at.isoformat(),
                    "recipients": sorted(w.recipients) if w.recipients is not None else None,
                    "categories": sorted(w.categories) if w.categories is not None else None,
                }
                for w in c.withdrawals
            ],
        )


class ConsultationResponse(BaseModel):
    id: UUID
    municipality: str
    agency: str
    opened_at: datetime
    channel: str
    route_in: str
    caller_kind: str
    person_id: UUID | None
    main_complaint: str | None
    notes: str | None
    triage: str | None
    application_at: datetime | None

    @classmethod
    def of(cls, c: Consultation) -> ConsultationResponse:
        return cls(
            id=c.id,
            municipality=c.municipality,
            agency=c.agency,
            opened_at=c.opened_at,
            channel=c.channel,
            route_in=c.route_in,
            caller_kind=c.caller_kind,
            person_id=c.person_id,
            main_complaint=c.main_complaint,
            notes=c.notes,
            triage=c.triage,
            application_at=c.application_at,
        )


def build_router(intake: IntakeApplication, disclosures: Disclosures) -> APIRouter:
    router = APIRouter(tags=["intake"])
    Caller = Depends(authenticated_staff)
    Reading = disclosures.dependency()

    def consultation_reply(consultation_id: UUID) -> ConsultationResponse:
        return ConsultationResponse.of(intake.consultation(consultation_id))

    def person_reply(
        reader: Reader, person_id: UUID, status_code: int = 200, *, command: bool = False
    ) -> Response:
        """The person as the caller may see them; after a command, what it may see (perhaps
        nothing but the record's id) rather than a refusal of what it just did."""
        reader.about(person_id)
        shown = intake.person_disclosure(reader.staff, person_id, refuse_if_nothing=not command)
        return reader.answer(shown, status_code=status_code, command=command)

    def consent_reply(reader: Reader, consent: Consent, *, command: bool = False) -> Response:
        reader.about(consent.person_id)
        document = _json(ConsentResponse.of(consent))
        shown = consent_disclosure(consent, document, "consent")
        return reader.answer(shown, status_code=201 if command else 200, command=command)

    @router.post("/consultations", status_code=201, response_model=ConsultationResponse)
    def open_consultation(body: OpenConsultation, staff: Staff = Caller) -> Response:
        # The busiest command answers from the aggregate it saved rather than reading it back,
        # and writes its reply itself: FastAPI would validate it against the model once more.
        opened = intake.open_consultation(staff, body)
        return Response(
            ConsultationResponse.of(opened).model_dump_json(), 201, media_type="application/json"
        )

    @router.get("/consultations/{consultation_id}", response_model=ConsultationResponse)
    def get_consultation(consultation_id: UUID, reader: Reader = Reading) -> Response:
        """The caller's own consultation: its own record, a read of its person if known."""
        consultation = intake.own_consultation(reader.staff, consultation_id)
        shown = Disclosure(
            _json(ConsultationResponse.of(consultation)),
            {"consultation": (OWN_RECORD, None)},
            person_id=str(consultation.person_id) if consultation.person_id else None,
            disclosed_by=frozenset({consultation.agency}),
        )
        return reader.answer(shown)

    @router.post("/consultations/{consultation_id}/triage", response_model=ConsultationResponse)
    def triage(consultation_id: UUID, body: Triage, staff: Staff = Caller) -> ConsultationResponse:
        intake.triage(staff, consultation_id, body)
        return consultation_reply(consultation_id)

    @router.post("/consultations/{consultation_id}/attach", response_model=ConsultationResponse)
    def attach(
        consultation_id: UUID, body: AttachRequest, staff: Staff = Caller
    ) -> ConsultationResponse:
        intake.attach(staff, consultation_id, body.person_id, body.at)
        return consultation_reply(consultation_id)

    @router.post(
        "/consultations/{consultation_id}/application", response_model=ConsultationResponse
    )
    def receive_application(
        consultation_id: UUID, body: ApplicationRequest, staff: Staff = Caller
    ) -> ConsultationResponse:
        intake.receive_application(staff, consultation_id, body.at)
        return consultation_reply(consultation_id)

    @router.post("/persons", status_code=201, response_model=PersonResponse)
    def register_person(body: RegisterPerson, reader: Reader = Reading) -> Response:
        person_id = intake.register_person(reader.staff, body)
        return person_reply(reader, person_id, 201, command=True)

    @router.get("/persons/by-local-id", response_model=dict[str, UUID])
    def find_by_local_id(
        local_id: str, agency: str | None = None, reader: Reader = Reading
    ) -> Response:
        """The person an agency filed under its own local id: the caller's own, or another
        agency's given an ``identity`` basis for the person."""
        filed_by = agency or reader.staff.agency
        person_id, allowed = intake.find_by_local_id(reader.staff, filed_by, local_id)
        shown = Disclosure(
            {"person_id": str(person_id)},
            {"identity": (allowed.basis, allowed.basis_id)},
            person_id=str(person_id),
            disclosed_by=frozenset({filed_by}),
        )
        return reader.answer(shown)

    @router.get("/persons/{person_id}", response_model=PersonResponse)
    def get_person(person_id: UUID, reader: Reader = Reading) -> Response:
        """The person's fields the caller's agency may see now, category by category."""
        return person_reply(reader, person_id)

    @router.post("/persons/{person_id}/links", response_model=PersonResponse)
    def link(person_id: UUID, body: LinkRequest, reader: Reader = Reading) -> Response:
        intake.link(reader.staff, person_id, body.local_id)
        return person_reply(reader, person_id, command=True)

    @router.get("/persons/{person_id}/duplicates")
    def duplicates(person_id: UUID, staff: Staff = Caller) -> dict[str, Any]:
        found = intake.duplicates(staff, person_id)
        return {
            "person_id": found.person_id,
            "candidates": found.candidates,
            "rule": "same normalised kana (or name) and birth date",
        }

    @router.post("/persons/{person_id}/merge", response_model=PersonResponse)
    def merge(person_id: UUID, body: MergeRequest, reader: Reader = Reading) -> Response:
        intake.merge(reader.staff, person_id, body.into, body.reason)
        return person_reply(reader, person_id, command=True)

    @router.post("/persons/{person_id}/unmerge", response_model=PersonResponse)
    def unmerge(person_id: UUID, body: UnmergeRequest, reader: Reader = Reading) -> Response:
        intake.unmerge(reader.staff, person_id, body.reason)
        return person_reply(reader, person_id, command=True)

    @router.post("/persons/{person_id}/erasure", status_code=201, response_model=ErasureResponse)
    def erase(person_id: UUID, body: ErasureRequest, staff: Staff = Caller) -> ErasureResponse:
        """Erase the person's data (本人からの消去請求, 保存期間満了): the self-reliance office or a
        privacy officer over the municipality. Every record about them then reads 消去済み,
        with the date and reason; counts stay. 409 once erased, with when and why."""
        done = intake.erase_person(staff, person_id, body.reason)
        return ErasureResponse(**asdict(done))

    @router.get("/persons/{person_id}/consents", response_model=list[ConsentResponse])
    def consents_in_force(
        person_id: UUID,
        response: Response,
        recipient: str | None = None,
        category: str | None = None,
        purpose: str | None = None,
        at: Moment | None = None,
        asked: Page = Depends(page),
        reader: Reader = Reading,
    ) -> Response:
        """With ``recipient``, ``category`` and ``purpose``, the ledger's question: which
        consents covered them at instant T (default now). Without, every consent of the person
        the caller may read (its recorder, its recipients, privacy officers), in force or not.
        Oldest first, a page at a time."""
        staff = reader.staff
        intake.require(staff, person_id, "identity")
        if at is not None and at.tzinfo is None:
            raise Invalid("at", "timezone_required", "give the time with its UTC offset (+09:00)")
        question = {"recipient": recipient, "category": category, "purpose": purpose}
        if any(question.values()):
            for name, value in question.items():
                if not value:
                    raise Invalid(name, "required", "recipient, category and purpose go together")
            moment = at or datetime.now().astimezone()
            found = intake.consents_in_force(
                person_id, str(recipient), str(category), str(purpose), moment
            )
        else:
            found = intake.readable_consents(staff, person_id)
        rows = after_cursor(found, consent_order, asked)
        listed = [
            consent_disclosure(c, _json(ConsentResponse.of(c)), "consent")
            for c in respond(rows, consent_order, asked, reader.request, response)
        ]
        return reader.answer(listed, headers=link_of(response))

    @router.post("/consents", status_code=201, response_model=ConsentResponse)
    def record_consent(body: RecordConsent, reader: Reader = Reading) -> Response:
        reader.about(body.person_id)
        consent_id = intake.record_consent(reader.staff, body)
        return consent_reply(reader, intake.consent(consent_id), command=True)

    @router.get("/consents/{consent_id}", response_model=ConsentResponse)
    def get_consent(consent_id: UUID, reader: Reader = Reading) -> Response:
        return consent_reply(reader, intake.readable_consent(reader.staff, consent_id))

    @router.get("/consents/{consent_id}/receipt")
    def consent_receipt(consent_id: UUID, reader: Reader = Reading) -> Response:
        """A Kantara-shaped consent receipt to hand to the person."""
        consent = intake.readable_consent(reader.staff, consent_id)
        reader.about(consent.person_id)
        return reader.answer(consent_disclosure(consent, consent.receipt(), "consent_receipt"))

    @router.get("/consents/{consent_id}/coverage")
    def consent_coverage(
        consent_id: UUID,
        recipient: str = Query(max_length=100),
        purpose: str = Query(max_length=100),
        at: Moment | None = None,
        reader: Reader = Reading,
    ) -> Response:
        """What a slip under this consent may carry to ``recipient`` for ``purpose`` now (or at
        ``at``): the categories covered, and the rest; before a sender chooses."""
        consent = intake.readable_consent(reader.staff, consent_id)
        reader.about(consent.person_id)
        covered = consent.coverage(recipient, purpose, at or datetime.now().astimezone())
        every = reference().data_categories
        document = {
            "recipient": recipient,
            "purpose": purpose,
            "covered": covered,
            "not_covered": [c for c in every if c not in covered],
        }
        return reader.answer(consent_disclosure(consent, document, "consent_coverage"))

    @router.get("/consents/{consent_id}/withdrawal-effect")
    def withdrawal_effect(
        consent_id: UUID,
        recipients: list[str] | None = Query(None),
        categories: list[str] | None = Query(None),
        reader: Reader = Reading,
    ) -> Response:
        """Before a withdrawal (all of it, or some recipients or categories): which agencies
        would stop receiving which categories under this consent."""
        consent = intake.readable_consent(reader.staff, consent_id)
        reader.about(consent.person_id)
        losses = consent.withdrawal_effect(recipients, categories, datetime.now().astimezone())
        document = {
            "losses": [{"agency": agency, "categories": lost} for agency, lost in losses.items()]
        }
        return reader.answer(consent_disclosure(consent, document, "consent_withdrawal_effect"))

    @router.post(
        "/consents/{consent_id}/withdrawals", status_code=201, response_model=ConsentResponse
    )
    def withdraw_consent(
        consent_id: UUID, body: WithdrawConsent, reader: Reader = Reading
    ) -> Response:
        intake.withdraw_consent(reader.staff, consent_id, body)
        return consent_reply(reader, intake.consent(consent_id), command=True)

    return router
