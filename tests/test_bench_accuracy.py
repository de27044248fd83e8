"""The accuracy suite (bench/accuracy.py) still runs end to end: its quick profile, in seconds."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
from _accuracy_tasks import TASKS  # noqa: E402  (bench/ is not a package)


def test_quick_profile_runs_every_task_and_method(tmp_path):
    out = tmp_path / "quick.json"
    cmd = [
        sys.executable,
        str(BENCH / "accuracy.py"),
        "--quick",
        "--jobs",
        "1",
        "--no-torch",
        "--out",
        str(out),
        "--crnn",
        'small={"hidden_layer_sizes": [8]}',
    ]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert [r["task"] for r in result["records"]] == list(TASKS)
    for record in result["records"]:
        methods = set(record["results"])
        assert {"crnn", "crnn small", "1-NN", "MLP", "no skill"} <= methods
        assert ("persistence" in methods) == (record["kind"] == "seq2seq")
        for values in record["results"].values():
            metric = values.get("accuracy", values.get("rmse"))
            assert np.isfinite(metric) and metric >= 0
        assert record["results"]["crnn"]["epochs"] == 3  # --quick caps the fits
    assert "| task | n_train | seeds | crnn | crnn small | 1-NN | MLP" in proc.stdout
