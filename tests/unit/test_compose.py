from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

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


def tsunagu_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The containers built from Tsunagu's image."""
    return {name: s for name, s in compose["services"].items() if "build" in s}


def test_compose_survives_down_and_up_with_data_on_volumes_and_topics_declared() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kafka = compose["services"]["kafka"]
    [mount] = kafka["volumes"]
    volume, _, path = mount.partition(":")
    assert volume in compose["volumes"]
    assert kafka["environment"]["KAFKA_LOG_DIRS"] == path
    # A volume formatted once is started again as it is, under the same cluster id.
    assert kafka["environment"]["CLUSTER_ID"]
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    [postgres_mount] = compose["services"]["postgres"]["volumes"]
    assert postgres_mount.partition(":")[0] in compose["volumes"]


def test_a_one_shot_setup_runs_before_every_tsunagu_process() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = tsunagu_services(compose)
    setup = services.pop("setup")
    assert setup["command"] == ["setup"]
    parser().parse_args(setup["command"])
    assert setup["restart"] == "on-failure"
    assert setup["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "kafka": {"condition": "service_healthy"},
    }
    for name, service in services.items():
        assert service["depends_on"]["setup"] == {"condition": "service_completed_successfully"}, (
            name
        )


def test_every_tsunagu_container_has_a_health_check_of_its_own_kind() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = tsunagu_services(compose)
    assert services.pop("setup")["healthcheck"] == {"disable": True}
    for name, service in services.items():
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "tsunagu", "health"], name
        parser().parse_args(test[2:])
        if service["command"][0] == "serve":
            assert test[3:] == ["--url", "http://127.0.0.1:8000/health"], name
        else:
            # A worker's own state: ready, or waiting for a server.
            assert test[3:] == [], name
    assert compose["x-tsunagu"]["environment"]["TSUNAGU_HEALTH_FILE"]


def test_credentials_come_from_the_environment() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    postgres = compose["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    url = compose["x-tsunagu"]["environment"]["DATABASE_URL"]
    assert ":${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}@" in url
    assert compose["x-tsunagu"]["environment"]["TSUNAGU_JWT_SECRET"].startswith(
        "${TSUNAGU_JWT_SECRET:?"
    )
