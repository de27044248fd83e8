"""The benchmark suite (bench/run.py) still runs end to end: a tiny run, no timing asserted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the benchmark compares against PyTorch")
pytest.importorskip("pyximport", reason="the benchmark compiles its BLAS timing loop with Cython")

RUN = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def test_quick_profile_runs_and_implementations_agree(tmp_path):
    cmd = [sys.executable, str(RUN), "--profile", "quick", "--threads", "1", "--out", str(tmp_path)]
    cmd += ["--repeats", "1", "--min-time", "0", "--max-time", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]

    result = json.loads((tmp_path / "quick.json").read_text())
    (run,) = result["runs"]
    assert run["threads"] == 1 and run["torch_threads"] == 1
    assert all(pool["num_threads"] == 1 for pool in run["threadpools"])
    assert {rec["bench"] for rec in run["records"]} == {"train", "infer", "stream", "varlen", "fit"}
    for rec in run["records"]:
        assert {"crnn", "torch"} <= set(rec["times"])
        if rec["bench"] == "fit":
            assert 0 < rec["kernel_seconds"] < rec["fit_seconds"]
            assert rec["peak_bytes"] > 0 and rec["needed_bytes"] > 0
        else:
            # Every implementation computed the same numbers as the reference before being timed.
            assert rec["check"]["agree"] is True, rec["check"]
        if rec["bench"] == "train":
            assert rec["flops"] > 0 and rec["blas"]["seconds"] > 0

    report = (tmp_path / "quick.md").read_text()
    for heading in (
        "## 1 thread",
        "### Targets",
        "### Training step",
        "### Streaming",
        "### Variable-length",
        "### fit()",
    ):
        assert heading in report
