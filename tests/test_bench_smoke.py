"""The benchmark suite (bench/run.py) still runs end to end: tiny runs, no timing asserted."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the benchmark compares against PyTorch")
pytest.importorskip("pyximport", reason="the benchmark compiles its BLAS timing loop with Cython")

RUN = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def _importable(*names):
    try:
        for name in names:
            importlib.import_module(name)
    except ImportError:
        return False
    return True


# The bench's optional JAX peer of the fit suite: its workers leave JAX out when an import
# fails, so that is what is tried here (not merely whether the packages are installed).
HAVE_JAX = _importable("jax", "optax")
NO_JAX = 'jax or optax cannot be imported (pip install "jax[cpu]==0.10.2" optax)'


def _run_quick(tmp_path, *options, env=None):
    """Run the quick profile with one sample per case; return its JSON result and Markdown."""
    cmd = [sys.executable, str(RUN), "--profile", "quick", "--out", str(tmp_path), *options]
    cmd += ["--repeats", "1", "--min-time", "0", "--max-time", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((tmp_path / "quick.json").read_text()), (tmp_path / "quick.md").read_text()


def _assert_agree(records):
    for rec in records:
        assert {"crnn", "torch"} <= set(rec["times"])
        if rec["bench"] == "fit":
            assert 0 < rec["kernel_seconds"] < rec["fit_seconds"]
            assert rec["peak_bytes"] > 0 and rec["needed_bytes"] > 0
            # The JAX loop's loss, gradients and loss after one Adam step against PyTorch's.
            assert ("jax" in rec["times"]) == HAVE_JAX
            if HAVE_JAX:
                assert rec["check"]["agree"] is True, rec["check"]
                assert rec["check"]["errors"]["jax"] < 1e-5, rec["check"]
        else:
            assert "jax" not in rec["times"]  # JAX takes part in fit only
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
    if HAVE_JAX:
        assert "jax" in run["versions"] and "jax" not in run["skipped"]
        assert run["jax_settings"]["PJRT_NPROC"] == "1"
        assert run["jax_settings"]["jax_cpu_enable_async_dispatch"] is False
        assert "| jax epochs/s | vs torch | vs jax |" in report
    else:
        assert "jax is left out" in run["skipped"]["jax"]

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
    impls = ("crnn", "torch", "jax") if HAVE_JAX else ("crnn", "torch")
    suites = ("--suites", "train", "stream", "fit", "--impls", *impls)
    result, report = _run_quick(tmp_path, "--threads", "2", *suites)

    (run,) = result["runs"]
    assert run["torch_threads"] == 2
    # crnn's one-BLAS-thread limit holds only while crnn is timed: the worker's pools are back.
    assert all(pool["num_threads"] == 2 for pool in run["threadpools"])
    assert "batch split over 2 threads, 1-thread BLAS" in run["crnn_mode"]
    _assert_agree(run["records"])
    assert all(rec["n_jobs"] == 2 for rec in run["records"] if rec["bench"] == "fit")
    assert report.count("crnn's 2-thread mode: batch split over 2 threads, 1-thread BLAS") == 4
    if HAVE_JAX:  # XLA's defaults at more than one thread
        assert run["jax_settings"]["jax_cpu_enable_async_dispatch"] is True


def test_jax_left_out_with_a_note_when_it_cannot_be_imported(tmp_path):
    """With ``jax`` selected but not importable, the bench runs the rest and says why."""
    hide = tmp_path / "hide"
    (hide / "jax").mkdir(parents=True)
    (hide / "jax" / "__init__.py").write_text('raise ImportError("jax hidden by the test")\n')
    path = os.pathsep.join(filter(None, [str(hide), os.environ.get("PYTHONPATH")]))
    result, report = _run_quick(
        tmp_path,
        *("--threads", "1", "--suites", "infer", "--impls", "crnn", "torch", "jax"),
        env={**os.environ, "PYTHONPATH": path},
    )
    (run,) = result["runs"]
    note = run["skipped"]["jax"]
    assert note.startswith("jax is left out (") and 'pip install "jax[cpu]==0.10.2" optax' in note
    assert note in report
    assert "jax" not in run["versions"] and run["jax_settings"] is None
    assert all(set(rec["times"]) == {"crnn", "torch"} for rec in run["records"])


# The check the fit suite runs before timing, in both dtypes and on every cell: the quick
# profile's fit cases are float32 LSTM and GRU only.
_JAX_CHECK = """
import json, sys
sys.path.insert(0, sys.argv[1])
import jax, optax, torch
import _fit
out = {}
for cell in ("rnn", "lstm", "gru"):
    for dtype in ("float32", "float64"):
        case = _fit.FitCase(cell, dtype, N=16, T=6, I=3, H=5, B=8, epochs=1)
        X, y = _fit._data(case)
        model = _fit._jax_model(jax, optax, case)
        out[cell + " " + dtype] = _fit._jax_check(torch, jax, model, case, X, y)
print(json.dumps(out))
"""


@pytest.mark.skipif(not HAVE_JAX, reason=NO_JAX)
def test_jax_loop_matches_torch_after_one_adam_step():
    """From PyTorch's initial weights, the JAX model's loss, gradients and loss after one Adam
    step are PyTorch's: gate order, GRU reset convention and the update are the same."""
    proc = subprocess.run(
        [sys.executable, "-c", _JAX_CHECK, str(RUN.parent)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    checks = json.loads(proc.stdout.splitlines()[-1])
    assert len(checks) == 6
    for name, check in checks.items():
        assert check["reference"] == "torch" and check["agree"] is True, (name, check)
        limit = 1e-5 if name.endswith("float32") else 1e-12
        assert check["errors"]["jax"] < limit, (name, check)


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
