"""A distributed process started without a server's address says what it needs and exits 2,
before it waits for anything or makes any file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services import processes
from services.platform.settings import Settings

pytestmark = pytest.mark.unit

PROCESSES: dict[str, Callable[[Settings], int]] = {
    "the relay": lambda settings: processes.relay_process(settings, "intake"),
    "the projector": lambda settings: processes.feed_process(settings, "projection"),
    "the ingest": processes.ingest_process,
}


@pytest.mark.parametrize("who", PROCESSES)
@pytest.mark.parametrize(
    ("database", "kafka"),
    [(None, None), ("postgresql://127.0.0.1:1/none", None), (None, "127.0.0.1:1")],
    ids=["neither", "no-kafka", "no-database"],
)
def test_a_process_without_its_servers_addresses_says_so_and_exits_2(
    who: str,
    database: str | None,
    kafka: str | None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(
        var_dir=tmp_path / "var", database_url=database, kafka_bootstrap_servers=kafka
    )
    assert PROCESSES[who](settings) == 2
    assert capsys.readouterr().err == f"{who} needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS\n"
    assert not (tmp_path / "var").exists()


def test_setup_without_kafka_or_without_a_database_says_so_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database_only = Settings(var_dir=tmp_path, database_url="postgresql://127.0.0.1:1/none")
    assert processes.setup(database_only, schemas=False) == 2
    kafka_only = Settings(var_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1")
    assert processes.setup(kafka_only, schemas=True) == 2
    assert capsys.readouterr().err.count("set KAFKA_BOOTSTRAP_SERVERS") == 2
