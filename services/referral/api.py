"""Referral's HTTP adapter. The receiver reads the slip; the sender learns only the status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from contracts import disclosure
from contracts.identity import Staff
from services.platform.auth import authenticated_staff
from services.platform.pagination import Page, after_cursor, page, respond
from services.platform.settings import Settings
from services.projection.consents import consents_of
from services.projection.store import ViewStore
from services.referral.application import ReferralApplication, SendReferral, box_order
from services.referral.referral import Referral


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReferralRequest(Strict):
    kind: str = Field(
        description="use_recommendation, connect_to_office, service_request, concern_from_community"
    )
    to: str = Field(description="the receiving agency")
    reason: str = Field(max_length=2000)
    categories: list[str]
    person_id: UUID | None = None
    provisional_identity: dict[str, str] | None = Field(
        None, description="who the slip is about, while the person is not registered"
    )
    consent_id: UUID | None = None
    verbal_consent_witness: str | None = Field(
        None,
        max_length=200,
        description="for a provisional person only: the sender's witnessed verbal consent",
    )
    at: datetime | None = None


class MoveRequest(Strict):
    reason: str | None = Field(None, max_length=2000)
    outcome: str | None = Field(None, max_length=2000)
    at: datetime | None = None


class RerouteRequest(Strict):
    to: str
    reason: str = Field(min_length=1, max_length=2000)
    at: datetime | None = None


class FollowUpRequest(Strict):
    action: str = Field(description="return_to_sender or resource_gap")
    note: str = Field(min_length=1, max_length=2000)
    follow_up_on: datetime | None = None


class IdentifyRequest(Strict):
    person_id: UUID


Move = Literal["acknowledge", "accept", "decline", "start", "hold", "complete", "fail", "withdraw"]


def status_of(referral: Referral, settings: Settings) -> dict[str, Any]:
    """What the sender may always know (referral_status): where its slip stands."""
    now = datetime.now(UTC)
    return {
        "id": referral.id,
        "kind": referral.kind,
        "sender": referral.sender,
        "receiver": referral.receiver,
        "person_id": referral.person_id,
        "state": referral.state,
        "state_at": referral.state_at,
        "sent_at": referral.sent_at,
        "rerouted_to": referral.rerouted_to,
        "needs_action": referral.needs_action(now, settings.decline_follow_up_days),
        "history": [{"state": s, "agency": a, "at": t} for s, a, t in referral.history],
    }


def slip_of(referral: Referral, settings: Settings) -> dict[str, Any]:
    """What the receiver reads: the slip itself."""
    now = datetime.now(UTC)
    return {
        **status_of(referral, settings),
        "reason": referral.reason,
        "categories": referral.categories,
        "basis": referral.basis,
        "basis_id": referral.basis_id if referral.basis == "consent" else None,
        "provisional_identity": referral.provisional_identity,
        "outcome": referral.outcome,
        "acknowledgement_overdue": referral.acknowledgement_overdue(
            now, settings.acknowledgement_hours
        ),
    }


def build_router(
    referrals: ReferralApplication, feed: ViewStore, after_command: Callable[[], object]
) -> APIRouter:
    router = APIRouter(tags=["referral"])
    Caller = Depends(authenticated_staff)

    def consents(person_id: UUID) -> tuple[disclosure.Consent, ...]:
        with feed.database.transaction() as tx:
            return consents_of(tx, str(person_id))

    def view(referral: Referral, staff: Staff) -> dict[str, Any]:
        """The slip (receiver) or its status (sender), with the moves the caller may make."""
        if staff.agency == referral.receiver:
            shown = slip_of(referral, referrals.settings)
        else:
            shown = status_of(referral, referrals.settings)
        return {**shown, "allowed_moves": referral.open_moves(staff.agency)}

    def box(
        listed: list[Referral],
        state: str | None,
        staff: Staff,
        asked: Page,
        request: Request,
        response: Response,
    ) -> list[dict[str, Any]]:
        found = after_cursor(
            (r for r in listed if state is None or r.state == state), box_order, asked
        )
        return [view(r, staff) for r in respond(found, box_order, asked, request, response)]

    @router.post("/referrals", status_code=201)
    def send(
        body: ReferralRequest,
        response: Response,
        staff: Staff = Caller,
        idempotency_key: str | None = Header(None, max_length=200),
    ) -> dict[str, Any]:
        """Send a slip. A retried request with the same Idempotency-Key returns the same one."""
        command = SendReferral(
            kind=body.kind,
            receiver=body.to,
            reason=body.reason,
            categories=body.categories,
            person_id=body.person_id,
            provisional_identity=body.provisional_identity,
            consent_id=body.consent_id,
            verbal_consent_witness=body.verbal_consent_witness,
            at=body.at,
        )
        sent = referrals.send(staff, command, consents, idempotency_key)
        if sent.replayed:
            response.status_code = 200
        after_command()
        return status_of(referrals.referral(sent.referral_id), referrals.settings)

    @router.get("/referrals/inbox")
    def inbox(
        request: Request,
        response: Response,
        state: str | None = None,
        asked: Page = Depends(page),
        staff: Staff = Caller,
    ) -> list[dict[str, Any]]:
        """What was sent to the caller's agency, oldest first, overdue acknowledgements flagged."""
        return box(referrals.inbox(staff.agency), state, staff, asked, request, response)

    @router.get("/referrals/outbox")
    def outbox(
        request: Request,
        response: Response,
        state: str | None = None,
        asked: Page = Depends(page),
        staff: Staff = Caller,
    ) -> list[dict[str, Any]]:
        """What the caller's agency sent: status only, declines needing action flagged."""
        return box(referrals.outbox(staff.agency), state, staff, asked, request, response)

    @router.get("/referrals/{referral_id}")
    def get(referral_id: UUID, staff: Staff = Caller) -> dict[str, Any]:
        return view(referrals.party_referral(staff, referral_id), staff)

    @router.post("/referrals/{referral_id}/reroute", status_code=201)
    def reroute(referral_id: UUID, body: RerouteRequest, staff: Staff = Caller) -> dict[str, Any]:
        new_id = referrals.reroute(staff, referral_id, body.to, body.reason, consents, body.at)
        after_command()
        return view(referrals.referral(new_id), staff)

    @router.post("/referrals/{referral_id}/follow-up")
    def follow_up(
        referral_id: UUID, body: FollowUpRequest, staff: Staff = Caller
    ) -> dict[str, Any]:
        """Close the loop of a decline: return to the sender, or note a resource gap."""
        referral = referrals.follow_up_decline(
            staff, referral_id, body.action, body.note, body.follow_up_on
        )
        after_command()
        return view(referral, staff)

    @router.post("/referrals/{referral_id}/person")
    def identify(referral_id: UUID, body: IdentifyRequest, staff: Staff = Caller) -> dict[str, Any]:
        referral = referrals.identify(staff, referral_id, body.person_id)
        after_command()
        return view(referral, staff)

    @router.post("/referrals/{referral_id}/{move}")
    def move(
        referral_id: UUID, move: Move, body: MoveRequest, staff: Staff = Caller
    ) -> dict[str, Any]:
        referral = referrals.move(staff, referral_id, move, body.reason, body.outcome, body.at)
        after_command()
        return view(referral, staff)

    return router
