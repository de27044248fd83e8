"""Run small fits under valgrind's memcheck; fail on any memory error or definite leak in crnn.

Usage, from the repository root, with crnn installed the ordinary way (not the
CRNN_SANITIZE=1 build: AddressSanitizer and valgrind exclude each other)::

    python tools/valgrind_fit.py [--log valgrind.log]

The child process fits an LSTM, a bidirectional GRU tagger and an encoder-decoder on tiny
data, predicts, trains on with partial_fit, saves and loads, and calls the functional API,
including calls the Cython glue refuses. It runs with ``PYTHONMALLOC=malloc`` so that
memcheck sees every allocation. A report counts against crnn when one of its stack frames
is in crnn's extension module (the C kernels or the Cython glue); the interpreter's and
NumPy's own reports are counted for context only. Takes a few minutes.

Exit status: 0 clean, 1 if memcheck reports an error or a definite leak in crnn's code,
2 if valgrind is missing or the child failed.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

CHILD = """
import warnings
import numpy as np
from crnn._estimators import RNNClassifier, RNNRegressor
from crnn._persistence import load, save
from crnn.functional import RNNLayout, backward, forward, init_params
import crnn._kernels as K

warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
X = rng.normal(size=(12, 5, 2))
small = dict(hidden_layer_sizes=(4, 3), max_iter=2, random_state=0)
models = [
    (RNNRegressor(cell="lstm", dtype="float64", **small), X.sum(axis=(1, 2))),
    (RNNClassifier(cell="gru", bidirectional=True, **small), X[:, :, 0] > 0),
    (RNNRegressor(cell="rnn", pattern="encdec", dropout=0.2, **small), X[:, :3]),
]
for model, y in models:
    model.fit(X, y).partial_fit(X, y)
    model.predict([x[: 1 + i % 5] for i, x in enumerate(X)])
    save(model, "model.npz")
    load("model.npz").predict(X)

layout = RNNLayout("lstm", 2, (3,), bidirectional=True)
params = init_params(layout, random_state=0)
Y, _, cache = forward(layout, params, X.swapaxes(0, 1), lengths=[5, 1] * 6)
backward(cache, np.ones_like(Y), truncate=2)
for bad in (np.float32, "lengths"):
    try:
        forward(layout, params, X.swapaxes(0, 1).astype(bad) if bad is np.float32 else
                X.swapaxes(0, 1), lengths=[6] * 12 if bad == "lengths" else None)
    except (TypeError, ValueError):
        pass
try:  # refused by the glue after it has taken every buffer
    K.buffer_sizes(K.CELLS["gru"], 2**16, 2**16, 1, 1)
except ValueError:
    pass
print("child finished")
"""

RECORD_START = re.compile(r"^==\d+== (\S.*)$")
CRNN_FRAME = re.compile(r"crnn/_kernels|_kernels\.cpython|src/csrc/|crnn_(forward|backward)_f")


def records(log):
    """Each memcheck report as (headline, [frame lines])."""
    current = None
    for line in log.splitlines():
        match = RECORD_START.match(line)
        if match is None:  # a blank "==pid== " line ends a report
            if current is not None:
                yield current
                current = None
            continue
        text = match.group(1)
        if current is None:
            current = (text, [])
        else:
            current[1].append(text)
    if current is not None:
        yield current


def classify(headline):
    if "definitely lost" in headline:
        return "definite leak"
    if re.match(
        r"(Invalid|Mismatched|Conditional jump|Use of uninitialised|Syscall param|"
        r"Source and destination overlap|Argument)",
        headline,
    ):
        return "error"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", help="keep memcheck's full log in this file")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)")
        return 2
    with tempfile.TemporaryDirectory() as workdir:
        log_path = os.path.abspath(args.log) if args.log else os.path.join(workdir, "memcheck.log")
        env = {
            **os.environ,
            "PYTHONMALLOC": "malloc",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }
        env.pop("LD_PRELOAD", None)
        command = [
            "valgrind",
            "--tool=memcheck",
            "--leak-check=full",
            "--show-leak-kinds=definite",
            "--num-callers=40",
            f"--log-file={log_path}",
            sys.executable,
            "-c",
            CHILD,
        ]
        child = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
        with open(log_path) as f:
            log = f.read()
    if child.returncode != 0 or "child finished" not in child.stdout:
        print(child.stdout, child.stderr, sep="\n")
        print("the child process failed under valgrind")
        return 2
    counts = {}
    ours = []
    for headline, frames in records(log):
        kind = classify(headline)
        if kind is None:
            continue
        in_crnn = any(CRNN_FRAME.search(frame) for frame in frames)
        counts[kind, in_crnn] = counts.get((kind, in_crnn), 0) + 1
        if in_crnn:
            ours.append("\n    ".join([headline, *frames]))
    for kind in ("error", "definite leak"):
        print(
            f"{kind}s: {counts.get((kind, True), 0)} in crnn, "
            f"{counts.get((kind, False), 0)} elsewhere (interpreter, NumPy, BLAS)"
        )
    summary = [
        line for line in log.splitlines() if "definitely lost:" in line or "ERROR SUMMARY" in line
    ]
    print("\n".join(summary))
    if ours:
        print("\nReports with a frame in crnn:\n" + "\n\n".join(ours))
        return 1
    print("memcheck: no errors and no definite leaks in crnn's code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
