"""The referral application: sending, moving and reading referrals, on `eventsourcing`.

Whether a referral may share its data categories is decided by the one disclosure policy, on
this service's replica of the consent ledger (fed from intake's events): the consent named must
cover every category for the receiver, when it is sent and each time the receiver reads it. A
referral stays within its municipality: no agency of another is a receiver, or a reader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from eventsourcing.domain import Aggregate
from pydantic import Field

from contracts import disclosure
from contracts.errors import Forbidden, Invalid, NotFound
from contracts.fields import Code, Codes, MapOf, Moment, Name, Reason, RequestModel
from contracts.identity import Staff
from contracts.reference import reference
from services.platform.calendar import past_or_now
from services.platform.disclose import Part, Shown, decide_parts
from services.platform.eventstore import TracingApplication, eventstore_env
from services.platform.sealed_events import Sealing
from services.platform.settings import Settings
from services.projection.person_facts import REFERRAL_STATUS, SLIP_ADDRESS
from services.referral.referral import KINDS, Referral

# A consent for support coordination also covers referrals within the support team.
REFERRAL_PURPOSES = ("referral", "support_coordination")
COMMUNITY_CATEGORIES = frozenset({"contact"})
ConsentLookup = Callable[[UUID], tuple[disclosure.Consent, ...]]


class SendReferral(RequestModel):
    """A slip to send: the body of ``POST /referrals`` and what the application takes."""

    kind: Code = Field(
        description="use_recommendation, connect_to_office, service_request, concern_from_community"
    )
    to: Code = Field(description="the receiving agency")
    reason: Reason
    categories: Codes
    person_id: UUID | None = None
    provisional_identity: MapOf[Name] | None = Field(
        default=None, description="who the slip is about, while the person is not registered"
    )
    consent_id: UUID | None = None
    verbal_consent_witness: Name | None = Field(
        default=None,
        description="for a provisional person only: the sender's witnessed verbal consent",
    )
    at: Moment | None = None


@dataclass(frozen=True)
class Sent:
    referral_id: UUID
    replayed: bool


@dataclass(frozen=True)
class SlipReading:
    """What the receiver may read of a slip now: each category with its basis, and the rest
    with the reason; whether its reason (which speaks of all its categories) and the
    provisional identity may be shown."""

    shown: Shown
    withheld: dict[str, str]
    reason: bool
    provisional_identity: bool


class ReferralApplication(TracingApplication):
    name = "referral"

    def __init__(self, settings: Settings, sealing: Sealing | None = None) -> None:
        super().__init__(eventstore_env(settings, "referral"), sealing)
        self.settings = settings

    def send(
        self,
        staff: Staff,
        command: SendReferral,
        consents: ConsentLookup,
        idempotency_key: str | None = None,
    ) -> Sent:
        if idempotency_key:
            earlier = self.find(Referral, Referral.create_id(staff.agency, idempotency_key))
            if earlier is not None:
                return Sent(earlier.id, replayed=True)
        self._check(staff, command)
        basis, basis_id = self._basis(staff, command, consents)
        referral = Referral(
            municipality=staff.municipality,
            kind=command.kind,
            sender=staff.agency,
            receiver=command.to,
            staff_id=staff.staff_id,
            at=past_or_now("at", command.at),
            person_id=command.person_id,
            provisional_identity=command.provisional_identity,
            reason=command.reason,
            categories=list(dict.fromkeys(command.categories)),
            basis=basis,
            basis_id=basis_id,
            rerouted_from=None,
            idempotency_key=idempotency_key,
        )
        self._save_new(referral)
        return Sent(referral.id, replayed=False)

    def move(
        self,
        staff: Staff,
        referral_id: UUID,
        move: str,
        reason: str | None = None,
        outcome: str | None = None,
        at: datetime | None = None,
    ) -> Referral:
        if move == "reroute":
            raise Invalid("move", "use_reroute", "reroute names a new receiver: POST …/reroute")
        referral = self.referral_here(staff, referral_id)
        referral.move(
            move,
            agency=staff.agency,
            staff_id=staff.staff_id,
            at=past_or_now("at", at),
            reason=reason,
            outcome=outcome,
        )
        self.save(referral)
        return referral

    def reroute(
        self,
        staff: Staff,
        referral_id: UUID,
        to: str,
        reason: str,
        consents: ConsentLookup,
        at: datetime | None = None,
    ) -> UUID:
        """Close this referral as rerouted and send its like to ``to``, on the same basis."""
        old = self.referral_here(staff, referral_id)
        moment = past_or_now("at", at)
        # Made of the stored slip's values, checked when it was sent (its provisional identity
        # is sealed by now): taken as they are, not validated as a request body again.
        command = SendReferral.model_construct(
            kind=old.kind,
            to=to,
            reason=reason,
            categories=old.categories,
            person_id=old.person_id,
            provisional_identity=old.provisional_identity,
            consent_id=UUID(old.basis_id) if old.basis == "consent" and old.basis_id else None,
            verbal_consent_witness=None,
            at=moment,
        )
        sender = Staff(staff.staff_id, old.sender, staff.roles, staff.municipality)
        self._check(sender, command)
        if old.basis == "verbal_consent":
            raise Forbidden(
                "a verbal consent covered only the first receiver; record a consent naming "
                f"{to!r} before rerouting"
            )
        basis, basis_id = self._basis(sender, command, consents)
        new = Referral(
            municipality=old.municipality,
            kind=old.kind,
            sender=old.sender,
            receiver=to,
            staff_id=staff.staff_id,
            at=moment,
            person_id=old.person_id,
            provisional_identity=old.provisional_identity,
            reason=reason,
            categories=old.categories,
            basis=basis,
            basis_id=basis_id,
            rerouted_from=old.id,
            idempotency_key=None,
        )
        old.move(
            "reroute",
            agency=staff.agency,
            staff_id=staff.staff_id,
            at=moment,
            reason=reason,
            rerouted_to=new.id,
        )
        self._save_new(new, old)
        return new.id

    def follow_up_decline(
        self,
        staff: Staff,
        referral_id: UUID,
        action: str,
        note: str | None,
        follow_up_on: datetime | None = None,
        at: datetime | None = None,
    ) -> Referral:
        referral = self.referral_here(staff, referral_id)
        referral.follow_up_decline(
            action,
            agency=staff.agency,
            staff_id=staff.staff_id,
            at=past_or_now("at", at),
            note=note,
            follow_up_on=follow_up_on,
        )
        self.save(referral)
        return referral

    def identify(self, staff: Staff, referral_id: UUID, person_id: UUID) -> Referral:
        """Only the two ends of a slip know whom it was about."""
        referral = self.party_referral(staff, referral_id)
        referral.identify(
            person_id, agency=staff.agency, staff_id=staff.staff_id, at=datetime.now(UTC)
        )
        self.save(referral)
        return referral

    def referral(self, referral_id: UUID) -> Referral:
        found = self.find(Referral, referral_id)
        if found is None:
            raise NotFound(f"no referral {referral_id}")
        return found

    def referral_here(self, staff: Staff, referral_id: UUID) -> Referral:
        """The referral, if it is of the caller's municipality; another's is not found."""
        referral = self.referral(referral_id)
        if referral.municipality != staff.municipality:
            raise NotFound(f"no referral {referral_id} in {staff.municipality}")
        return referral

    def party_referral(self, staff: Staff, referral_id: UUID) -> Referral:
        referral = self.referral_here(staff, referral_id)
        if staff.agency not in (referral.sender, referral.receiver):
            raise Forbidden(f"{staff.agency!r} is neither sender nor receiver of this referral")
        return referral

    def slip_reading(
        self, staff: Staff, referral: Referral, consents: ConsentLookup
    ) -> SlipReading:
        """The receiver's slip, decided category by category now: on the consent it was sent
        under (withdrawn since, its content is no longer shown), or on the slip's own basis
        for a person not registered yet (a witnessed verbal consent, a community concern)."""
        ends = frozenset({referral.sender, referral.receiver})
        parts = [
            Part(c, ends if c == REFERRAL_STATUS else frozenset({referral.sender}), {})
            for c in referral.categories
        ]
        if referral.basis == "consent" and referral.person_id is not None:
            record = disclosure.PersonRecord(
                str(referral.person_id), {}, consents=consents(referral.person_id)
            )
            viewer = disclosure.Viewer(staff.agency, staff.staff_id)
            decided = decide_parts(viewer, record, parts, REFERRAL_PURPOSES, datetime.now(UTC))
            shown, withheld = decided.shown, decided.withheld
        else:
            shown = {c: (referral.basis, referral.basis_id) for c in referral.categories}
            withheld = {}
        content = [c for c in referral.categories if c not in SLIP_ADDRESS] or [REFERRAL_STATUS]
        return SlipReading(
            shown={**shown, REFERRAL_STATUS: shown.get(REFERRAL_STATUS, ("own_record", None))},
            withheld=withheld,
            reason=all(c in shown for c in content),
            provisional_identity="identity" in shown,
        )

    def inbox(self, agency: str) -> list[Referral]:
        return sorted(self._listed(f"inbox:{agency}"), key=box_order)

    def outbox(self, agency: str) -> list[Referral]:
        return sorted(self._listed(f"outbox:{agency}"), key=box_order)

    def _check(self, staff: Staff, command: SendReferral) -> None:
        ref = reference()
        if command.kind not in KINDS:
            raise Invalid("kind", "reference_code", f"unknown kind {command.kind!r}", allowed=KINDS)
        # The field as the caller names it: ``to`` on a slip and on a reroute alike.
        if not ref.in_municipality(command.to, staff.municipality):
            raise Invalid(
                "to",
                "reference_code",
                f"unknown agency {command.to!r} in {staff.municipality}",
                allowed=tuple(
                    a.id for a in ref.agencies.values() if a.municipality == staff.municipality
                ),
            )
        if command.to == staff.agency:
            raise Invalid("to", "not_self", "an agency cannot refer a person to itself")
        if not command.reason.strip():
            raise Invalid("reason", "required", "a referral says why")
        if not command.categories:
            raise Invalid(
                "categories",
                "not_empty",
                "name the data categories the slip shares",
                allowed=ref.data_categories,
            )
        for category in command.categories:
            if category not in ref.data_categories:
                raise Invalid(
                    "categories",
                    "reference_code",
                    f"unknown category {category!r}",
                    allowed=ref.data_categories,
                )
        if (command.person_id is None) == (command.provisional_identity is None):
            raise Invalid(
                "person_id", "one_of", "name either a registered person or a provisional identity"
            )

    def _basis(
        self, staff: Staff, command: SendReferral, consents: ConsentLookup
    ) -> tuple[str, str | None]:
        """The legal basis for sharing the categories, or 403 naming what is not covered."""
        categories = set(command.categories)
        if command.consent_id is not None:
            return "consent", self._consent_basis(command, consents)
        if command.kind == "concern_from_community" and categories <= COMMUNITY_CATEGORIES:
            return "community_concern", None
        if command.person_id is None and command.verbal_consent_witness:
            return "verbal_consent", command.verbal_consent_witness
        missing = (
            sorted(categories - COMMUNITY_CATEGORIES)
            if command.kind == ("concern_from_community")
            else sorted(categories)
        )
        raise Forbidden(
            f"no basis to share {missing} with {command.to!r}: name a consent that covers "
            "them (a community concern shares only contact and reason)",
            missing_categories=missing,
            recipient=command.to,
        )

    def _consent_basis(self, command: SendReferral, consents: ConsentLookup) -> str:
        assert command.consent_id is not None
        if command.person_id is None:
            raise Invalid("person_id", "required", "a consent is a registered person's")
        consent = next(
            (c for c in consents(command.person_id) if c.consent_id == str(command.consent_id)),
            None,
        )
        if consent is None:
            raise Forbidden(
                f"consent {command.consent_id} is not known for this person (yet)",
                missing_categories=sorted(command.categories),
                recipient=command.to,
            )
        record = disclosure.PersonRecord(str(command.person_id), {}, consents=(consent,))
        viewer = disclosure.Viewer(command.to, "")
        now = datetime.now(UTC)
        missing = sorted(
            category
            for category in set(command.categories)
            if not any(
                disclosure.decide(viewer, record, category, purpose, now).allowed
                for purpose in REFERRAL_PURPOSES
            )
        )
        if missing:
            raise Forbidden(
                f"consent {consent.consent_id} does not cover {missing} for {command.to!r}",
                missing_categories=missing,
                recipient=command.to,
            )
        return consent.consent_id

    def _save_new(self, referral: Referral, *others: Aggregate) -> None:
        inbox = self.listed(f"inbox:{referral.receiver}", referral.id)
        outbox = self.listed(f"outbox:{referral.sender}", referral.id)
        self.save(referral, *others, inbox, outbox)

    def _listed(self, key: str) -> list[Referral]:
        index = self.index(key)
        return [self.referral(i) for i in (index.ids if index else [])]


def box_order(referral: Referral) -> tuple[str, str]:
    """A box's order, oldest slip first; also the key a page of the box starts after."""
    sent = referral.sent_at.astimezone(UTC).isoformat(timespec="microseconds")
    return (sent, str(referral.id))
