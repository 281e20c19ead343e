"""Where ``python -m bench.run`` keeps its figures: a partial run replaces only its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.run import selected, write

pytestmark = pytest.mark.unit


def test_a_partial_run_replaces_its_own_figures_and_keeps_the_others(tmp_path: Path) -> None:
    write({"B1.commands_per_s": 1.0, "B1.ratio": 0.1, "B2.p50_ms": 9.0}, ["B1", "B2"], tmp_path, {})
    write({"B1.commands_per_s": 2.0}, ["B1"], tmp_path, {"tiny": False})

    figures = json.loads((tmp_path / "latest.json").read_text())
    assert figures["B1.commands_per_s"] == 2.0
    assert "B1.ratio" not in figures
    assert figures["B2.p50_ms"] == 9.0
    assert {"cores", "memory_gb"} <= set(figures["machine"])
    assert "date" in figures
    notes = json.loads((tmp_path / "latest-detail.json").read_text())
    assert notes["B1"]["tiny"] is False
    assert "date" in notes["B2"]


def test_only_names_known_benchmarks() -> None:
    assert [name for name, _ in selected("b1")] == ["B1"]
    with pytest.raises(SystemExit):
        selected("B1,B9")
