"""Consent (本人同意): what a person agreed may be shared, with whom, why and until when.

A consent names recipient agencies, data categories and purposes, and a validity period. It
expires by its period alone (no job runs); a withdrawal, total or partial (by recipient or by
category), takes effect from its own time and is kept beside the consent, never erasing it, so
the ledger can say what was in force at any past instant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from contracts import disclosure
from contracts.errors import Conflict, Invalid, not_before
from contracts.personal import OF_PERSON
from contracts.reference import reference
from services.platform.acts import Act, Founding

METHODS = ("written_application_form", "written_tsunagu_sheet", "verbal_with_witness")
GIVERS = ("person", "legal_representative")


class Consent(Aggregate):
    class Recorded(Founding):
        person_id: UUID
        given_by: str
        representative_name: Annotated[str | None, OF_PERSON]
        representative_relationship: str | None
        recipients: list[str]
        categories: list[str]
        purposes: list[str]
        valid_from: datetime
        valid_until: datetime
        method: str
        evidence_ref: str | None
        witness: Annotated[str | None, OF_PERSON]

    class Withdrawn(Act):
        person_id: UUID
        withdrawal_id: UUID
        recipients: list[str] | None
        categories: list[str] | None
        reason: Annotated[str | None, OF_PERSON]

    @event(Recorded)
    def __init__(
        self,
        *,
        municipality: str,
        person_id: UUID,
        given_by: str,
        representative_name: str | None,
        representative_relationship: str | None,
        recipients: list[str],
        categories: list[str],
        purposes: list[str],
        valid_from: datetime,
        valid_until: datetime,
        method: str,
        evidence_ref: str | None,
        witness: str | None,
        agency: str,
        staff_id: str,
    ) -> None:
        self.municipality = municipality
        self.person_id = person_id
        self.given_by = given_by
        self.representative_name = representative_name
        self.representative_relationship = representative_relationship
        self.recipients = recipients
        self.categories = categories
        self.purposes = purposes
        self.valid_from = valid_from
        self.valid_until = valid_until
        self.method = method
        self.evidence_ref = evidence_ref
        self.witness = witness
        self.agency = agency
        self.staff_id = staff_id
        self.withdrawals: list[disclosure.Withdrawal] = []

    def withdraw(
        self,
        *,
        at: datetime,
        recipients: list[str] | None,
        categories: list[str] | None,
        reason: str | None,
        agency: str,
        staff_id: str,
    ) -> UUID:
        for field, chosen, allowed in (
            ("recipients", recipients, self.recipients),
            ("categories", categories, self.categories),
        ):
            if chosen is not None and (not chosen or set(chosen) - set(allowed)):
                raise Invalid(
                    field,
                    "within_consent",
                    f"can only withdraw {field} this consent covers",
                    allowed=allowed,
                )
        # A consent is dated from when it was given (valid_from, never later than its recording).
        not_before("at", at, "the consent was given", self.valid_from)
        if not self._still_grants(recipients, categories):
            raise Conflict(
                "this consent is already withdrawn for everything named",
                withdrawals=[str(w.withdrawal_id) for w in self.withdrawals],
            )
        withdrawal_id = uuid4()
        self._withdraw(
            municipality=self.municipality,
            person_id=self.person_id,
            withdrawal_id=withdrawal_id,
            at=at,
            recipients=recipients,
            categories=categories,
            reason=reason,
            agency=agency,
            staff_id=staff_id,
        )
        return withdrawal_id

    @event(Withdrawn)
    def _withdraw(
        self,
        municipality: str,
        person_id: UUID,
        withdrawal_id: UUID,
        at: datetime,
        recipients: list[str] | None,
        categories: list[str] | None,
        reason: str | None,
        agency: str,
        staff_id: str,
    ) -> None:
        self.withdrawals.append(
            disclosure.Withdrawal(
                withdrawal_id=str(withdrawal_id),
                at=at,
                recipients=frozenset(recipients) if recipients is not None else None,
                categories=frozenset(categories) if categories is not None else None,
            )
        )

    def _still_grants(self, recipients: list[str] | None, categories: list[str] | None) -> bool:
        """Whether some (recipient, category) pair named is not yet withdrawn."""
        return any(
            not any(
                (w.recipients is None or r in w.recipients)
                and (w.categories is None or c in w.categories)
                for w in self.withdrawals
            )
            for r in (recipients or self.recipients)
            for c in (categories or self.categories)
        )

    def coverage(self, recipient: str, purpose: str, at: datetime) -> list[str]:
        """The categories this consent lets ``recipient`` receive for ``purpose`` at ``at``,
        in reference order: what a slip under it may carry (tax included only if named)."""
        policy = self.as_policy()
        return [c for c in reference().data_categories if policy.covers(recipient, c, purpose, at)]

    def withdrawal_effect(
        self, recipients: list[str] | None, categories: list[str] | None, at: datetime
    ) -> dict[str, list[str]]:
        """Before a withdrawal: each recipient that would stop receiving categories under this
        consent at ``at`` (for any of its purposes), and those categories."""
        policy = self.as_policy()
        losses = {}
        for recipient in recipients or self.recipients:
            lost = [
                c
                for c in categories or self.categories
                if any(policy.covers(recipient, c, p, at) for p in self.purposes)
            ]
            if lost:
                losses[recipient] = lost
        return losses

    def as_policy(self) -> disclosure.Consent:
        """This consent as the disclosure policy reads it."""
        return disclosure.Consent(
            consent_id=str(self.id),
            person_id=str(self.person_id),
            recipients=frozenset(self.recipients),
            categories=frozenset(self.categories),
            purposes=frozenset(self.purposes),
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            withdrawals=tuple(self.withdrawals),
        )

    def receipt(self) -> dict[str, Any]:
        """A consent receipt the person can be handed (Kantara Consent Receipt v1.1 fields)."""
        ref = reference()
        controller = ref.agency(self.agency)
        withdrawn_at = max((w.at for w in self.withdrawals), default=None)
        return {
            "version": "KI-CR-v1.1.0",
            "jurisdiction": "JP",
            "consentTimestamp": int(self.valid_from.timestamp()),
            "collectionMethod": self.method,
            "consentReceiptID": str(self.id),
            "language": "ja",
            "piiPrincipalId": str(self.person_id),
            "piiControllers": [
                {
                    "piiController": controller.name_ja if controller else self.agency,
                    "onBehalf": self.given_by == "legal_representative",
                    "contact": self.agency,
                }
            ],
            "policyUrl": "urn:tsunagu:policy:disclosure",
            "services": [
                {
                    "service": "生活困窮者自立支援制度による支援",
                    "purposes": [
                        {
                            "purpose": purpose,
                            "consentType": "EXPLICIT",
                            "purposeCategory": [purpose],
                            "piiCategory": list(self.categories),
                            "primaryPurpose": purpose == self.purposes[0],
                            "termination": self.valid_until.isoformat(),
                            "thirdPartyDisclosure": any(r != self.agency for r in self.recipients),
                            "thirdPartyName": [
                                a.name_ja if (a := ref.agency(r)) else r for r in self.recipients
                            ],
                        }
                        for purpose in self.purposes
                    ],
                }
            ],
            "sensitive": bool(set(self.categories) & SENSITIVE),
            "spiCat": sorted(set(self.categories) & SENSITIVE),
            "withdrawals": [
                {
                    "at": w.at.isoformat(),
                    "recipients": sorted(w.recipients) if w.recipients is not None else "all",
                    "categories": sorted(w.categories) if w.categories is not None else "all",
                }
                for w in self.withdrawals
            ],
            "withdrawnAt": withdrawn_at.isoformat() if withdrawn_at else None,
        }


# Special categories of personal information (要配慮個人情報 and the like).
SENSITIVE = frozenset({"health", "mental_health", "criminal_record", "tax", "welfare_benefit"})


def check_terms(
    recipients: list[str],
    categories: list[str],
    purposes: list[str],
    valid_from: datetime,
    valid_until: datetime,
    method: str,
    witness: str | None,
    given_by: str,
    representative_relationship: str | None,
    municipality: str,
) -> None:
    """The terms of a consent recorded in ``municipality``: its recipients are agencies of
    that municipality, never another's."""
    ref = reference()
    local = tuple(a.id for a in ref.agencies.values() if a.municipality == municipality)
    for field, values, allowed in (
        ("recipients", recipients, local),
        ("categories", categories, ref.data_categories),
        ("purposes", purposes, disclosure.PURPOSES),
    ):
        if not values:
            raise Invalid(field, "not_empty", f"name at least one of {field}", allowed=allowed)
        for value in values:
            if value not in allowed:
                raise Invalid(
                    field, "reference_code", f"unknown {field} {value!r}", allowed=allowed
                )
    if method not in METHODS:
        raise Invalid("method", "reference_code", f"unknown method {method!r}", allowed=METHODS)
    if method == "verbal_with_witness" and not witness:
        raise Invalid("witness", "required", "a verbal consent needs a witness")
    if given_by not in GIVERS:
        raise Invalid("given_by", "reference_code", f"unknown giver {given_by!r}", allowed=GIVERS)
    if given_by == "legal_representative" and not representative_relationship:
        raise Invalid(
            "representative_relationship", "required", "a representative's relationship is needed"
        )
    if valid_from.tzinfo is None or valid_until.tzinfo is None:
        raise Invalid("valid_until", "timezone_required", "times need a UTC offset")
    if valid_until <= valid_from:
        raise Invalid("valid_until", "after_valid_from", "the period must end after it starts")
