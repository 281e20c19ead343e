"""Kafka topic names. One topic per emitting service; a person's events share a key."""

from __future__ import annotations

from dataclasses import dataclass

# "audit": the reads other services served, on their way to the audit chain (RecordViewed).
SERVICES = ("intake", "referral", "meeting", "projection", "audit")


@dataclass(frozen=True)
class Topics:
    """Topic names under a prefix, so that a test run or a tenant can have its own set."""

    prefix: str = "tsunagu"

    def events(self, service: str) -> str:
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
        return f"{self.prefix}.{service}.events"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}.deadletter"

    @property
    def audit_checkpoints(self) -> str:
        """Signed checkpoints of the audit chain: outside the database the chain is kept in."""
        return f"{self.prefix}.audit.checkpoints"
