"""The privacy officer's questions over HTTP, each answered from the caller's municipality's chain.

Every route needs role ``privacy_officer``, held as the reference data grants it: over the whole
municipality, or over its own agency only, whose officer sees only the disclosures its agency
received or made. A refused call is itself appended to the audit chain before the 403 goes back
(the ``Disclosures`` mechanism every read goes through), so probing the audit leaves a trace.

The answers name persons by id, categories and bases, never a field of a person's record, so
they are not disclosures themselves; the one that shows a record (a replay's document) is
decided and recorded like any read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from contracts.errors import Forbidden, Invalid, NotFound
from contracts.fields import Moment, Position, Reason, RequestModel
from contracts.reference import MUNICIPALITY
from services.feeds.store import ViewStore
from services.platform.disclose import Disclosure, Disclosures, Reader
from services.platform.pagination import Page, page, respond
from services.projection import audit_queries, queries
from services.projection.audit import AuditLog, AuditRecord, Review, audit_key
from services.projection.audit_queries import PurgeRecord
from services.projection.chains import Chains
from services.projection.checkpoint import AnchoredVerification, Anchoring, Checkpoint
from services.projection.replay import Replay, decided_for, replay_disclosure
from services.projection.revocation import RevocationImpact, impact_of

PRIVACY_OFFICER = "privacy_officer"


class ReviewRequest(RequestModel):
    note: Reason = Field(min_length=1)


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Invalid(name, "timezone_required", "give the time with its UTC offset (+09:00)")
    return value


@dataclass(frozen=True)
class Officer:
    """A privacy officer's reach: its municipality's chain, and, for an officer of its own
    agency only, that agency (``involving``)."""

    reader: Reader
    chain: AuditLog
    involving: str | None

    @property
    def municipality(self) -> str:
        return self.reader.staff.municipality

    def whole_municipality(self, what: str) -> None:
        if self.involving is not None:
            raise Forbidden(
                f"{what} is for a privacy officer of the whole municipality; "
                f"{self.involving!r} holds the role over its own agency only"
            )


def build_router(
    chains: Chains,
    views: ViewStore,
    anchoring: Callable[[str], Anchoring],
    disclosures: Disclosures,
) -> APIRouter:
    """``anchoring``: where a municipality's checkpoints are kept and how they are signed."""
    router = APIRouter(prefix="/audit", tags=["audit"])
    Reading = disclosures.dependency()

    def privacy_officer(reader: Reader = Reading) -> Officer:
        staff = reader.staff
        scope = staff.scope(PRIVACY_OFFICER)
        if scope is None:
            request = reader.request
            raise Forbidden(f"{request.method} {request.url.path} needs role {PRIVACY_OFFICER!r}")
        involving = None if scope == MUNICIPALITY else staff.agency
        return Officer(reader, chains.of(staff.municipality), involving)

    def person_here(person_id: str, officer: Officer) -> None:
        with views.database.transaction() as tx:
            found = queries.municipality_of(tx, person_id)
        # A person the views do not know may still have been read (refused) here: only
        # another municipality's is unknown to this officer.
        if found is not None and found != officer.municipality:
            raise NotFound(f"no person {person_id} in {officer.municipality}")

    @router.get("/persons/{person_id}", response_model=list[AuditRecord])
    def seen_person(
        person_id: str,
        request: Request,
        response: Response,
        since: Moment | None = None,
        until: Moment | None = None,
        agency: str | None = Query(None, max_length=100, description="only this agency's staff"),
        asked: Page = Depends(page),
        officer: Officer = Depends(privacy_officer),
    ) -> list[AuditRecord]:
        """In chain order, a page at a time."""
        person_here(person_id, officer)
        rows = officer.chain.seen_person(
            person_id,
            _aware("since", since),
            _aware("until", until),
            agency=agency,
            page=asked,
            involving=officer.involving,
        )
        return respond(rows, audit_key, asked, request, response)

    @router.get("/agencies/{agency}", response_model=list[AuditRecord])
    def seen_by_agency(
        agency: str,
        request: Request,
        response: Response,
        since: Moment | None = None,
        until: Moment | None = None,
        asked: Page = Depends(page),
        officer: Officer = Depends(privacy_officer),
    ) -> list[AuditRecord]:
        """In chain order, a page at a time."""
        rows = officer.chain.seen_by_agency(
            agency,
            _aware("since", since),
            _aware("until", until),
            page=asked,
            involving=officer.involving,
        )
        return respond(rows, audit_key, asked, request, response)

    @router.get("/consents/{consent_id}", response_model=list[AuditRecord])
    def under_consent(
        consent_id: str, officer: Officer = Depends(privacy_officer)
    ) -> list[AuditRecord]:
        return officer.chain.under_consent(consent_id, involving=officer.involving)

    @router.get("/vital-interest/pending", response_model=list[AuditRecord])
    def vital_interest_pending(officer: Officer = Depends(privacy_officer)) -> list[AuditRecord]:
        return officer.chain.vital_interest_pending(involving=officer.involving)

    @router.post("/vital-interest/{position}/review", response_model=Review)
    def review(
        position: Position, body: ReviewRequest, officer: Officer = Depends(privacy_officer)
    ) -> Review:
        officer.chain.entry(position, involving=officer.involving)
        return officer.chain.review(position, officer.reader.staff.staff_id, body.note)

    @router.get("/consents/{consent_id}/impact", response_model=RevocationImpact)
    def revocation_impact(
        consent_id: str, officer: Officer = Depends(privacy_officer)
    ) -> RevocationImpact:
        """What left under this consent that its withdrawal cannot call back: the disclosures
        before the withdrawal (and any after), the purges of its basis, and the referral slips
        and 支援会議 shares that carried categories under it."""
        officer.whole_municipality("a consent's revocation impact")
        with views.database.transaction() as tx:
            person = audit_queries.consent_person(tx, consent_id)
            home = queries.municipality_of(tx, person) if person is not None else None
        if home not in (None, officer.municipality):
            raise NotFound(f"the views know of no consent {consent_id}")
        return impact_of(officer.chain, views, consent_id)

    @router.get("/entries/{position}", response_model=AuditRecord)
    def entry(position: Position, officer: Officer = Depends(privacy_officer)) -> AuditRecord:
        """One entry as the chain holds it: who, when, each category's basis, its hashes."""
        return officer.chain.entry(position, involving=officer.involving)

    @router.get("/entries/{position}/replay", response_model=Replay)
    def replay(position: Position, officer: Officer = Depends(privacy_officer)) -> Response:
        """Build the disclosure recorded at ``position`` again from the journalled events: the
        hash of the rebuilt body against the one served, and the basis of each category. The
        rebuilt document is a read of the person like any other: shown only where ``decide``
        lets the officer's agency see every category it holds now, and recorded."""
        recorded = officer.chain.entry(position, involving=officer.involving)
        replayed = replay_disclosure(views, recorded, disclosures.opener)
        now = datetime.now(UTC)
        allowed, withheld = decided_for(views, officer.reader.staff.agency, recorded, now)
        if withheld:
            replayed = replace(replayed, document=None, document_withheld=withheld)
        shown = Disclosure(
            replayed.as_json(),
            allowed if not withheld else {},
            person_id=recorded.person_id,
            view={"view": "replay", "position": position},
        )
        return officer.reader.answer(shown, at=now)

    @router.get("/persons/{person_id}/purges", response_model=list[PurgeRecord])
    def purges(person_id: str, officer: Officer = Depends(privacy_officer)) -> list[PurgeRecord]:
        """What was purged from which agency's view of the person, when and why (ViewPurged)."""
        person_here(person_id, officer)
        with views.database.transaction() as tx:
            found = audit_queries.purges(tx, person_id)
        return [p for p in found if officer.involving in (None, p.agency)]

    @router.get("/verify", response_model=AnchoredVerification)
    def verify(officer: Officer = Depends(privacy_officer)) -> AnchoredVerification:
        """The chain checked link by link and against every signed checkpoint: each tampering
        named in ``findings``; entries after the last checkpoint counted as not yet anchored."""
        officer.whole_municipality("verifying the chain")
        return anchoring(officer.municipality).verify(officer.chain)

    @router.post("/checkpoints", status_code=201, response_model=Checkpoint)
    def checkpoint(officer: Officer = Depends(privacy_officer)) -> Checkpoint:
        """Sign the chain's length and head now, and keep it outside the database."""
        officer.whole_municipality("signing a checkpoint")
        return anchoring(officer.municipality).checkpoint(officer.chain)

    return router
