"""Crypto-shredding in embedded mode (#20): the recognisable person is in clear in no file under
var/ (SQLite databases, their WAL, the dead letters' and checkpoints' files), read row by row
and byte by byte; once erased, no sealed value there opens to them."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.platform.settings import Settings
from services.scenarios import ScenarioPlayer
from services.wiring import embedded_app, key_store
from tests.conftest import TokenFactory
from tests.erasure_story import VALUES, lawful_reads, play
from tests.sealed_scan import decrypting_to, erased, file_places, in_clear, opened, sealed_tokens

pytestmark = pytest.mark.e2e
# What the lawful reads show, and what is sealed in the files before the erasure.
SHOWN = {"family_name", "family_name_kana", "address", "phone", "main_complaint"}


def test_no_file_holds_the_person_and_none_opens_to_them_once_erased(
    embedded_settings: Settings, token: TokenFactory
) -> None:
    var = embedded_settings.var_dir
    with TestClient(embedded_app(embedded_settings)) as client:
        played = play(ScenarioPlayer.embedded(client, token))

        def get(path: str, agency: str) -> Any:
            headers = {"Authorization": f"Bearer {token(agency)}"}
            response = client.get(f"/views{path}", headers=headers)
            assert response.status_code == 200, response.text
            return response.json()

        answers = json.dumps(lawful_reads(get, played), ensure_ascii=False).encode()
        assert set(in_clear([("answers", answers)], VALUES)) >= SHOWN
        keys = client.app.state.keys  # type: ignore[attr-defined]
        kept = file_places(var)
        assert in_clear(kept, VALUES) == {}
        assert set(decrypting_to(kept, keys, VALUES)) >= SHOWN

        officer = {"Authorization": f"Bearer {token('zama-jiritsu', 'privacy_officer')}"}
        path = f"/intake/persons/{played.person}/erasure"
        done = client.post(path, json={"reason": "subject_request"}, headers=officer)
        assert done.status_code == 201, done.text

    with contextlib.closing(key_store(embedded_settings)) as keys:
        kept = file_places(var)
        assert in_clear(kept, VALUES) == {}
        assert decrypting_to(kept, keys, VALUES) == {}
        reasons = {erased(value) for value in opened(sealed_tokens(kept), keys).values()}
        assert "subject_request" in reasons
