"""A data-parallel gradient with Dask: each worker holds some chunks of a large
data set, computes the gradient of the loss over its chunks with jitgrad, and
the chunks' gradients are summed.  Gradient descent runs a few rounds; the
script reports the time per gradient in one process and on the cluster, and
checks that both give the same gradient.

The model (dask_model.py) is a module of its own, so that tasks refer to
``dask_model.GRAD`` by name: each worker imports it once and keeps its
compiled code for every round.

Run it on a local cluster (started here, on this machine's cores):

    python examples/dask_gradient.py [--rows 2000000] [--chunks 4] [--workers 2]

or on a real cluster, giving its scheduler's address:

    dask scheduler                                  # on one machine
    JITGRAD_COMPILE=always dask worker tcp://scheduler-host:8786 --nthreads 1
                                                    # on each worker machine
    python examples/dask_gradient.py --scheduler tcp://scheduler-host:8786

The workers need numpy, numba and jitgrad installed (``pip install
'jitgrad[dask]'``); this script sends them dask_model.py itself
(``client.upload_file``).  Each machine compiles the gradient once and keeps
it in its disk cache (``JITGRAD_CACHE_DIR``, default ``~/.cache/jitgrad``);
``JITGRAD_COMPILE=always`` (or ``client.run(dask_model.compile_at_once)``, as
below) makes a worker compile (or load) it on its first task rather than after
running a few on the NumPy interpreter.  One thread per
worker process: compiled loops over large arrays use the machine's cores
themselves.
"""
import argparse
import os
import sys
import time

import numpy as np

try:
    from dask.distributed import Client, LocalCluster
except ImportError:
    print("This example needs Dask's distributed scheduler.\n"
          "Install it with:  pip install 'dask[distributed]'   (or: pip install '.[dask]')",
          file=sys.stderr)
    sys.exit(1)

import jitgrad

import dask_model

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--rows", type=int, default=2_000_000)
parser.add_argument("--features", type=int, default=16)
parser.add_argument("--chunks", type=int, default=4)
parser.add_argument("--workers", type=int, default=2, help="local cluster size")
parser.add_argument("--rounds", type=int, default=10)
parser.add_argument("--scheduler", help="address of a running Dask scheduler (default: a "
                                        "local cluster)")


def median_time(fn, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    args = parser.parse_args()
    rows = args.rows // args.chunks
    w = np.zeros(args.features)

    # -- one process: the whole data set (the chunks, joined), one compiled gradient call
    parts = [dask_model.make_chunk(rows, args.features, k) for k in range(args.chunks)]
    X, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    del parts
    with jitgrad.config(compile="always"):
        want = dask_model.GRAD(w, X, y)           # compiles (or loads from the disk cache)
        single = median_time(lambda: dask_model.GRAD(w, X, y), args.rounds)
    print(f"one process: {X.shape[0]:,} rows x {args.features} features "
          f"({X.nbytes / 2**20:.0f} MiB), {single * 1e3:.1f} ms per gradient")

    # -- the cluster: each worker makes its chunks (in real use: loads them) and keeps them
    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
        client.upload_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "dask_model.py"))
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    client.run(dask_model.compile_at_once)
    n_workers = len(client.scheduler_info()["workers"])
    chunks = [client.submit(dask_model.make_chunk, rows, args.features, k) for k in range(args.chunks)]

    def gradient(w):
        """The sum of the chunks' gradients (each computed where its chunk is)."""
        parts = [client.submit(dask_model.chunk_gradient, w, c, pure=False) for c in chunks]
        return sum(client.gather(parts))

    t0 = time.perf_counter()
    got = gradient(w)                             # the workers compile (or load) GRAD here
    first = time.perf_counter() - t0
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)
    per_round = median_time(lambda: gradient(w), args.rounds)
    print(f"{n_workers} Dask workers, {args.chunks} chunks: first round {first:.2f} s "
          f"(workers compile or load the gradient), then {per_round * 1e3:.1f} ms per gradient")
    print(f"speed-up over one process: {single / per_round:.2f}x  (same gradient: yes; "
          f"{os.cpu_count()} cores here, and one process already runs each loop over "
          f"2**18 elements or more on all of them: a cluster of one machine mostly adds "
          f"its transfers, more machines add cores and memory bandwidth)")

    # -- a few rounds of gradient descent on the cluster
    lr = 1.0 / X.shape[0]
    for _ in range(args.rounds):
        w = w - lr * gradient(w)
    print(f"after {args.rounds} steps of gradient descent: mean loss "
          f"{dask_model.loss(w, X, y) / X.shape[0]:.4f} (at w = 0: {np.log(2):.4f})")
    client.close()
    if cluster is not None:
        cluster.close()


# (a guard: Dask starts its local workers as new processes, which import this file)
if __name__ == "__main__":
    main()
