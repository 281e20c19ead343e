"""``python -m bench.profile``: a py-spy recording summarised, only the stacks asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.profile import function_of, main, markdown, summarise

pytestmark = pytest.mark.unit

STACKS = [
    "process 1:python;<module> (bench/run.py:1);publish (bench/b3_catchup.py:60) 40\n",
    "process 2:python;catch_up (services/feeds/rebuild.py:90);"
    "consume_batch (services/feeds/runner.py:77);"
    "stage (services/feeds/store.py:457) 30\n",
    "process 2:python;catch_up (services/feeds/rebuild.py:90);"
    "consume_batch (services/feeds/runner.py:80);"
    "wait (psycopg/connection.py:479) 10\n",
    "process 3:python;catch_up (services/feeds/rebuild.py:91);poll (kafka/consumer.py:9) 10\n",
    "a line that is not a stack\n",
]


def test_a_frame_is_named_by_its_file_and_function_without_the_line() -> None:
    assert function_of("stage (services/feeds/store.py:457)") == "store.py:stage"
    assert function_of("<native>") == "<native>"


def test_only_the_stacks_through_the_function_asked_for_are_counted() -> None:
    profile = summarise(STACKS, "catch_up")

    assert profile.samples == 50
    assert profile.own == {"store.py:stage": 30, "connection.py:wait": 10, "consumer.py:poll": 10}
    # A function appears once per stack, wherever and however often it sits in it.
    assert profile.inclusive["runner.py:consume_batch"] == 40
    assert profile.inclusive["rebuild.py:catch_up"] == 50
    assert "b3_catchup.py:publish" not in profile.inclusive
    # Frames below the one asked for hold every sample alike: they are left out.
    assert not any(function.startswith("process ") for function in profile.inclusive)
    assert summarise(STACKS, "consume_batch").inclusive["runner.py:consume_batch"] == 40
    assert summarise(STACKS, "runner.py:consume_batch").samples == 40
    assert summarise(STACKS, "other.py:consume_batch").samples == 0


def test_the_summary_gives_shares_of_the_samples_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "| `store.py:stage` | 60.0% |" in markdown(summarise(STACKS, "catch_up"), top=3)
    assert markdown(summarise(STACKS, "nowhere"), top=3).startswith("No samples")

    recorded = tmp_path / "b3.raw"
    recorded.write_text("".join(STACKS), encoding="utf-8")
    assert main([str(recorded), "--within", "publish", "--top", "1"]) == 0
    assert "| `b3_catchup.py:publish` | 100.0% |" in capsys.readouterr().out
