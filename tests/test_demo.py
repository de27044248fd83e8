"""The demo behind ``python -m crnn``, run as a user runs it (in its quick mode)."""

import re
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def quick_demo():
    result = subprocess.run(
        [sys.executable, "-m", "crnn", "--quick"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result


def rows(output, pattern):
    return {m["model"]: m for m in re.finditer(pattern, output, re.MULTILINE)}


def test_demo_runs_cleanly(quick_demo):
    assert quick_demo.stdout.startswith("crnn ")
    assert re.search(r"^Done in \d+ s\.$", quick_demo.stdout, re.MULTILINE)
    assert quick_demo.stderr == ""  # no warnings, no traceback


def test_demo_classifies_digits_with_every_cell(quick_demo):
    digits = rows(
        quick_demo.stdout,
        r"^  (?P<model>RNN|LSTM|GRU) +\(\d+,\) +(?P<epochs>\d+) +(?P<seconds>[\d.]+) s "
        r"+(?P<accuracy>[\d.]+)$",
    )
    assert sorted(digits) == ["GRU", "LSTM", "RNN"]
    for row in digits.values():
        # Ten classes: chance is 0.1; even the quick models learn far more.
        assert 0.5 < float(row["accuracy"]) <= 1
        assert int(row["epochs"]) >= 1


def test_demo_forecasts_the_weather_better_than_persistence(quick_demo):
    output = quick_demo.stdout
    assert "Seattle daily maximum temperature" in output
    persistence = float(re.search(r"^  persistence +([\d.]+)$", output, re.MULTILINE)[1])
    forecasts = rows(
        output,
        r"^  (?P<model>RNN|LSTM|GRU) +(?P<seconds>[\d.]+) s +(?P<mae>[\d.]+) +(?P<gain>[-+]\d+)%$",
    )
    assert sorted(forecasts) == ["GRU", "LSTM", "RNN"]
    for row in forecasts.values():
        assert float(row["mae"]) < 0.95 * persistence
        assert int(row["gain"]) < 0
