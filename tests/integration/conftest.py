"""Fixtures shared by the integration tests of the audit log on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from services.platform.settings import Settings
from services.platform.sql import PostgresDatabase
from services.projection.audit import AuditLog

Connection = psycopg.Connection[dict[str, Any]]


@pytest.fixture
def log(distributed_settings: Settings) -> Iterator[AuditLog]:
    assert distributed_settings.database_url
    database = PostgresDatabase(distributed_settings.database_url, "projection")
    yield AuditLog(database)
    database.close()


@pytest.fixture
def raw(distributed_settings: Settings) -> Iterator[Connection]:
    """A direct connection, as someone with write access to the database would have."""
    assert distributed_settings.database_url
    with psycopg.connect(
        distributed_settings.database_url,
        autocommit=True,
        row_factory=dict_row,
        options="-c search_path=projection",
    ) as connection:
        yield connection
