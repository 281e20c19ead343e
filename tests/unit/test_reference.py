"""The reference data Tsunagu adds to shared's: neighbouring municipalities and who may hold
each oversight role, over what scope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts import reference as module
from contracts.reference import MUNICIPALITY, OWN_AGENCY, reference

pytestmark = pytest.mark.unit


def test_the_deployment_serves_zama_and_ebina_each_with_agencies_of_its_own() -> None:
    ref = reference()
    assert set(ref.municipalities) == {"142182", "142158"}
    assert ref.municipalities["142158"].name_ja == "海老名市"
    ebina = {a.id for a in ref.agencies.values() if a.municipality == "142158"}
    assert {"ebina-jiritsu", "ebina-nozei", "ebina-shakyo"} <= ebina
    assert ref.agencies["zama-jiritsu"].municipality == "142182"
    assert ref.agencies_with_role("self_reliance_office", "142158") == ("ebina-jiritsu",)
    assert ref.in_municipality("ebina-shakyo", "142158")
    assert not ref.in_municipality("ebina-shakyo", "142182")


def test_oversight_roles_are_granted_per_agency_with_their_scope() -> None:
    ref = reference()
    assert ref.scope("privacy_officer", "zama-jiritsu") == MUNICIPALITY
    assert ref.scope("privacy_officer", "oneaid") == OWN_AGENCY
    assert ref.scope("meeting_organiser", "seikatsuclub") == OWN_AGENCY
    assert ref.scope("meeting_organiser", "zama-suido") is None
    assert ref.scope("supervisor", "minsei") is None
    assert ref.scope("supervisor", "oneaid") is None
    assert ref.scope("approver", "zama-shakyo") is None
    assert ref.scope("approver", "ebina-jiritsu") == MUNICIPALITY


def _load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any]) -> None:
    raw = yaml.safe_load(module.REFERENCE_FILE.read_text(encoding="utf-8"))
    raw.update(change)
    path = tmp_path / "reference.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(module, "REFERENCE_FILE", path)
    module.reference.cache_clear()
    try:
        module.reference()
    finally:
        monkeypatch.undo()
        module.reference.cache_clear()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"oversight_roles": {"caseworker": []}}, "unknown role"),
        (
            {"oversight_roles": {"approver": [{"scope": "prefecture", "agencies": ["oneaid"]}]}},
            "scope must be one of",
        ),
        (
            {"oversight_roles": {"approver": [{"scope": "municipality", "agencies": ["nobody"]}]}},
            "unknown agency",
        ),
        (
            {
                "oversight_roles": {
                    "approver": [
                        {"scope": "municipality", "agencies": ["zama-jiritsu"]},
                        {"scope": "own_agency", "agencies": ["zama-jiritsu"]},
                    ]
                }
            },
            "granted twice",
        ),
        (
            {
                "neighbours": [
                    {
                        "code": "142158",
                        "name_ja": "海老名市",
                        "agencies": [{"id": "zama-jiritsu", "kind": "municipal", "name_ja": "x"}],
                    }
                ]
            },
            "two municipalities",
        ),
    ],
)
def test_a_grant_the_reference_cannot_honour_is_refused_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _load(tmp_path, monkeypatch, change)
