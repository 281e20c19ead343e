"""The test realm's staff and client stay in step with the reference data and what Tsunagu reads.

The realm file is only loaded by a real Keycloak in the integration tests; these checks catch a
renamed agency or role, or a dropped claim mapper, without starting one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contracts.identity import ROLES
from contracts.reference import reference

pytestmark = pytest.mark.unit

REALM_FILE = Path(__file__).resolve().parents[2] / "deploy" / "keycloak" / "tsunagu-realm.json"
# The one user whose agency Tsunagu must refuse (the integration test signs in as them).
OUTSIDER = "outsider"


@pytest.fixture(scope="module")
def realm() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    return loaded


def test_every_member_user_is_staff_of_a_known_agency_with_known_roles(
    realm: dict[str, Any],
) -> None:
    members = [u for u in realm["users"] if u["username"] != OUTSIDER]
    assert len(members) >= 5
    for user in members:
        attributes = user["attributes"]
        agency = reference().agency(attributes["agency"][0])
        assert agency is not None, user["username"]
        assert attributes["municipality"] == [agency.municipality], user["username"]
        assert attributes["roles"] and set(attributes["roles"]) <= set(ROLES), user["username"]
        assert attributes["staff_id"][0], user["username"]
        assert user["requiredActions"] == [], user["username"]
    # Every role can be signed in as, by some user of the realm.
    assert set(ROLES) <= {role for u in members for role in u["attributes"]["roles"]}


def test_the_outsider_belongs_to_no_agency_of_this_deployment(realm: dict[str, Any]) -> None:
    (outsider,) = (u for u in realm["users"] if u["username"] == OUTSIDER)
    assert reference().agency(outsider["attributes"]["agency"][0]) is None


def test_the_desk_client_puts_each_claim_tsunagu_reads_in_the_access_token(
    realm: dict[str, Any],
) -> None:
    (client,) = (c for c in realm["clients"] if c["clientId"] == "tsunagu-web")
    assert client["publicClient"] is False and client["standardFlowEnabled"] is True
    mappers = {m["name"]: m for m in client["protocolMappers"]}
    for claim in ("agency", "municipality", "staff_id", "roles"):
        config = mappers[claim]["config"]
        assert config["user.attribute"] == claim and config["claim.name"] == claim
        assert config["access.token.claim"] == "true"
    assert mappers["roles"]["config"]["multivalued"] == "true"
    audience = next(m for m in mappers.values() if m["protocolMapper"] == "oidc-audience-mapper")
    assert audience["config"]["included.custom.audience"] == "tsunagu"
    assert audience["config"]["access.token.claim"] == "true"
