"""Data-parallel training on Dask (crnn.dask.fit) against one process (RNNRegressor.fit).

Same data, model and epochs; runs interleaved (single, parallel, single, ...) so that the
load of a shared machine falls on both alike. Prints the medians, the bytes the workers
sent each other per averaging round, the size of the model state, the time of one
minibatch step and the fixed cost of a round, for the scaling model in RESULTS.md.

    python bench/dask_fit.py [--repeats 3] [--epochs 2] [--sync-every 16 64]
"""

import argparse
import os
import pickle
import statistics
import time
import warnings

import dask
import numpy as np
from distributed import Client, LocalCluster

import crnn.dask
from crnn import RNNRegressor


def _worker_counters(client):
    """Per worker: transfers sent to other workers, and CPU seconds of the process."""

    def counters(dask_worker):
        return dask_worker.transfer_outgoing_count_total, time.process_time()

    return np.array(list(client.run(counters).values()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--sync-every", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--sequences", type=int, default=4096)
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.sequences, 32, 16)).astype(np.float32)
    y = X[:, :, :4].sum(axis=1)  # (n, 4): a seq2vec regression
    params = dict(cell="lstm", hidden_layer_sizes=(args.hidden,), batch_size=32,
                  max_iter=args.epochs, dtype="float32", random_state=0, n_jobs=1)
    steps_per_epoch = -(-args.sequences // 32)
    print(f"LSTM H={args.hidden}, {args.sequences} sequences of 32 steps x 16 features, "
          f"float32, batch 32, {args.epochs} epochs")
    # glibc's default malloc thresholds in the workers, not distributed's
    # MALLOC_TRIM_THRESHOLD_=65536 (1.4x slower training, see crnn.dask).
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                               host="127.0.0.1", dashboard_address=None)
    with cluster, Client(cluster) as client:
        # Warm-up: start the workers' imports, scatter once.
        crnn.dask.fit(RNNRegressor(**{**params, "max_iter": 1}), X[:256], y[:256])
        times = {"single": [], **{k: [] for k in args.sync_every}}
        cpu = {"single": [], **{k: [] for k in args.sync_every}}
        transfers = {}
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            single = RNNRegressor(**params).fit(X, y)
            times["single"].append(time.perf_counter() - start)
            cpu["single"].append(time.process_time() - start_cpu)
            for k in args.sync_every:
                before = _worker_counters(client)
                start = time.perf_counter()
                crnn.dask.fit(RNNRegressor(**params), X, y, sync_every=k, client=client)
                times[k].append(time.perf_counter() - start)
                counts, seconds = (_worker_counters(client) - before).T
                cpu[k].append(seconds.max())  # the busier worker
                rounds = args.epochs * -(-(args.sequences // 2) // (32 * k))
                # Worker-to-worker transfers are the models (the shards come from the client).
                transfers[k] = counts.sum() / rounds
        # Dask counts the bytes of objects it does not know (an estimator) as
        # sys.getsizeof; what travels is the pickle.
        state = len(pickle.dumps(single))
        # The fixed cost of a round: a tiny model, one step per round.
        tiny = {**params, "hidden_layer_sizes": (2,), "max_iter": 1}
        small = X[:2048, :2, :1]
        start = time.perf_counter()
        crnn.dask.fit(RNNRegressor(**tiny), small, y[:2048], sync_every=1, client=client)
        round_cost = (time.perf_counter() - start) / (1024 // 32)
    t_single = statistics.median(times["single"])
    t_step = t_single / (args.epochs * steps_per_epoch)
    c_single = statistics.median(cpu["single"])
    print(f"single process: {t_single:.2f} s (runs {[round(t, 2) for t in times['single']]}),"
          f" {1e3 * t_step:.2f} ms per minibatch step; {c_single:.2f} CPU s")
    for k in args.sync_every:
        t, c = statistics.median(times[k]), statistics.median(cpu[k])
        print(f"2 workers, sync_every={k}: {t:.2f} s (runs {[round(v, 2) for v in times[k]]}),"
              f" speed-up {t_single / t:.2f}x; busier worker {c:.2f} CPU s"
              f" ({c_single / c:.2f}x less than single); {transfers[k]:.2f} model transfers"
              f" between workers per round = {transfers[k] * state / 1e6:.2f} MB")
    print(f"model state (pickled estimator, params + Adam m, v): {state / 1e6:.2f} MB;"
          f" {len(single.params_)} parameters")
    print(f"fixed cost of a round (tiny model, 1 step): {1e3 * round_cost:.1f} ms")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
