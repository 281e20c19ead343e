"""Referral's integration events: the closed loop of a つなぐシート between two agencies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field

from contracts.events import Act, register
from contracts.personal import CODE, NotPersonal, Personal

# A slip may speak of someone not registered yet (a provisional person): what it says is the
# referral's own, tied to the person when the receiver identifies them.
OF_REFERRAL = Personal(subject="referral_id")

__all__ = [
    "ReferralAccepted",
    "ReferralAcknowledged",
    "ReferralCompleted",
    "ReferralDeclineFollowedUp",
    "ReferralDeclined",
    "ReferralEvent",
    "ReferralFailed",
    "ReferralPersonIdentified",
    "ReferralPutOnHold",
    "ReferralRerouted",
    "ReferralSent",
    "ReferralStarted",
    "ReferralWithdrawn",
]


class ReferralEvent(Act):
    """Every referral event names both ends, so a reader needs no earlier event to route it."""

    service: ClassVar[str] = "referral"
    version: ClassVar[int] = 1

    referral_id: UUID
    sender: Annotated[str, CODE]
    receiver: Annotated[str, CODE]
    person_id: UUID | None = None


@register
class ReferralSent(ReferralEvent):
    name: ClassVar[str] = "ReferralSent"
    summary: ClassVar[str] = (
        "A referral slip was sent: kind, reason, the data categories it shares and their legal "
        "basis (consent id, a verbal consent for a provisional person, or a community concern)."
    )

    kind: Annotated[str, CODE]
    reason: Annotated[str, OF_REFERRAL]
    categories: Annotated[list[str], CODE] = Field(min_length=1)
    basis: Annotated[str, CODE]
    basis_id: Annotated[str | None, NotPersonal("a consent's id; other bases are not named")] = None
    provisional: bool
    rerouted_from: UUID | None = None


class _Move(ReferralEvent):
    reason: Annotated[str | None, OF_REFERRAL] = None


@register
class ReferralAcknowledged(_Move):
    name: ClassVar[str] = "ReferralAcknowledged"
    summary: ClassVar[str] = "The receiver acknowledged the referral."


@register
class ReferralAccepted(_Move):
    name: ClassVar[str] = "ReferralAccepted"
    summary: ClassVar[str] = "The receiver accepted the referral: the person is connected."


@register
class ReferralDeclined(_Move):
    name: ClassVar[str] = "ReferralDeclined"
    summary: ClassVar[str] = "The receiver declined, with a reason; the sender must follow up."


@register
class ReferralStarted(_Move):
    name: ClassVar[str] = "ReferralStarted"
    summary: ClassVar[str] = "The receiver's support for the person is in progress."


@register
class ReferralPutOnHold(_Move):
    name: ClassVar[str] = "ReferralPutOnHold"
    summary: ClassVar[str] = "The receiver put the referral on hold, with a reason."


@register
class ReferralCompleted(_Move):
    name: ClassVar[str] = "ReferralCompleted"
    summary: ClassVar[str] = "The receiver completed the referral, with an outcome."

    outcome: Annotated[str, OF_REFERRAL]


@register
class ReferralFailed(_Move):
    name: ClassVar[str] = "ReferralFailed"
    summary: ClassVar[str] = "The support the referral asked for could not be given, with a reason."


@register
class ReferralWithdrawn(_Move):
    name: ClassVar[str] = "ReferralWithdrawn"
    summary: ClassVar[str] = "The sender withdrew the referral, with a reason."


@register
class ReferralRerouted(_Move):
    name: ClassVar[str] = "ReferralRerouted"
    summary: ClassVar[str] = "The referral was passed to another agency as a new referral."

    rerouted_to: UUID


@register
class ReferralDeclineFollowedUp(ReferralEvent):
    name: ClassVar[str] = "ReferralDeclineFollowedUp"
    summary: ClassVar[str] = (
        "The sender closed the loop of a decline: returned to itself with a follow-up date, or "
        "noted as a resource gap for the regular meeting."
    )

    action: Annotated[str, CODE]
    note: Annotated[str, OF_REFERRAL]
    follow_up_on: datetime | None = None


@register
class ReferralPersonIdentified(ReferralEvent):
    name: ClassVar[str] = "ReferralPersonIdentified"
    summary: ClassVar[str] = "The receiver registered the person a provisional referral spoke of."
