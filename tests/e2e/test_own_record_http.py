"""Issue 15: "own record" means the agency recorded that fact itself. Filing a local id under
one's own agency never makes another agency's facts one's own record."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.e2e.answers import ok

pytestmark = pytest.mark.e2e

Auth = Callable[..., dict[str, str]]


def registered_and_linked(client: TestClient, auth: Auth) -> tuple[str, str]:
    """A person the office registered, a consent showing shakyo their identity, and shakyo's
    own local id filed under them."""
    person = ok(
        client.post(
            "/intake/persons",
            json={
                "family_name": "志村",
                "given_name": "健",
                "family_name_kana": "シムラ",
                "given_name_kana": "ケン",
                "birth_date": "1975-05-05",
                "address": "座間市入谷西1-1",
                "phone": "046-000-0000",
            },
            headers=auth(),
        ),
        201,
    )["id"]
    now = datetime.now(UTC)
    consent = ok(
        client.post(
            "/intake/consents",
            json={
                "person_id": person,
                "recipients": ["zama-shakyo"],
                "categories": ["identity"],
                "purposes": ["support_coordination"],
                "valid_from": (now - timedelta(hours=1)).isoformat(),
                "valid_until": (now + timedelta(days=90)).isoformat(),
            },
            headers=auth(),
        ),
        201,
    )["id"]
    ok(
        client.post(
            f"/intake/persons/{person}/links",
            json={"local_id": "S-77"},
            headers=auth("zama-shakyo"),
        )
    )
    return person, consent


def identity_fields(client: TestClient, auth: Auth, person: str) -> dict[str, Any]:
    view = ok(client.get(f"/views/persons/{person}", headers=auth("zama-shakyo")))
    identity: dict[str, Any] = next(c for c in view["categories"] if c["category"] == "identity")
    return identity


def test_after_the_consent_is_withdrawn_the_linker_keeps_its_own_id_but_not_the_names(
    client: TestClient, auth: Auth
) -> None:
    person, consent = registered_and_linked(client, auth)
    before = identity_fields(client, auth, person)
    assert before["fields"]["family_name"] == "志村"
    assert before["basis"]["kind"] == "consent"  # the names came under the consent

    ok(client.post(f"/intake/consents/{consent}/withdrawals", json={}, headers=auth()), 201)

    after = identity_fields(client, auth, person)
    assert after["basis"]["kind"] == "own_record"
    assert after["fields"] == {"local_id": "S-77"}
    # The replay as of now, for shakyo as its organiser would see it, holds no names either.
    at = quote(datetime.now(UTC).isoformat())
    replay = ok(
        client.get(
            f"/views/persons/{person}/as-of?at={at}&agency=zama-shakyo",
            headers=auth("zama-jiritsu", "meeting_organiser"),
        )
    )
    # Shakyo's identity then: its own local id, which the organiser may not read.
    seen = replay["agency_view"]["categories"]["identity"]
    assert seen == {"basis": "own_record", "basis_id": None, "fields": None}
