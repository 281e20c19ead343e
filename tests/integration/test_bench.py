"""Each benchmark once, tiny, against the real servers: it runs and reports usable figures.

Only that: how fast is for ``make bench`` to say, never for a test to judge.
"""

from __future__ import annotations

import importlib
import math

import pytest

from bench.common import detail
from bench.document_fold import compare
from bench.run import BENCHMARKS
from tests.infrastructure import Infrastructure

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("name", "module"), BENCHMARKS, ids=[name for name, _ in BENCHMARKS])
def test_a_tiny_run_reports_finite_positive_figures_against_its_own_baseline(
    name: str, module: str, infrastructure: Infrastructure
) -> None:
    figures = importlib.import_module(module).run(infrastructure, tiny=True)

    assert figures, f"{name} reported nothing"
    assert all(key.startswith(f"{name}.") for key in figures), figures
    assert all(math.isfinite(value) and value > 0 for value in figures.values()), figures
    shown = {k: v for k, v in detail()[name].items() if isinstance(v, dict) and "value" in v}
    for key, value in figures.items():
        if not key.endswith(".ratio"):
            assert shown[key]["value"] == value
    compared = [entry for entry in shown.values() if "baseline" in entry]
    for entry in compared:
        assert math.isfinite(entry["baseline"]) and entry["baseline"] > 0
        assert entry["ratio"] == pytest.approx(entry["value"] / entry["baseline"])
    if f"{name}.ratio" in figures:
        # The ratio is the figure over the baseline that the same run measured.
        [measured] = compared
        assert figures[f"{name}.ratio"] == pytest.approx(measured["value"] / measured["baseline"])


def test_the_sketch_of_one_document_per_person_is_measured_beside_the_floor(
    infrastructure: Infrastructure,
) -> None:
    measured = compare(infrastructure, events=500, rounds=1)

    assert [name for name, _ in measured] == ["floor", "sketch"]
    for _, cost in measured:
        assert math.isfinite(cost.events_per_s) and cost.events_per_s > 0, cost
        assert math.isfinite(cost.python_us) and cost.python_us > 0, cost
        # Read in the kernel's clock ticks (10 ms): a tiny run's server may show none.
        assert math.isfinite(cost.postgres_us) and cost.postgres_us >= 0, cost
