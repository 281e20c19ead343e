"""Every allowed and forbidden move of a referral, by each side."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.errors import Conflict, Forbidden, Invalid
from services.referral.referral import MOVES, RECEIVER, SENDER, Referral, allowed_moves

pytestmark = pytest.mark.unit

T0 = datetime(2025, 6, 20, 1, 5, tzinfo=UTC)
PATHS = {
    "sent": [],
    "acknowledged": ["acknowledge"],
    "accepted": ["accept"],
    "declined": ["decline"],
    "in_progress": ["accept", "start"],
    "on_hold": ["accept", "hold"],
    "completed": ["accept", "complete"],
    "failed": ["accept", "fail"],
    "withdrawn": ["withdraw"],
    "rerouted": ["reroute"],
}
PARTY = {SENDER: "zama-jiritsu", RECEIVER: "oneaid"}


def new_referral() -> Referral:
    return Referral(
        municipality="142182",
        kind="service_request",
        sender="zama-jiritsu",
        receiver="oneaid",
        staff_id="s1",
        at=T0,
        person_id=None,
        provisional_identity={"contact": "x"},
        reason="契約更新不可",
        categories=["contact"],
        basis="community_concern",
        basis_id=None,
        rerouted_from=None,
        idempotency_key=None,
    )


def make(referral: Referral, move: str) -> None:
    who = MOVES[move][0]
    referral.move(
        move,
        agency=PARTY.get(who, PARTY[RECEIVER]),
        staff_id="s",
        at=T0 + timedelta(hours=1),
        reason="理由",
        outcome="成果",
    )


def referral_in(state: str) -> Referral:
    referral = new_referral()
    for move in PATHS[state]:
        make(referral, move)
    assert referral.state == state
    return referral


@pytest.mark.parametrize("state", list(PATHS))
@pytest.mark.parametrize("move", list(MOVES))
def test_each_move_from_each_state(state: str, move: str) -> None:
    referral = referral_in(state)
    _, starts, target, _ = MOVES[move]
    if state in starts:
        make(referral, move)
        assert referral.state == target
    else:
        with pytest.raises(Conflict) as refused:
            make(referral, move)
        assert refused.value.detail["state"] == state
        assert refused.value.detail["allowed_moves"] == allowed_moves(state)
        assert referral.state == state


@pytest.mark.parametrize("move", [m for m, (who, _, _, _) in MOVES.items() if who != "either"])
def test_a_move_by_the_wrong_side_is_403(move: str) -> None:
    who, starts, _, _ = MOVES[move]
    referral = referral_in(next(s for s, path in PATHS.items() if s in starts))
    wrong = PARTY[RECEIVER] if who == SENDER else PARTY[SENDER]
    with pytest.raises(Forbidden, match=f"only the {who}"):
        referral.move(move, agency=wrong, staff_id="s", at=T0, reason="r", outcome="o")


def test_either_side_may_reroute_but_a_third_agency_may_not() -> None:
    for agency in PARTY.values():
        referral = referral_in("declined")
        at = T0 + timedelta(hours=1)
        referral.move("reroute", agency=agency, staff_id="s", at=at, reason="別の団体へ")
        assert referral.state == "rerouted"
    with pytest.raises(Forbidden, match="neither"):
        referral_in("sent").move("accept", agency="zama-shuno", staff_id="s", at=T0)


@pytest.mark.parametrize("move", ["decline", "withdraw", "hold", "fail", "reroute"])
def test_these_moves_need_a_reason(move: str) -> None:
    who, starts, _, _ = MOVES[move]
    referral = referral_in(next(s for s in PATHS if s in starts))
    with pytest.raises(Invalid) as refused:
        referral.move(move, agency=PARTY.get(who, PARTY[SENDER]), staff_id="s", at=T0, reason=" ")
    assert refused.value.detail["problems"][0]["field"] == "reason"


def test_completion_carries_an_outcome() -> None:
    referral = referral_in("accepted")
    with pytest.raises(Invalid) as refused:
        referral.move("complete", agency="oneaid", staff_id="s", at=T0)
    assert refused.value.detail["problems"][0]["field"] == "outcome"


def test_a_decline_needs_action_until_the_sender_closes_the_loop() -> None:
    referral = referral_in("declined")
    later = T0 + timedelta(days=8)
    assert not referral.needs_action(T0 + timedelta(days=6), follow_up_days=7)
    assert referral.needs_action(later, follow_up_days=7)
    with pytest.raises(Forbidden):
        referral.follow_up_decline(
            "resource_gap", agency="oneaid", staff_id="s", at=later, note="x", follow_up_on=None
        )
    with pytest.raises(Invalid) as refused:
        referral.follow_up_decline(
            "return_to_sender",
            agency="zama-jiritsu",
            staff_id="s",
            at=later,
            note="本人と再面談",
            follow_up_on=None,
        )
    assert refused.value.detail["problems"][0]["field"] == "follow_up_on"
    referral.follow_up_decline(
        "resource_gap",
        agency="zama-jiritsu",
        staff_id="s",
        at=later,
        note="刑余者の市外転居を受け入れる居住支援",
        follow_up_on=None,
    )
    assert not referral.needs_action(later, follow_up_days=7)
    with pytest.raises(Conflict):
        referral.follow_up_decline(
            "resource_gap",
            agency="zama-jiritsu",
            staff_id="s",
            at=later,
            note="again",
            follow_up_on=None,
        )


def test_a_reroute_closes_a_decline_too() -> None:
    referral = referral_in("declined")
    later = T0 + timedelta(days=2)
    referral.move("reroute", agency="zama-jiritsu", staff_id="s", at=later, reason="他県の法人へ")
    assert not referral.needs_action(T0 + timedelta(days=30), follow_up_days=7)


def test_a_follow_up_is_never_dated_before_the_decline_it_follows() -> None:
    referral = referral_in("declined")
    with pytest.raises(Invalid) as refused:
        referral.follow_up_decline(
            "resource_gap", agency="zama-jiritsu", staff_id="s", at=T0, note="x", follow_up_on=None
        )
    [problem] = refused.value.detail["problems"]
    assert (problem["field"], problem["rule"]) == ("at", "before_previous_step")
    assert problem["earliest"] == (T0 + timedelta(hours=1)).isoformat()
    assert not referral.decline_followed_up


def test_unacknowledged_referrals_become_overdue() -> None:
    referral = new_referral()
    assert not referral.acknowledgement_overdue(T0 + timedelta(hours=71), deadline_hours=72)
    assert referral.acknowledgement_overdue(T0 + timedelta(hours=73), deadline_hours=72)
    make(referral, "acknowledge")
    assert not referral.acknowledgement_overdue(T0 + timedelta(hours=73), deadline_hours=72)


def test_the_same_idempotency_key_gives_the_same_id_per_sender() -> None:
    assert Referral.create_id("oneaid", "k1") == Referral.create_id("oneaid", "k1")
    assert Referral.create_id("oneaid", "k1") != Referral.create_id("minsei", "k1")
    assert Referral.create_id("oneaid", None) != Referral.create_id("oneaid", None)
