from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from services.cli import parser
from services.wiring import FEEDS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def cli_choices(command: str) -> list[str]:
    subparsers = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    service = next(a for a in subparsers.choices[command]._actions if a.dest == "service")
    return list(service.choices or [])


def test_compose_parses_and_runs_every_process_of_the_platform() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "postgres", "otel-collector"} <= set(services)
    commands = {name: s.get("command") for name, s in services.items()}
    for service in cli_choices("serve"):
        assert ["serve", service, "--host", "0.0.0.0", "--port", "8000"] in commands.values()
    for service in cli_choices("relay"):
        assert ["relay", service] in commands.values()
    for feed in FEEDS:
        assert ["project", feed] in commands.values()
    assert commands["sweeper"] == ["views", "sweep", "--every", "60"]
    assert commands["checkpointer"] == ["audit", "checkpoint", "--every"]
    assert compose["x-tsunagu"]["volumes"] == ["tsunagu-var:/tmp/tsunagu"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    tsunagu_env = compose["x-tsunagu"]["environment"]
    assert tsunagu_env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://otel-collector")
