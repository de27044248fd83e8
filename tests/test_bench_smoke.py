"""The benchmark suite (bench/run.py) still runs end to end: tiny runs, no timing asserted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the benchmark compares against PyTorch")
pytest.importorskip("pyximport", reason="the benchmark compiles its BLAS timing loop with Cython")

RUN = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def _run_quick(tmp_path, *options):
    """Run the quick profile with one sample per case; return its JSON result and Markdown."""
    cmd = [sys.executable, str(RUN), "--profile", "quick", "--out", str(tmp_path), *options]
    cmd += ["--repeats", "1", "--min-time", "0", "--max-time", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((tmp_path / "quick.json").read_text()), (tmp_path / "quick.md").read_text()


def _assert_agree(records):
    for rec in records:
        assert {"crnn", "torch"} <= set(rec["times"])
        if rec["bench"] == "fit":
            assert 0 < rec["kernel_seconds"] < rec["fit_seconds"]
            assert rec["peak_bytes"] > 0 and rec["needed_bytes"] > 0
        else:
            # Every implementation computed the same numbers as the reference before being timed.
            assert rec["check"]["agree"] is True, rec["check"]
        if rec["bench"] == "train":
            assert rec["flops"] > 0 and rec["blas"]["seconds"] > 0


def test_quick_profile_runs_and_implementations_agree(tmp_path):
    result, report = _run_quick(tmp_path, "--threads", "1")

    (run,) = result["runs"]
    assert run["threads"] == 1 and run["torch_threads"] == 1
    assert all(pool["num_threads"] == 1 for pool in run["threadpools"])
    assert {rec["bench"] for rec in run["records"]} == {
        "train",
        "infer",
        "stream",
        "varlen",
        "fit",
    }
    _assert_agree(run["records"])
    assert all(rec["n_jobs"] is None for rec in run["records"] if rec["bench"] == "fit")

    for heading in (
        "## 1 thread",
        "### Targets",
        "### Training step",
        "### Streaming",
        "### Variable-length",
        "### fit()",
    ):
        assert heading in report
    assert "thread mode" not in report


def test_two_thread_mode_splits_crnn_batches_and_says_so(tmp_path):
    suites = ("--suites", "train", "stream", "fit", "--impls", "crnn", "torch")
    result, report = _run_quick(tmp_path, "--threads", "2", *suites)

    (run,) = result["runs"]
    assert run["torch_threads"] == 2
    # crnn's one-BLAS-thread limit holds only while crnn is timed: the worker's pools are back.
    assert all(pool["num_threads"] == 2 for pool in run["threadpools"])
    assert "batch split over 2 threads, 1-thread BLAS" in run["crnn_mode"]
    _assert_agree(run["records"])
    assert all(rec["n_jobs"] == 2 for rec in run["records"] if rec["bench"] == "fit")
    assert report.count("crnn's 2-thread mode: batch split over 2 threads, 1-thread BLAS") == 4


def test_regularizers_bench_runs():
    """bench/regularizers.py (readouts and dropouts against the step) prints its table."""
    script = RUN.parent / "regularizers.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| lstm")]
    assert [row.split(" | ")[5] for row in rows] == [
        "last (plain step)",
        "mean",
        "max",
        "attention",
        "recurrent_dropout=0.25",
        "input_dropout=0.25",
    ]
