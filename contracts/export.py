"""Export the event contracts: one JSON Schema per event version, and an AsyncAPI document.

``python -m contracts.export`` (``make contracts``) rewrites ``contracts/schemas/`` and
``contracts/asyncapi.yaml``; a test fails when the committed files differ from the models.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from contracts.envelope import CloudEvent
from contracts.events import CATALOGUE
from contracts.topics import SERVICES, Topics

HERE = Path(__file__).parent
LOCK = "schemas.lock.json"


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def render() -> dict[str, str]:
    """Every exported file, by path relative to ``contracts/``."""
    files: dict[str, str] = {}
    envelope = CloudEvent.model_json_schema()
    envelope["$id"] = "urn:tsunagu:schema:CloudEvent"
    files["schemas/CloudEvent.json"] = _json(envelope)
    for (name, version), model in sorted(CATALOGUE.items()):
        schema = model.model_json_schema()
        schema["$id"] = model.schema_id()
        schema["title"] = name  # the event's name, whatever the Python class is called
        schema["description"] = model.summary
        files[f"schemas/{name}.v{version}.json"] = _json(schema)
    files["asyncapi.yaml"] = yaml.safe_dump(asyncapi(), sort_keys=False, allow_unicode=True)
    files[LOCK] = _json(published_lock(files))
    return files


def fingerprint(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def published_lock(files: dict[str, str]) -> dict[str, str]:
    """Every schema ever published, with its fingerprint. Entries are only ever added.

    An existing entry keeps its recorded fingerprint even when the model changes, so a change
    to a published version shows up as a mismatch (a test fails) instead of being re-locked.
    """
    path = HERE / LOCK
    locked: dict[str, str] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for relative, content in files.items():
        if relative.startswith("schemas/") and relative != "schemas/CloudEvent.json":
            locked.setdefault(relative, fingerprint(content))
    return dict(sorted(locked.items()))


def asyncapi() -> dict[str, Any]:
    topics = Topics()
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    by_service: dict[str, list[str]] = {service: [] for service in SERVICES}
    for (name, version), model in sorted(CATALOGUE.items()):
        by_service[model.service].append(f"{name}.v{version}")
        messages[f"{name}.v{version}"] = {
            "name": name,
            "title": f"{name} v{version}",
            "summary": model.summary,
            "contentType": "application/cloudevents+json",
            "headers": {
                "type": "object",
                "properties": {
                    "traceparent": {"type": "string", "description": "W3C trace context"},
                    "ce_id": {"type": "string", "description": "the CloudEvent id"},
                },
            },
            "payload": {
                "allOf": [
                    {"$ref": "./schemas/CloudEvent.json"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": model.cloudevent_type()},
                            "eventversion": {"const": version},
                            "data": {"$ref": f"./schemas/{name}.v{version}.json"},
                        },
                    },
                ]
            },
        }
    for service in SERVICES:
        refs = {key: {"$ref": f"#/components/messages/{key}"} for key in by_service[service]}
        if not refs:
            continue
        channels[service] = {
            "address": topics.events(service),
            "description": f"Integration events of the {service} service, keyed by person id "
            "(or by the subject while no person is known).",
            "messages": refs,
        }
        operations[f"{service}.publish"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{service}"},
            "messages": [{"$ref": f"#/channels/{service}/messages/{key}"} for key in refs],
        }
    channels["deadLetter"] = {
        "address": topics.dead_letter,
        "description": "Messages no consumer could read, unchanged, with headers dlq-reason and "
        "dlq-original-topic.",
    }
    channels["auditCheckpoints"] = {
        "address": topics.audit_checkpoints,
        "description": "Signed checkpoints of the audit chain (JSON, not CloudEvents): "
        "municipality, length, head, at, key_id and an Ed25519 signature over them; keyed by "
        "municipality, one partition, kept for ever. Read back by `tsunagu audit verify`.",
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Tsunagu integration events",
            "version": "0.1.0",
            "description": "CloudEvents 1.0 (structured JSON) on Apache Kafka. Extensions: "
            "municipality, personid, partitionkey (the Kafka key), eventversion, traceparent.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def main() -> None:
    for relative, content in render().items():
        path = HERE / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        print(f"wrote contracts/{relative}")


if __name__ == "__main__":
    main()
