"""bench/forecast.py still runs end to end: a tiny quick profile, no error asserted."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "forecast.py"
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.skipif(not BENCH.exists(), reason="bench/forecast.py not found next to tests/")
def test_quick_forecast_bench_runs(capsys):
    spec = importlib.util.spec_from_file_location("forecast_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # Tiny series; the statsmodels peers join when statsmodels is installed.
    results = bench.main(["--quick", "--scale", "0.25"])
    out = capsys.readouterr().out
    assert "| series | model |" in out and "crnn / naive best" in out
    assert len(results) == 5
    for models in results.values():
        assert {"naive", "seasonal naive", "drift", "crnn"} <= set(models)
        for rows in models.values():
            assert all(row["rmseH"] >= row["maeH"] > 0 for row in rows)
