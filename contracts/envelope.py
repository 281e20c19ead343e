"""The CloudEvents 1.0 envelope every integration event travels in (structured JSON mode).

Extensions: ``municipality`` (全国地方公共団体コード), ``personid``, ``partitionkey`` (the Kafka
key: the person, or the consultation while no person is known), ``eventversion`` and the W3C
trace context (``traceparent``/``tracestate``, the CloudEvents distributed-tracing extension).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
TYPE_PREFIX = "jp.tsunagu."
# Fixed namespace so that an event id is a pure function of its origin: a relay that publishes
# the same stored event twice publishes the same id, and consumers can drop the second.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a4e-3b7d-5e8f-9a0b-1c2d3e4f5a6b")


class EnvelopeError(ValueError):
    """The bytes are not a CloudEvent this platform can read."""


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(pattern=r"^jp\.tsunagu\.[A-Za-z]+$")
    time: datetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = None
    municipality: str = Field(pattern=r"^[0-9]{6}$")
    personid: str | None = None
    partitionkey: str = Field(min_length=1)
    eventversion: int = Field(ge=1)
    traceparent: str | None = None
    tracestate: str | None = None
    data: dict[str, Any]

    @property
    def name(self) -> str:
        """The event's name without the type prefix, e.g. ``ConsultationOpened``."""
        return self.type.removeprefix(TYPE_PREFIX)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> CloudEvent:
        try:
            return cls.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as error:
            raise EnvelopeError(f"not a CloudEvent: {_short(error)}") from error


def event_id(originator_id: uuid.UUID | str, originator_version: int) -> str:
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{originator_id}:{originator_version}"))


def _short(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'envelope'}: {e['msg']}"
            for e in error.errors()
        )
    return str(error).splitlines()[0][:200]
