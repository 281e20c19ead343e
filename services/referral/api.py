"""Referral's HTTP adapter. The receiver reads the slip; the sender learns only the status.

Every answer about a referral is a read of its person (``Disclosures``): the status is both
ends' own record; the slip's content is shown to the receiver only while its basis covers it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Response
from pydantic import Field
from pydantic_core import to_jsonable_python

from contracts.fields import Code, Moment, Reason, RequestModel
from contracts.identity import Staff
from services.feeds.store import ViewStore
from services.platform.disclose import (
    OWN_RECORD,
    Disclosure,
    Disclosures,
    Reader,
    bases_map,
    withheld_list,
)
from services.platform.pagination import Page, after_cursor, link_of, page, respond
from services.platform.settings import Settings
from services.projection.person_facts import REFERRAL_STATUS
from services.referral.application import (
    ReferralApplication,
    SendReferral,
    SlipReading,
    box_order,
)
from services.referral.feed import ConsentReplica
from services.referral.referral import Referral


class MoveRequest(RequestModel):
    reason: Reason | None = None
    outcome: Reason | None = None
    at: Moment | None = None


class RerouteRequest(RequestModel):
    to: Code
    reason: Reason = Field(min_length=1)
    at: Moment | None = None


class FollowUpRequest(RequestModel):
    action: Code = Field(description="return_to_sender or resource_gap")
    note: Reason = Field(min_length=1)
    follow_up_on: Moment | None = None


class IdentifyRequest(RequestModel):
    person_id: UUID


Move = Literal["acknowledge", "accept", "decline", "start", "hold", "complete", "fail", "withdraw"]


def status_of(referral: Referral, settings: Settings, person: dict[str, Any]) -> dict[str, Any]:
    """What the sender may always know (referral_status): where its slip stands, and whom it
    is about as ``person`` names them (``ConsentReplica.named``: the survivor of a merge)."""
    now = datetime.now(UTC)
    return {
        "id": referral.id,
        "kind": referral.kind,
        "sender": referral.sender,
        "receiver": referral.receiver,
        "person_id": person["person_id"],
        "recorded_under": person["recorded_under"],
        "state": referral.state,
        "state_at": referral.state_at,
        "sent_at": referral.sent_at,
        "rerouted_to": referral.rerouted_to,
        "needs_action": referral.needs_action(now, settings.decline_follow_up_days),
        "history": [{"state": s, "agency": a, "at": t} for s, a, t in referral.history],
    }


def slip_of(
    referral: Referral, settings: Settings, reading: SlipReading, person: dict[str, Any]
) -> dict[str, Any]:
    """What the receiver reads: the slip itself, its content only as far as its basis still
    covers it (``bases``; the rest named in ``withheld``)."""
    now = datetime.now(UTC)
    return {
        **status_of(referral, settings, person),
        "reason": referral.reason if reading.reason else None,
        "categories": referral.categories,
        "basis": referral.basis,
        "basis_id": referral.basis_id if referral.basis == "consent" else None,
        "provisional_identity": (
            referral.provisional_identity if reading.provisional_identity else None
        ),
        "outcome": referral.outcome,
        "acknowledgement_overdue": referral.acknowledgement_overdue(
            now, settings.acknowledgement_hours
        ),
        "bases": bases_map(reading.shown),
        "withheld": withheld_list(reading.withheld),
    }


def build_router(
    referrals: ReferralApplication,
    feed: ViewStore,
    disclosures: Disclosures,
) -> APIRouter:
    router = APIRouter(tags=["referral"])
    Reading = disclosures.dependency()
    replica = ConsentReplica(feed)
    consents = replica.consents_of

    def view(referral: Referral, staff: Staff) -> Disclosure:
        """The slip (receiver) or its status (sender), with the moves the caller may make: a
        read of the person the referral is about, as merged now."""
        ends = frozenset({referral.sender, referral.receiver})
        person = replica.named(referral.person_id)
        if staff.agency == referral.receiver:
            reading = referrals.slip_reading(staff, referral, consents)
            document = slip_of(referral, referrals.settings, reading, person)
            shown, withheld = reading.shown, reading.withheld
        else:
            document = status_of(referral, referrals.settings, person)
            shown, withheld = {REFERRAL_STATUS: (OWN_RECORD, None)}, {}
        document["allowed_moves"] = referral.open_moves(staff.agency)
        return Disclosure(
            to_jsonable_python(document),
            shown,
            person_id=person["person_id"],
            disclosed_by=ends,
            withheld=withheld,
            view={"view": "referral", "referral_id": str(referral.id)},
        )

    def answer(
        reader: Reader, referral: Referral, status_code: int = 200, *, command: bool = True
    ) -> Response:
        reader.about(referral.person_id)
        shown = view(referral, reader.staff)
        return reader.answer(shown, status_code=status_code, command=command)

    def box(
        listed: list[Referral],
        state: str | None,
        reader: Reader,
        asked: Page,
        response: Response,
    ) -> Response:
        found = after_cursor(
            (r for r in listed if state is None or r.state == state), box_order, asked
        )
        page_of = respond(found, box_order, asked, reader.request, response)
        return reader.answer([view(r, reader.staff) for r in page_of], headers=link_of(response))

    @router.post("/referrals", status_code=201)
    def send(
        body: SendReferral,
        reader: Reader = Reading,
        idempotency_key: str | None = Header(None, max_length=200),
    ) -> Response:
        """Send a slip. A retried request with the same Idempotency-Key returns the same one."""
        reader.about(body.person_id)
        sent = referrals.send(reader.staff, body, consents, idempotency_key)
        return answer(reader, referrals.referral(sent.referral_id), 200 if sent.replayed else 201)

    @router.get("/referrals/inbox")
    def inbox(
        response: Response,
        state: str | None = None,
        asked: Page = Depends(page),
        reader: Reader = Reading,
    ) -> Response:
        """What was sent to the caller's agency, oldest first, overdue acknowledgements flagged."""
        return box(referrals.inbox(reader.staff.agency), state, reader, asked, response)

    @router.get("/referrals/outbox")
    def outbox(
        response: Response,
        state: str | None = None,
        asked: Page = Depends(page),
        reader: Reader = Reading,
    ) -> Response:
        """What the caller's agency sent: status only, declines needing action flagged."""
        return box(referrals.outbox(reader.staff.agency), state, reader, asked, response)

    @router.get("/referrals/{referral_id}")
    def get(referral_id: UUID, reader: Reader = Reading) -> Response:
        return answer(reader, referrals.party_referral(reader.staff, referral_id), command=False)

    @router.post("/referrals/{referral_id}/reroute", status_code=201)
    def reroute(referral_id: UUID, body: RerouteRequest, reader: Reader = Reading) -> Response:
        new_id = referrals.reroute(
            reader.staff, referral_id, body.to, body.reason, consents, body.at
        )
        return answer(reader, referrals.referral(new_id), 201)

    @router.post("/referrals/{referral_id}/follow-up")
    def follow_up(referral_id: UUID, body: FollowUpRequest, reader: Reader = Reading) -> Response:
        """Close the loop of a decline: return to the sender, or note a resource gap."""
        referral = referrals.follow_up_decline(
            reader.staff, referral_id, body.action, body.note, body.follow_up_on
        )
        return answer(reader, referral)

    @router.post("/referrals/{referral_id}/person")
    def identify(referral_id: UUID, body: IdentifyRequest, reader: Reader = Reading) -> Response:
        referral = referrals.identify(reader.staff, referral_id, body.person_id)
        return answer(reader, referral)

    @router.post("/referrals/{referral_id}/{move}")
    def move(
        referral_id: UUID, move: Move, body: MoveRequest, reader: Reader = Reading
    ) -> Response:
        referral = referrals.move(
            reader.staff, referral_id, move, body.reason, body.outcome, body.at
        )
        return answer(reader, referral)

    return router
