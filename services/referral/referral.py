"""Referral (つなぐ): a slip (つなぐシート) from one agency to another about one person.

A referral is a closed loop: the sender always learns what became of it, and a decline is never
a silent end — within a set number of days it is rerouted, returned to the sender with the
sender's follow-up, or recorded as a resource gap (社会資源の不足) for the regular meeting.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from contracts.errors import Conflict, Forbidden, Invalid, not_before
from contracts.personal import CODE, IDENTIFIER
from services.platform.acts import OF_AGGREGATE, Act

# 利用勧奨 (法8条), connection to the support office, a service request to a provider, or a
# concern from the community (a neighbour or minsei volunteer, who may not know of any consent).
KINDS = ("use_recommendation", "connect_to_office", "service_request", "concern_from_community")
SENDER, RECEIVER, EITHER = "sender", "receiver", "either"
_IDEMPOTENCY = uuid5(NAMESPACE_URL, "urn:tsunagu:referral:idempotency")

# move -> (who may make it, states it may start from, state it leads to, reason required)
MOVES: dict[str, tuple[str, tuple[str, ...], str, bool]] = {
    "withdraw": (SENDER, ("sent",), "withdrawn", True),
    "acknowledge": (RECEIVER, ("sent",), "acknowledged", False),
    "accept": (RECEIVER, ("sent", "acknowledged"), "accepted", False),
    "decline": (RECEIVER, ("sent", "acknowledged"), "declined", True),
    "start": (RECEIVER, ("accepted", "on_hold"), "in_progress", False),
    "hold": (RECEIVER, ("accepted", "in_progress"), "on_hold", True),
    "complete": (RECEIVER, ("accepted", "in_progress", "on_hold"), "completed", False),
    "fail": (RECEIVER, ("accepted", "in_progress", "on_hold"), "failed", True),
    "reroute": (EITHER, ("sent", "acknowledged", "declined", "on_hold"), "rerouted", True),
}
# After a decline, the sender closes the loop one of these ways (a reroute also closes it).
FOLLOW_UPS = ("return_to_sender", "resource_gap")
# Closing a decline's loop, named as a desk offers it beside the moves (its route's name).
FOLLOW_UP = "follow-up"


def allowed_moves(state: str) -> list[str]:
    return [move for move, (_, starts, _, _) in MOVES.items() if state in starts]


# The overdue rules, on a referral's state alone: the aggregate and the desk's boxes (a view of
# referrals, in another service) answer by the same rule.


def acknowledgement_overdue(
    state: str, sent_at: datetime | None, now: datetime, deadline_hours: int
) -> bool:
    """A slip still only sent, longer than ``deadline_hours`` ago (not yet, at exactly then)."""
    return (
        state == "sent" and sent_at is not None and now - sent_at > timedelta(hours=deadline_hours)
    )


def follow_up_overdue(
    state: str, followed_up: bool, declined_at: datetime | None, now: datetime, days: int
) -> bool:
    """A decline nobody has followed up, more than ``days`` after it (not yet, at exactly then)."""
    return (
        state == "declined"
        and not followed_up
        and declined_at is not None
        and now - declined_at > timedelta(days=days)
    )


class Referral(Aggregate):
    class Sent(Aggregate.Created):
        """Not a ``Founding``: the agency that acts is the sender, stored as ``sender``."""

        municipality: Annotated[str, CODE]
        kind: str
        sender: str
        receiver: str
        staff_id: str
        at: datetime
        person_id: UUID | None
        provisional_identity: Annotated[dict[str, str] | None, OF_AGGREGATE]
        reason: str
        categories: list[str]
        basis: str
        basis_id: Annotated[str | None, IDENTIFIER]
        rerouted_from: UUID | None
        idempotency_key: Annotated[str | None, IDENTIFIER]

    class Step(Act):
        """Every step after the send names both ends, whichever of them (``agency``) acts."""

        sender: Annotated[str, CODE]
        receiver: Annotated[str, CODE]
        person_id: UUID | None

    class Moved(Step):
        """One step of the state machine; ``move`` names it (accept, decline, complete…)."""

        move: Annotated[str, CODE]
        state: Annotated[str, CODE]
        reason: str | None
        outcome: str | None
        rerouted_to: UUID | None

    class DeclineFollowedUp(Step):
        action: str
        note: Annotated[str | None, OF_AGGREGATE]
        follow_up_on: datetime | None

    class PersonIdentified(Step):
        person_id: UUID

    @event(Sent)
    def __init__(
        self,
        *,
        municipality: str,
        kind: str,
        sender: str,
        receiver: str,
        staff_id: str,
        at: datetime,
        person_id: UUID | None,
        provisional_identity: dict[str, str] | None,
        reason: str,
        categories: list[str],
        basis: str,
        basis_id: str | None,
        rerouted_from: UUID | None,
        idempotency_key: str | None,
    ) -> None:
        self.municipality = municipality
        self.kind = kind
        self.sender = sender
        self.receiver = receiver
        self.sent_at = at
        self.person_id = person_id
        self.provisional_identity = provisional_identity
        self.reason = reason
        self.categories = categories
        self.basis = basis
        self.basis_id = basis_id
        self.rerouted_from = rerouted_from
        self.state = "sent"
        self.state_at = at
        self.acknowledged_at: datetime | None = None
        self.declined_at: datetime | None = None
        self.decline_followed_up = False
        self.outcome: str | None = None
        self.rerouted_to: UUID | None = None
        self.history: list[tuple[str, str, datetime]] = [("sent", sender, at)]

    @staticmethod
    def create_id(sender: str, idempotency_key: str | None) -> UUID:
        """A retried send with the same key is the same referral."""
        if idempotency_key is None:
            return uuid4()
        return uuid5(_IDEMPOTENCY, f"{sender}:{idempotency_key}")

    def move(
        self,
        move: str,
        *,
        agency: str,
        staff_id: str,
        at: datetime,
        reason: str | None = None,
        outcome: str | None = None,
        rerouted_to: UUID | None = None,
    ) -> None:
        if move not in MOVES:
            raise Invalid("move", "reference_code", f"unknown move {move!r}", allowed=tuple(MOVES))
        who, starts, target, needs_reason = MOVES[move]
        side = self._side(agency)
        if side is None:
            raise Forbidden(f"{agency!r} is neither the sender nor the receiver of this referral")
        if who != EITHER and side != who:
            raise Forbidden(f"only the {who} may {move} a referral; {agency!r} is not its {who}")
        if self.state not in starts:
            raise Conflict(
                f"cannot {move} a referral that is {self.state}",
                state=self.state,
                allowed_moves=allowed_moves(self.state),
            )
        if needs_reason and not (reason and reason.strip()):
            raise Invalid("reason", "required", f"a reason is required to {move}")
        if move == "complete" and not (outcome and outcome.strip()):
            raise Invalid("outcome", "required", "completion carries an outcome")
        self._not_before_last_step(at)
        self._move(
            municipality=self.municipality,
            sender=self.sender,
            receiver=self.receiver,
            person_id=self.person_id,
            move=move,
            state=target,
            agency=agency,
            staff_id=staff_id,
            at=at,
            reason=reason,
            outcome=outcome,
            rerouted_to=rerouted_to,
        )

    @event(Moved)
    def _move(
        self,
        municipality: str,
        sender: str,
        receiver: str,
        person_id: UUID | None,
        move: str,
        state: str,
        agency: str,
        staff_id: str,
        at: datetime,
        reason: str | None,
        outcome: str | None,
        rerouted_to: UUID | None,
    ) -> None:
        self.state, self.state_at = state, at
        if move == "acknowledge" or (move in ("accept", "decline") and not self.acknowledged_at):
            self.acknowledged_at = at
        if move == "decline":
            self.declined_at = at
        if move == "reroute":
            self.decline_followed_up = True
            self.rerouted_to = rerouted_to
        if outcome is not None:
            self.outcome = outcome
        self.history.append((state, agency, at))

    def follow_up_decline(
        self,
        action: str,
        *,
        agency: str,
        staff_id: str,
        at: datetime,
        note: str | None,
        follow_up_on: datetime | None,
    ) -> None:
        if self._side(agency) != SENDER:
            raise Forbidden("only the sender follows up a declined referral")
        if not self._awaits_follow_up():
            raise Conflict(
                f"only a declined referral not yet followed up can be; this one is {self.state}",
                state=self.state,
                allowed_moves=allowed_moves(self.state),
            )
        if action not in FOLLOW_UPS:
            raise Invalid(
                "action",
                "reference_code",
                f"unknown follow-up {action!r}",
                allowed=(*FOLLOW_UPS, "reroute"),
            )
        if not (note and note.strip()):
            raise Invalid("note", "required", "say what the sender will do, or what is missing")
        if action == "return_to_sender" and follow_up_on is None:
            raise Invalid(
                "follow_up_on", "required", "a return to the sender keeps a follow-up date"
            )
        self._not_before_last_step(at)
        self._follow_up(
            municipality=self.municipality,
            sender=self.sender,
            receiver=self.receiver,
            person_id=self.person_id,
            action=action,
            agency=agency,
            staff_id=staff_id,
            at=at,
            note=note,
            follow_up_on=follow_up_on,
        )

    @event(DeclineFollowedUp)
    def _follow_up(
        self,
        municipality: str,
        sender: str,
        receiver: str,
        person_id: UUID | None,
        action: str,
        agency: str,
        staff_id: str,
        at: datetime,
        note: str | None,
        follow_up_on: datetime | None,
    ) -> None:
        self.decline_followed_up = True

    def identify(self, person_id: UUID, *, agency: str, staff_id: str, at: datetime) -> None:
        """The receiver registered the person a provisional referral spoke of."""
        if self._side(agency) != RECEIVER:
            raise Forbidden("only the receiver registers the person of a referral")
        if self.person_id is not None:
            raise Conflict(f"the referral already names person {self.person_id}")
        self._identify(
            municipality=self.municipality,
            sender=self.sender,
            receiver=self.receiver,
            person_id=person_id,
            agency=agency,
            staff_id=staff_id,
            at=at,
        )

    @event(PersonIdentified)
    def _identify(
        self,
        municipality: str,
        sender: str,
        receiver: str,
        person_id: UUID,
        agency: str,
        staff_id: str,
        at: datetime,
    ) -> None:
        self.person_id = person_id

    def open_moves(self, agency: str) -> list[str]:
        """What ``agency`` may do to the referral now, by ``MOVES`` (and the decline's
        follow-up): what a desk offers, so that it never offers a move the API refuses."""
        side = self._side(agency)
        if side is None:
            return []
        moves = [
            move
            for move, (who, starts, _, _) in MOVES.items()
            if self.state in starts and who in (side, EITHER)
        ]
        if side == SENDER and self._awaits_follow_up():
            moves.append(FOLLOW_UP)
        return moves

    def _awaits_follow_up(self) -> bool:
        return self.state == "declined" and not self.decline_followed_up

    def needs_action(self, now: datetime, follow_up_days: int) -> bool:
        return follow_up_overdue(
            self.state, self.decline_followed_up, self.declined_at, now, follow_up_days
        )

    def acknowledgement_overdue(self, now: datetime, deadline_hours: int) -> bool:
        return acknowledgement_overdue(self.state, self.sent_at, now, deadline_hours)

    def _not_before_last_step(self, at: datetime) -> None:
        not_before("at", at, f"the referral's previous step ({self.state})", self.state_at)

    def _side(self, agency: str) -> str | None:
        if agency == self.sender:
            return SENDER
        if agency == self.receiver:
            return RECEIVER
        return None
