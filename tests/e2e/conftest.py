"""The embedded platform over HTTP, as most end-to-end tests drive it: one app per test, on
its own var directory. A module that needs the app's start and stop (its lifespan) defines a
``client`` of its own."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.platform.settings import Settings
from services.wiring import embedded_app


@pytest.fixture
def client(embedded_settings: Settings) -> TestClient:
    return TestClient(embedded_app(embedded_settings))
