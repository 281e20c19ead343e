"""The chain's hash, written value by value for speed, is the documented one exactly."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.projection.audit import ADDED_LATER, HASHED, entry_hash

pytestmark = pytest.mark.unit

values = st.none() | st.integers() | st.text() | st.booleans() | st.lists(st.text(), max_size=2)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({name: values for name in HASHED}), st.text(min_size=1))
def test_entry_hash_is_sha256_of_the_previous_hash_and_the_fields_canonical_json(
    fields: dict[str, Any], previous: str
) -> None:
    # A column added after chains were first written enters the hash only when set.
    present = {k: v for k, v in fields.items() if not (v is None and k in ADDED_LATER)}
    canonical = json.dumps(present, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256((previous + canonical).encode()).hexdigest()
    assert entry_hash(previous, {**fields, "entry_hash": "ignored"}) == expected
