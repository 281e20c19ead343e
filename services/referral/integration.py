"""Referral's domain events as integration events; keyed by the person, else the referral."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import DomainEvent

from contracts import events as ev
from services.platform.relay import translator
from services.referral.referral import Referral

SOURCE = "/tsunagu/referral"
MOVE_EVENTS: dict[str, type[ev.ReferralEvent]] = {
    "acknowledge": ev.ReferralAcknowledged,
    "accept": ev.ReferralAccepted,
    "decline": ev.ReferralDeclined,
    "start": ev.ReferralStarted,
    "hold": ev.ReferralPutOnHold,
    "complete": ev.ReferralCompleted,
    "fail": ev.ReferralFailed,
    "withdraw": ev.ReferralWithdrawn,
    "reroute": ev.ReferralRerouted,
}


def _translate(e: object) -> tuple[ev.ReferralEvent, str, UUID | None] | None:
    if not isinstance(e, DomainEvent):
        return None
    data: ev.ReferralEvent
    common = {"referral_id": e.originator_id}
    match e:
        case Referral.Sent():
            data = ev.ReferralSent(
                **common,
                sender=e.sender,
                receiver=e.receiver,
                person_id=e.person_id,
                agency=e.sender,
                staff_id=e.staff_id,
                at=e.at,
                kind=e.kind,
                reason=e.reason,
                categories=e.categories,
                basis=e.basis,
                basis_id=e.basis_id if e.basis == "consent" else None,
                provisional=e.provisional_identity is not None,
                rerouted_from=e.rerouted_from,
            )
        case Referral.Moved():
            fields = {
                **common,
                "sender": e.sender,
                "receiver": e.receiver,
                "person_id": e.person_id,
                "agency": e.agency,
                "staff_id": e.staff_id,
                "at": e.at,
                "reason": e.reason,
            }
            if e.move == "complete":
                fields["outcome"] = e.outcome
            if e.move == "reroute":
                fields["rerouted_to"] = e.rerouted_to
            data = MOVE_EVENTS[e.move].model_validate(fields)
        case Referral.DeclineFollowedUp():
            data = ev.ReferralDeclineFollowedUp(
                **common,
                sender=e.sender,
                receiver=e.receiver,
                person_id=e.person_id,
                agency=e.agency,
                staff_id=e.staff_id,
                at=e.at,
                action=e.action,
                note=e.note or "",
                follow_up_on=e.follow_up_on,
            )
        case Referral.PersonIdentified():
            data = ev.ReferralPersonIdentified(
                **common,
                sender=e.sender,
                receiver=e.receiver,
                person_id=e.person_id,
                agency=e.agency,
                staff_id=e.staff_id,
                at=e.at,
            )
        case _:
            return None
    return data, e.municipality, data.person_id


to_cloudevent = translator(_translate, SOURCE)
