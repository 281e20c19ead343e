"""Referral's domain events as integration events; keyed by the person, else the referral."""

from __future__ import annotations

from typing import Any

from contracts import events as ev
from services.platform.publishing import Published, translation
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


def _move(e: Any) -> type[ev.ReferralEvent]:
    return MOVE_EVENTS[e.move]


PUBLISHED = (
    Published(
        Referral.Sent,
        ev.ReferralSent,
        "referral_id",
        {
            "agency": "sender",
            # Only a consent is named by id to other services; other bases by kind.
            "basis_id": lambda e: e.basis_id if e.basis == "consent" else None,
            # A provisional identity stays on the slip: only that there is one crosses.
            "provisional": lambda e: e.provisional_identity is not None,
        },
    ),
    Published(
        Referral.Moved,
        ev.ReferralEvent,
        "referral_id",
        chosen_by=_move,
        variants=tuple(MOVE_EVENTS.values()),
    ),
    Published(
        Referral.DeclineFollowedUp,
        ev.ReferralDeclineFollowedUp,
        "referral_id",
        {"note": lambda e: e.note or ""},
    ),
    Published(Referral.PersonIdentified, ev.ReferralPersonIdentified, "referral_id"),
)

to_cloudevent = translator(translation(PUBLISHED), SOURCE)
