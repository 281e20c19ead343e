"""The disclosure policy: may this agency see this category of this person's data?

One pure function, ``decide``, answers for every view, replay and export, so that the rules live
in one place and can be tested exhaustively. Bases are checked in a fixed order and the first that
applies wins: the agency's own record, the person's consent (本人同意), membership of an Article 9
support meeting (支援会議, 生活困窮者自立支援法第9条), a supervisor's vital-interest declaration.
Tax information (地方税法第22条) is shared only on the first two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from contracts.reference import reference

PURPOSES = ("support_coordination", "referral", "meeting")
TAX = "tax"
BASES = ("own_record", "consent", "article9_meeting", "vital_interest")


@dataclass(frozen=True)
class Viewer:
    agency: str
    staff_id: str


@dataclass(frozen=True)
class Withdrawal:
    """A withdrawal of (part of) a consent; ``None`` means the whole of that dimension."""

    withdrawal_id: str
    at: datetime
    recipients: frozenset[str] | None
    categories: frozenset[str] | None

    def matches(self, recipient: str, category: str) -> bool:
        return (self.recipients is None or recipient in self.recipients) and (
            self.categories is None or category in self.categories
        )


@dataclass(frozen=True)
class Consent:
    """本人同意, as the consent ledger knows it: scoped by recipient, category, purpose, period."""

    consent_id: str
    person_id: str
    recipients: frozenset[str]
    categories: frozenset[str]
    purposes: frozenset[str]
    valid_from: datetime
    valid_until: datetime  # exclusive
    withdrawals: tuple[Withdrawal, ...] = ()

    def covers(self, recipient: str, category: str, purpose: str, at: datetime) -> bool:
        if not (self.valid_from <= at < self.valid_until):
            return False
        if (
            recipient not in self.recipients
            or category not in self.categories
            or purpose not in self.purposes
        ):
            return False
        # A withdrawal takes effect from its own instant on: a read at that very instant is
        # already after the person said no.
        return not any(w.at <= at and w.matches(recipient, category) for w in self.withdrawals)


@dataclass(frozen=True)
class MeetingMembership:
    """An agency's membership of a 支援会議 (生活困窮者自立支援法第9条) on this person."""

    meeting_id: str
    agency: str
    valid_from: datetime
    valid_until: datetime  # exclusive

    def active(self, at: datetime) -> bool:
        return self.valid_from <= at < self.valid_until


@dataclass(frozen=True)
class VitalInterest:
    """生命・身体の保護: a supervisor's time-limited emergency declaration.

    The 72-hour cap is enforced where declarations are made; ``decide`` honours the window as
    recorded, so a policy change there needs no change here.
    """

    declaration_id: str
    recipients: frozenset[str]
    categories: frozenset[str]
    valid_from: datetime
    valid_until: datetime  # exclusive

    def covers(self, recipient: str, category: str, at: datetime) -> bool:
        return (
            recipient in self.recipients
            and category in self.categories
            and self.valid_from <= at < self.valid_until
        )


@dataclass(frozen=True)
class PersonRecord:
    """Everything ``decide`` needs to know about one person."""

    person_id: str
    recorded_by: Mapping[str, frozenset[str]]  # category -> agencies that recorded it themselves
    consents: tuple[Consent, ...] = ()
    memberships: tuple[MeetingMembership, ...] = ()
    vital_interests: tuple[VitalInterest, ...] = ()


@dataclass(frozen=True)
class Allow:
    basis: str  # one of BASES
    basis_id: str | None  # consent, meeting or declaration id; None for own_record

    @property
    def allowed(self) -> bool:
        return True


@dataclass(frozen=True)
class Deny:
    reason: str

    @property
    def allowed(self) -> bool:
        return False


Decision = Allow | Deny

_T = TypeVar("_T")


def _latest(
    items: Iterable[_T], start: Callable[[_T], datetime], ident: Callable[[_T], str]
) -> _T | None:
    """The item that started last, ties broken by the smallest id; None if there is none.

    Several bases of one kind can apply at once; the audit log records the one chosen, so the
    choice must not depend on the order the ledger happened to list them in.
    """
    by_id = sorted(items, key=ident)
    # sorted is stable with reverse=True too, so equal starts keep the ascending-id order.
    by_start = sorted(by_id, key=start, reverse=True)
    return by_start[0] if by_start else None


def _check(category: str, purpose: str) -> None:
    # An unknown name is a bug in the caller, not a person's choice: denying would hide the bug
    # behind a plausible-looking "no basis".
    categories = reference().data_categories
    if category not in categories:
        raise ValueError(f"unknown data category {category!r}; expected one of {categories}")
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}; expected one of {PURPOSES}")


def decide(
    viewer: Viewer, person: PersonRecord, category: str, purpose: str, at: datetime
) -> Decision:
    """Whether ``viewer``'s agency may see ``category`` of ``person`` for ``purpose`` at ``at``."""
    _check(category, purpose)
    agency = viewer.agency

    if agency in person.recorded_by.get(category, frozenset()):
        return Allow("own_record", None)

    # A consent filed under another person must never open this one's record, whatever the
    # caller assembled.
    consents = [
        c
        for c in person.consents
        if c.person_id == person.person_id and c.covers(agency, category, purpose, at)
    ]
    consent = _latest(consents, lambda c: c.valid_from, lambda c: c.consent_id)
    if consent is not None:
        return Allow("consent", consent.consent_id)

    memberships = [m for m in person.memberships if m.agency == agency and m.active(at)]
    meeting = _latest(memberships, lambda m: m.valid_from, lambda m: m.meeting_id)
    if meeting is not None and category != TAX:
        return Allow("article9_meeting", meeting.meeting_id)

    # Tax is excluded here too. 地方税法第22条 punishes disclosing tax secrets and, unlike the
    # Personal Information Protection Act, lists no exception for protecting life or body; the
    # design (seed 004, section 5) takes the person's consent as the only way to share them, and
    # a supervisor's declaration is not the person's consent.
    declarations = [d for d in person.vital_interests if d.covers(agency, category, at)]
    declaration = _latest(declarations, lambda d: d.valid_from, lambda d: d.declaration_id)
    if declaration is not None and category != TAX:
        return Allow("vital_interest", declaration.declaration_id)

    # Only tax reaches here with a meeting or declaration in force; say why, or a meeting member
    # would take the denial for a missing membership.
    missing = [f"no consent in force for purpose {purpose}"]
    if meeting is not None:
        missing.append(
            f"Article 9 meeting {meeting.meeting_id} does not extend to tax "
            "(地方税法第22条: tax information is shared only with the person's consent)"
        )
    else:
        missing.append("no Article 9 meeting membership")
    if declaration is not None:
        missing.append(
            f"vital-interest declaration {declaration.declaration_id} does not extend to tax "
            "(地方税法第22条)"
        )
    else:
        missing.append("no vital-interest declaration")
    return Deny(f"no basis for {agency} to see {category} of this person: " + ", ".join(missing))


def visible_categories(
    viewer: Viewer, person: PersonRecord, purpose: str, at: datetime
) -> dict[str, Allow]:
    """Every data category ``decide`` allows, with its basis, in reference order."""
    shown: dict[str, Allow] = {}
    for category in reference().data_categories:
        decision = decide(viewer, person, category, purpose, at)
        if isinstance(decision, Allow):
            shown[category] = decision
    return shown
