"""Sending referrals: the legal basis through decide, idempotency, reroutes and inboxes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from contracts import disclosure
from contracts.errors import Forbidden, Invalid
from contracts.identity import Staff
from services.platform.settings import Settings
from services.referral.application import ReferralApplication, SendReferral

pytestmark = pytest.mark.unit

JIRITSU = Staff("s1", "zama-jiritsu", frozenset({"caseworker"}), "142182")
ONEAID = Staff("o1", "oneaid", frozenset({"caseworker"}), "142182")
MINSEI = Staff("m1", "minsei", frozenset({"caseworker"}), "142182")
PERSON, CONSENT_ID = uuid4(), uuid4()
NOW = datetime.now(UTC)
CONSENT = disclosure.Consent(
    consent_id=str(CONSENT_ID),
    person_id=str(PERSON),
    recipients=frozenset({"oneaid"}),
    categories=frozenset({"identity", "contact", "housing", "criminal_record"}),
    purposes=frozenset({"referral"}),
    valid_from=NOW - timedelta(days=1),
    valid_until=NOW + timedelta(days=300),
)


def lookup(person_id: UUID) -> tuple[disclosure.Consent, ...]:
    return (CONSENT,) if person_id == PERSON else ()


@pytest.fixture
def referrals(tmp_path: Path) -> ReferralApplication:
    return ReferralApplication(Settings(var_dir=tmp_path))


def slip(**fields: object) -> SendReferral:
    values: dict[str, object] = dict(
        kind="service_request",
        to="oneaid",
        reason="契約更新不可・保証人なし",
        categories=["identity", "contact", "housing", "criminal_record"],
        person_id=PERSON,
        consent_id=CONSENT_ID,
    )
    values.update(fields)
    return SendReferral(**values)  # type: ignore[arg-type]


def test_a_consent_that_covers_every_category_is_the_basis(referrals: ReferralApplication) -> None:
    sent = referrals.send(JIRITSU, slip(), lookup)
    referral = referrals.referral(sent.referral_id)
    assert (referral.basis, referral.basis_id) == ("consent", str(CONSENT_ID))


def test_an_uncovered_category_is_403_naming_it_and_the_recipient(
    referrals: ReferralApplication,
) -> None:
    command = slip(categories=["identity", "health"])
    with pytest.raises(Forbidden) as refused:
        referrals.send(JIRITSU, command, lookup)
    assert refused.value.detail["missing_categories"] == ["health"]
    assert refused.value.detail["recipient"] == "oneaid"


def test_a_consent_for_another_recipient_does_not_cover(referrals: ReferralApplication) -> None:
    command = slip(to="hellowork-atsugi")
    with pytest.raises(Forbidden) as refused:
        referrals.send(JIRITSU, command, lookup)
    assert refused.value.detail["recipient"] == "hellowork-atsugi"


def test_a_consent_not_in_the_replica_is_refused(referrals: ReferralApplication) -> None:
    with pytest.raises(Forbidden, match="not known"):
        referrals.send(JIRITSU, slip(consent_id=uuid4()), lookup)


def test_a_community_concern_shares_contact_and_reason_only(
    referrals: ReferralApplication,
) -> None:
    concern = dict(
        kind="concern_from_community",
        to="zama-jiritsu",
        person_id=None,
        consent_id=None,
        provisional_identity={"contact": "3丁目の世帯"},
    )
    sent = referrals.send(MINSEI, slip(categories=["contact"], **concern), lookup)
    assert referrals.referral(sent.referral_id).basis == "community_concern"
    with pytest.raises(Forbidden) as refused:
        referrals.send(MINSEI, slip(categories=["contact", "family"], **concern), lookup)
    assert refused.value.detail["missing_categories"] == ["family"]


def test_a_verbal_consent_covers_only_a_provisional_person(referrals: ReferralApplication) -> None:
    provisional = dict(
        person_id=None,
        consent_id=None,
        to="zama-jiritsu",
        kind="connect_to_office",
        provisional_identity={"family_name": "志村"},
        categories=["identity", "housing"],
        verbal_consent_witness="oneaid staff",
    )
    sent = referrals.send(ONEAID, slip(**provisional), lookup)
    assert referrals.referral(sent.referral_id).basis == "verbal_consent"
    registered = {**provisional, "person_id": PERSON, "provisional_identity": None}
    with pytest.raises(Forbidden):
        referrals.send(ONEAID, slip(**registered), lookup)


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"to": "zama-jiritsu"}, "to", "not_self"),
        ({"to": "acme"}, "to", "reference_code"),
        ({"categories": ["shoe_size"]}, "categories", "reference_code"),
        ({"kind": "gossip"}, "kind", "reference_code"),
        ({"provisional_identity": {"contact": "x"}}, "person_id", "one_of"),
        ({"reason": " "}, "reason", "required"),
    ],
)
def test_bad_slips_are_422(
    referrals: ReferralApplication, fields: dict[str, object], field: str, rule: str
) -> None:
    with pytest.raises(Invalid) as refused:
        referrals.send(JIRITSU, slip(**fields), lookup)
    [problem] = refused.value.detail["problems"]
    assert (problem["field"], problem["rule"]) == (field, rule)


def test_a_retried_send_with_the_same_key_is_the_same_referral(
    referrals: ReferralApplication,
) -> None:
    command = slip()
    first = referrals.send(JIRITSU, command, lookup, idempotency_key="slip-42")
    again = referrals.send(JIRITSU, command, lookup, idempotency_key="slip-42")
    other = referrals.send(JIRITSU, command, lookup, idempotency_key="slip-43")
    assert (again.referral_id, again.replayed) == (first.referral_id, True)
    assert other.referral_id != first.referral_id
    assert len(referrals.inbox("oneaid")) == 2


def test_reroute_sends_a_new_referral_on_a_basis_covering_the_new_receiver(
    referrals: ReferralApplication,
) -> None:
    sent = referrals.send(JIRITSU, slip(), lookup)
    referrals.move(ONEAID, sent.referral_id, "decline", reason="近隣で転居先なし")
    with pytest.raises(Forbidden):  # the consent does not name hellowork
        referrals.reroute(JIRITSU, sent.referral_id, "hellowork-atsugi", "就労支援へ", lookup)
    wider = disclosure.Consent(
        **{**CONSENT.__dict__, "recipients": frozenset({"oneaid", "ashiato"})}
    )
    new_id = referrals.reroute(JIRITSU, sent.referral_id, "ashiato", "別法人へ", lambda _: (wider,))
    old, new = referrals.referral(sent.referral_id), referrals.referral(new_id)
    assert (old.state, old.rerouted_to) == ("rerouted", new_id)
    assert (new.receiver, new.sender, new.rerouted_from) == ("ashiato", "zama-jiritsu", old.id)
    assert [r.id for r in referrals.inbox("ashiato")] == [new_id]


def test_inbox_is_oldest_first_and_outbox_holds_what_was_sent(
    referrals: ReferralApplication,
) -> None:
    times = [NOW - timedelta(days=d) for d in (1, 5, 3)]
    ids = [referrals.send(JIRITSU, slip(at=t), lookup).referral_id for t in times]
    assert [r.id for r in referrals.inbox("oneaid")] == [ids[1], ids[2], ids[0]]
    assert len(referrals.outbox("zama-jiritsu")) == 3
    assert referrals.inbox("zama-jiritsu") == []
