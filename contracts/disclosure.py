"""The disclosure policy: may this agency see this category of this person's data?

One pure function, ``decide``, answers for every view, replay and export, so that the rules live
in one place and can be tested exhaustively. Bases are checked in a fixed order and the first that
applies wins: the agency's own record, the person's consent (本人同意), membership of an Article 9
support meeting (支援会議, 生活困窮者自立支援法第9条), a supervisor's vital-interest declaration.
Tax information (地方税法第22条) is shared only on the first two.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
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

    def without_own(self, agency: str) -> PersonRecord:
        """The person as ``decide`` must see them for a fact ``agency`` did not record: its own
        record of other facts of the same category (a local id it filed, a slip it sent) is no
        basis for this one."""
        recorded_by = {c: a - {agency} for c, a in self.recorded_by.items() if a - {agency}}
        return replace(self, recorded_by=recorded_by)


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


def _by_start(
    items: Iterable[_T], start: Callable[[_T], datetime], ident: Callable[[_T], str]
) -> list[_T]:
    """Latest start first, ties broken by the smallest id.

    Several bases of one kind can apply at once; the audit log records the one chosen, so the
    choice must not depend on the order the ledger happened to list them in.
    """
    by_id = sorted(items, key=ident)
    # sorted is stable with reverse=True too, so equal starts keep the ascending-id order.
    return sorted(by_id, key=start, reverse=True)


def _latest(
    items: Iterable[_T], start: Callable[[_T], datetime], ident: Callable[[_T], str]
) -> _T | None:
    """The item that started last (see ``_by_start``); None if there is none."""
    ordered = _by_start(items, start, ident)
    return ordered[0] if ordered else None


def _check(category: str, purpose: str) -> None:
    # An unknown name is a bug in the caller, not a person's choice: denying would hide the bug
    # behind a plausible-looking "no basis".
    categories = reference().data_categories
    if category not in categories:
        raise ValueError(f"unknown data category {category!r}; expected one of {categories}")
    _check_purpose(purpose)


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}; expected one of {PURPOSES}")


def decide(
    viewer: Viewer, person: PersonRecord, category: str, purpose: str, at: datetime
) -> Decision:
    """Whether ``viewer``'s agency may see ``category`` of ``person`` for ``purpose`` at ``at``.

    ``own_record`` answers for the category as a whole: a view shows an agency the facts it
    recorded itself on it, and any other fact only as ``decide_fact`` allows."""
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


def decide_fact(
    viewer: Viewer,
    person: PersonRecord,
    category: str,
    recorded_by: Collection[str],
    purpose: str,
    at: datetime,
) -> Decision:
    """``decide`` for one fact, recorded by the agencies ``recorded_by`` (both ends, for a
    referral's status): own record means the viewer's agency recorded this very fact. Any
    other fact of the person, even of a category the agency holds facts of, needs a consent, a
    支援会議 membership or a vital-interest declaration."""
    _check(category, purpose)
    if viewer.agency in recorded_by:
        return Allow("own_record", None)
    return decide(viewer, person.without_own(viewer.agency), category, purpose, at)


@dataclass(frozen=True)
class _Bases:
    """One agency's bases in force at one instant, each kind in ``decide``'s order of choice:
    worked out once when many categories and purposes are asked about together."""

    own: frozenset[str]
    # consents in force, latest first, each with the categories it still covers for the agency
    consents: tuple[tuple[Consent, frozenset[str]], ...]
    meeting: MeetingMembership | None
    declarations: tuple[VitalInterest, ...]

    @classmethod
    def of(cls, agency: str, person: PersonRecord, at: datetime) -> _Bases:
        consents = _by_start(
            (
                c
                for c in person.consents
                if c.person_id == person.person_id
                and agency in c.recipients
                and c.valid_from <= at < c.valid_until
            ),
            lambda c: c.valid_from,
            lambda c: c.consent_id,
        )

        def still_covered(consent: Consent) -> frozenset[str]:
            withdrawn = [w for w in consent.withdrawals if w.at <= at]
            return frozenset(
                category
                for category in consent.categories
                if not any(w.matches(agency, category) for w in withdrawn)
            )

        memberships = [m for m in person.memberships if m.agency == agency and m.active(at)]
        declarations = [
            d
            for d in person.vital_interests
            if agency in d.recipients and d.valid_from <= at < d.valid_until
        ]
        return cls(
            own=frozenset(c for c, agencies in person.recorded_by.items() if agency in agencies),
            consents=tuple((c, still_covered(c)) for c in consents),
            meeting=_latest(memberships, lambda m: m.valid_from, lambda m: m.meeting_id),
            declarations=tuple(
                _by_start(declarations, lambda d: d.valid_from, lambda d: d.declaration_id)
            ),
        )

    def any(self) -> bool:
        return bool(self.own or self.consents or self.meeting or self.declarations)

    def first(self, category: str, purpose: str) -> Allow | None:
        if category in self.own:
            return Allow("own_record", None)
        for consent, categories in self.consents:
            if category in categories and purpose in consent.purposes:
                return Allow("consent", consent.consent_id)
        if category == TAX:
            return None
        if self.meeting is not None:
            return Allow("article9_meeting", self.meeting.meeting_id)
        for declaration in self.declarations:
            if category in declaration.categories:
                return Allow("vital_interest", declaration.declaration_id)
        return None


def visible_categories(
    viewer: Viewer, person: PersonRecord, purpose: str, at: datetime
) -> dict[str, Allow]:
    """Every data category ``decide`` allows, with its basis, in reference order."""
    return visible_for_any(viewer, person, (purpose,), at)


def visible_for_any(
    viewer: Viewer, person: PersonRecord, purposes: Sequence[str], at: datetime
) -> dict[str, Allow]:
    """Every category ``decide`` allows for one of ``purposes``, with the basis of the first
    purpose that allows it: ``decide``'s answers, with the bases sorted out once, not once per
    category and purpose (a view over all agencies asks thousands of times per person)."""
    for purpose in purposes:
        _check_purpose(purpose)
    bases = _Bases.of(viewer.agency, person, at)
    shown: dict[str, Allow] = {}
    if not bases.any():
        return shown
    for purpose in purposes:
        for category in reference().data_categories:
            if category not in shown and (allow := bases.first(category, purpose)) is not None:
                shown[category] = allow
    return shown
