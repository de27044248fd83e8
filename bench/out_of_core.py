"""Peak memory of fit and predict on sequences larger than the memory they may use.

Each case runs in a fresh subprocess: a lazily generated 3D dask array (never held whole)
or a zarr array on disk, one epoch of ``fit`` and one ``predict``. Prints the size of the
data, the peak of NumPy's traced allocations (tracemalloc) and the growth of the peak
resident set (getrusage) over the process after its imports.

    python bench/out_of_core.py [--megabytes 320] [--chunk 1000]
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import zarr

CASE = r"""
import json, resource, sys, time, tracemalloc, warnings
import numpy as np, dask, dask.array as da, zarr
from crnn import RNNClassifier

warnings.simplefilter("ignore")
kind, n, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
T, F = 50, 40
if kind == "dask":
    X = da.random.default_rng(0).random((n, T, F), chunks=(chunk, T, F))
else:  # written by the parent process
    X = zarr.open_array(sys.argv[4], mode="r")
y = np.arange(n) % 3
dask.config.set(scheduler="synchronous")  # measured in this thread, not a pool's
clf = RNNClassifier(hidden_layer_sizes=(16,), max_iter=1, batch_size=64, random_state=0)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
tracemalloc.start()
start = time.perf_counter()
clf.fit(X, y)
fit_time = time.perf_counter() - start
fit_traced = tracemalloc.get_traced_memory()[1]
tracemalloc.reset_peak()
start = time.perf_counter()
labels = np.asarray(clf.predict(X))
predict_time = time.perf_counter() - start
predict_traced = tracemalloc.get_traced_memory()[1]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
assert labels.shape == (n,)
print(json.dumps(dict(kind=kind, data=n * T * F * 8, chunk=chunk * T * F * 8, fit_traced=fit_traced,
                      predict_traced=predict_traced,
                      rss=rss, fit_time=fit_time, predict_time=predict_time)))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=320)
    parser.add_argument("--chunk", type=int, default=1000, help="sequences per chunk")
    args = parser.parse_args()
    n = int(args.megabytes * 1e6 / (50 * 40 * 8))
    store = tempfile.mkdtemp()
    X = zarr.create_array(store, shape=(n, 50, 40), chunks=(args.chunk, 50, 40), dtype="float64")
    rng = np.random.default_rng(0)
    for start in range(0, n, args.chunk):
        X[start : start + args.chunk] = rng.random((min(args.chunk, n - start), 50, 40))
    for kind in ("dask", "zarr"):
        command = [sys.executable, "-c", CASE, kind, str(n), str(args.chunk), store]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        mb = {k: r[k] / 1e6 for k in ("data", "chunk", "fit_traced", "predict_traced", "rss")}
        print(f"{kind}: data {mb['data']:.0f} MB in chunks of {mb['chunk']:.0f} MB; "
              f"tracemalloc peak: fit (1 epoch) {mb['fit_traced']:.1f} MB, predict "
              f"{mb['predict_traced']:.1f} MB; peak RSS growth over both {mb['rss']:.1f} MB; "
              f"fit {r['fit_time']:.1f} s, predict {r['predict_time']:.1f} s")
    shutil.rmtree(store)


if __name__ == "__main__":
    main()
