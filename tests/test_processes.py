"""Transformed functions in other processes and threads: multiprocessing (fork
and spawn), concurrent.futures (threads and processes) and Dask.  Workers
receive functions by reference and reach native code through the disk cache.
Pools are small: a spawned worker costs a second or two."""
import concurrent.futures as cf
import multiprocessing as mp
import pickle

import numpy as np
import pytest

import jitgrad
import procs_helpers as H

W = np.array([0.5, -0.25, 1.0])


def _chunks(k=4):
    X, y = H.data(n_rows=64)
    return X, y, [(W, X[i::k], y[i::k]) for i in range(k)]


def test_pool_starmap_of_a_gradient_with_fork():
    X, y, chunks = _chunks()
    with mp.get_context("fork").Pool(2) as pool:
        parts = pool.starmap(H.GRAD, chunks)
    np.testing.assert_allclose(sum(parts), H.GRAD(W, X, y), rtol=1e-13)


def test_spawned_worker_loads_native_code_from_the_disk_cache():
    X, y, chunks = _chunks(2)
    settings = {"compile": "always", "cache_dir": jitgrad.config.cache_dir}
    with jitgrad.config(**settings):
        want = H.GRAD(*chunks[0])           # compiled here (or loaded): the cache is warm
    with mp.get_context("spawn").Pool(1) as pool:
        got, counts = pool.apply(H.call_with_settings, (settings, H.GRAD, *chunks[0]))
        (other, _), = pool.starmap(H.call_with_settings, [(settings, H.decorated, X[0])])
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert counts["compiled"] == 0 and counts["loaded"] >= 1, counts
    np.testing.assert_allclose(other, H.decorated(X[0]), rtol=1e-14)


def test_process_pool_executor_and_thread_pool_executor():
    X, y, chunks = _chunks()
    want = H.GRAD(W, X, y)
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as ex:
        parts = list(ex.map(H.GRAD, *zip(*chunks)))
    np.testing.assert_allclose(sum(parts), want, rtol=1e-13)
    with cf.ThreadPoolExecutor(2) as ex:
        parts = list(ex.map(H.GRAD, *zip(*chunks)))
        values = list(ex.map(jitgrad.jit(H.vector_f), [X[:, 0]] * 4))
    np.testing.assert_allclose(sum(parts), want, rtol=1e-13)
    for v in values:
        np.testing.assert_allclose(v, H.vector_f(X[:, 0]), rtol=1e-15)


def test_a_worker_that_unpickles_a_transform_each_task_keeps_its_caches():
    # every task of a pool unpickles the function it runs: the registry gives
    # back the module's own transform, with its compiled signatures
    X, y, chunks = _chunks()
    for c in chunks:
        assert pickle.loads(pickle.dumps(H.GRAD)) is H.GRAD
        H.GRAD(*c)
    assert H.staged_calls(*chunks[0]) >= 4


def test_a_task_that_builds_its_transform_per_call_gets_hot_and_compiles():
    X, y = H.data(n_rows=13)             # a signature of this test's own
    with jitgrad.config(compile="auto", hot_seconds=0):
        for _ in range(3):
            H.fresh_grad_per_call(W, X, y)
        jitgrad.wait_for_compiles()
    key = H.GRAD._staged.signature((W, X, y))[3]
    assert H.GRAD._staged.cache[key].exe.fn is not None
    np.testing.assert_allclose(H.fresh_grad_per_call(W, X, y), H.GRAD(W, X, y), rtol=1e-14)


def test_dask_data_parallel_gradient_on_a_local_cluster():
    distributed = pytest.importorskip(
        "dask.distributed", reason="dask[distributed] is not installed: pip install '.[dask]'")
    X, y, chunks = _chunks()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        data = [(client.scatter(Xc), client.scatter(yc)) for _, Xc, yc in chunks]
        w = W
        for _ in range(2):      # rounds: the workers keep GRAD (and its caches) between them
            parts = [client.submit(H.GRAD, w, Xf, yf, pure=False) for Xf, yf in data]
            total = client.submit(sum, parts).result()
        calls = client.run(H.staged_calls, w, X, y)
    np.testing.assert_allclose(total, H.GRAD(w, X, y), rtol=1e-13)
    assert sum(calls.values()) == 2 * len(chunks), calls   # one transform per worker, warm
