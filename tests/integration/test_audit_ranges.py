"""The audit chain checked in ranges by several processes names what the walk alone names."""

from __future__ import annotations

import pytest

from services.projection import audit
from services.projection.audit import AuditLog, Verification
from tests.audit_tampering import (
    PostgresRaw,
    Raw,
    Tamper,
    alter,
    delete,
    insert_forged,
    late_alter,
    swap,
    viewed,
)
from tests.integration.test_audit_postgres import Connection

pytestmark = pytest.mark.integration


def walked(log: AuditLog) -> Verification:
    return log.verify(batch_size=3, parallel_from=10**9)


def in_ranges(log: AuditLog) -> Verification:
    return log.verify(batch_size=3, parallel_from=1)


def untouched(raw: Raw) -> None:
    del raw


@pytest.mark.parametrize(
    "change",
    [untouched, alter, late_alter, delete, swap, insert_forged],
    ids=lambda change: change.__name__,
)
def test_ranges_in_processes_agree_with_the_walk(
    log: AuditLog,
    raw: Connection,
    change: Tamper,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ranges of three entries over two processes: every boundary is crossed somewhere.
    monkeypatch.setattr(audit, "RANGE", 3)
    for n in range(11):
        log.append(viewed(n))
    change(PostgresRaw(raw))

    expected = walked(log)
    assert in_ranges(log) == expected
    assert expected.ok == (change is untouched)
