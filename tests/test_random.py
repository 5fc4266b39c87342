"""Randomness inside transformed functions: NumPy's random functions are
reported while tracing, and jitgrad.random draws traced numbers from keys."""
import importlib.util
import pathlib
import threading
import types

import numpy as np
import pytest
import scipy.stats

import jitgrad
import jitgrad.random as jr
from jitgrad.core import rngmath
from jitgrad.numpy import random_guard
from jitgrad.testing import check_grads

KEY = jr.key(1234)


# ---------------------------------------------------------------------------
# NumPy's random functions while tracing


def _entry_points():
    """Every NumPy random entry point, found by walking np.random and NumPy's
    own RandomState and Generator classes (a new one cannot slip through):
    every public function of the module (not its classes and submodules, nor
    its test runner) and every public method of the two classes."""
    def public(obj):
        return [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n))]
    points = [("module", n) for n in public(np.random) if n != "test"
              and not isinstance(getattr(np.random, n), (type, types.ModuleType))]
    points += [("RandomState", n) for n in public(np.random.mtrand.RandomState)]
    points += [("Generator", n) for n in public(np.random._generator.Generator)]
    return points


def test_the_entry_point_list_is_complete():
    points = _entry_points()
    names = {n for _, n in points}
    assert {"randn", "normal", "default_rng", "seed", "shuffle", "set_state"} <= names
    assert ("Generator", "standard_normal") in points and ("RandomState", "randint") in points
    assert len(points) > 120


def _owner(kind):
    if kind == "module":
        return np.random
    return np.random.RandomState(0) if kind == "RandomState" else np.random.default_rng(0)


@pytest.mark.parametrize("kind,name", _entry_points())
def test_every_numpy_random_entry_point_is_reported_while_tracing(kind, name):
    owner = _owner(kind)

    def f(x):
        getattr(owner, name)()          # the guard answers before NumPy reads the arguments
        return x

    with pytest.raises(jr.FrozenRandomError) as info:
        jitgrad.make_ir(f)(1.0)
    msg = str(info.value)
    assert name in msg and "test_random.py" in msg and "jitgrad.random" in msg
    assert "constant_draws" in msg


def test_the_issue_example_raises_instead_of_freezing():
    rs = np.random.RandomState(0)
    g = jitgrad.grad(lambda m: np.sum((rs.randn(3) + m) ** 2))
    with pytest.raises(jr.FrozenRandomError, match="RandomState.randn"):
        g(0.0)
    with pytest.raises(jr.FrozenRandomError, match="np.random.normal"):
        jitgrad.jit(lambda m: m + np.random.normal())(0.0)
    with pytest.raises(jr.FrozenRandomError):
        jitgrad.vmap(lambda m: m + np.random.default_rng(0).normal())(np.ones(2))


def test_outside_traces_numpy_random_is_numpys_own():
    jitgrad.make_ir(lambda x: x * 2)(1.0)          # a trace opened and closed
    for name in random_guard.public_functions(np.random):
        assert not hasattr(getattr(np.random, name), "__jitgrad_guarded__"), name
    for cls in (np.random.RandomState, np.random.Generator):
        assert not any(callable(v) for k, v in vars(cls).items() if not k.startswith("_"))
    # same streams, same classes as far as isinstance can tell, same errors
    assert np.random.RandomState(3).randn(4).tolist() == np.random.mtrand.RandomState(3).randn(4).tolist()
    g, base = np.random.default_rng(5), np.random._generator.Generator(np.random.PCG64(5))
    assert g.normal(size=3).tolist() == base.normal(size=3).tolist()
    assert isinstance(base, np.random.Generator) and isinstance(g, np.random._generator.Generator)
    assert isinstance(np.random.mtrand.RandomState(0), np.random.RandomState)
    assert np.random.default_rng(g) is g and str(g) == str(base) == "Generator(PCG64)"
    with pytest.raises(ValueError):
        np.random.default_rng(0).integers(5, 1)
    np.random.seed(7)
    a = np.random.rand(2)
    np.random.seed(7)
    assert np.random.rand(2).tolist() == a.tolist()


def test_constant_draws_allows_a_deliberate_constant():
    rs = np.random.RandomState(0)
    expected = np.random.RandomState(0).randn(3)

    def f(m):
        with jr.constant_draws():
            noise = rs.randn(3)
        return np.sum(noise * m)

    g = jitgrad.grad(f)
    assert np.allclose(g(1.0), expected.sum())
    assert np.allclose(g(2.0), expected.sum())           # a constant of the trace, on purpose

    @jr.constant_draws()
    def h(m):
        return m + np.random.default_rng(1).normal()
    assert np.isclose(jitgrad.jit(h)(0.0), np.random.default_rng(1).normal())
    with pytest.raises(jr.FrozenRandomError):            # the permission ends with the block
        jitgrad.make_ir(lambda m: m + np.random.rand())(0.0)


def test_another_thread_not_tracing_draws_freely_while_one_traces():
    started, done, seen = threading.Event(), threading.Event(), []

    def other():
        started.wait()
        seen.append(np.random.default_rng(0).normal())
        done.set()

    def f(x):
        started.set()
        done.wait(10)
        return x

    t = threading.Thread(target=other)
    t.start()
    jitgrad.make_ir(f)(1.0)
    t.join()
    assert seen == [np.random.default_rng(0).normal()]


# ---------------------------------------------------------------------------
# Keys and the Threefry hash


def test_threefry_known_answers():
    # Random123's known-answer vectors for threefry2x32 with 20 rounds
    U = np.uint64
    cases = [((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
             ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
             ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0))]
    for (k0, k1), (c0, c1), (w0, w1) in cases:
        bits = int(rngmath.threefry2x32(U(k0), U(k1), U(c0), U(c1)))
        assert (bits >> 32, bits & 0xFFFFFFFF) == (w0, w1)


def test_keys_split_and_fold_in():
    assert jr.key(0).tolist() == [0, 0] and jr.key(0).dtype == np.uint32
    assert jr.key(2 ** 32 + 5).tolist() == [1, 5] and jr.key(-1).tolist() == [2 ** 32 - 1] * 2
    assert jr.PRNGKey(7).tolist() == jr.key(7).tolist()
    # split(key(0)) hashes counters (0, 0) and (0, 1): the first is Random123's zero vector
    assert jr.split(jr.key(0))[0].tolist() == [0x6B200159, 0x99BA4EFE]
    ks = jr.split(KEY, 5)
    assert ks.shape == (5, 2) and ks.dtype == np.uint32 and len({tuple(k) for k in ks}) == 5
    assert all(jr.fold_in(KEY, i).tolist() == ks[i].tolist() for i in range(5))
    assert jr.split(KEY, 0).shape == (0, 2)
    # a traced seed and traced fold_in data give the same keys
    assert jitgrad.jit(jr.key)(np.int64(2 ** 32 + 5)).tolist() == [1, 5]
    assert jitgrad.jit(jr.key)(np.int64(-1)).tolist() == [2 ** 32 - 1] * 2
    assert jitgrad.jit(jr.fold_in)(KEY, np.int32(3)).tolist() == ks[3].tolist()
    assert jitgrad.vmap(lambda i: jr.fold_in(KEY, i))(np.arange(5)).tolist() == ks.tolist()


@pytest.mark.parametrize("bad", [np.zeros(2, np.int32), np.zeros(3, np.uint32), np.zeros((2, 2), np.uint32), 0])
def test_bad_keys_are_refused(bad):
    with pytest.raises(TypeError, match="uint32 array of shape \\(2,\\)"):
        jr.normal(bad, (3,))


def test_misuse_errors():
    with pytest.raises(TypeError, match="Generator"):
        jr.normal(jr.Generator(0), (2,))
    with pytest.raises(TypeError, match="integer"):
        jr.key(1.5)
    with pytest.raises(ValueError, match="greater"):
        jr.randint(KEY, (2,), 5, 5)
    with pytest.raises(ValueError, match="without replacement"):
        jr.choice(KEY, 3, (4,), replace=False)
    with pytest.raises(TypeError, match="float32 or float64"):
        jr.normal(KEY, (2,), np.int32)
    with pytest.raises(ValueError):
        jr.normal(KEY, (3,), loc=np.zeros(2))          # shape and parameters disagree
    with pytest.raises(TypeError, match="outside the transforms"):
        jitgrad.grad(jr.with_rng(lambda x, rng: x * rng.normal()))(1.0)


# ---------------------------------------------------------------------------
# Draws: shapes, dtypes, distributions


def test_draw_shapes_and_dtypes():
    assert jr.normal(KEY).shape == () and jr.normal(KEY).dtype == np.float64
    assert jr.normal(KEY, (2, 3), np.float32).dtype == np.float32
    assert jr.uniform(KEY, 4).shape == (4,) and jr.uniform(KEY, (0, 3)).shape == (0, 3)
    assert jr.normal(KEY, loc=np.zeros((2, 1), np.float32), scale=np.ones(3, np.float32)).dtype == np.float32
    assert jr.normal(KEY, loc=np.zeros((2, 1)), scale=np.ones(3)).shape == (2, 3)
    assert jr.bits(KEY, 3).dtype == np.uint32 and jr.bits(KEY, 3, np.uint64).dtype == np.uint64
    assert jr.randint(KEY, (3,), 0, 5, np.int32).dtype == np.int32
    assert jr.bernoulli(KEY, 0.5, (4,)).dtype == np.bool_
    # row-major counters: a prefix of a longer draw is the shorter draw
    assert np.array_equal(jr.normal(KEY, (6,))[:4], jr.normal(KEY, (4,)))
    assert np.array_equal(jr.normal(KEY, (2, 3)).ravel(), jr.normal(KEY, (6,)))
    u = jr.uniform(KEY, (1000,))
    assert u.min() >= 0 and u.max() < 1 and np.all(u * 2 ** 52 == np.floor(u * 2 ** 52))
    u32 = jr.uniform(KEY, (1000,), np.float32)
    assert u32.min() >= 0 and u32.max() < 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_normal_and_uniform_distributions(dtype):
    k1, k2, k3 = jr.split(KEY, 3)
    z = jr.normal(k1, (20000,), dtype)
    assert abs(z.mean()) < 0.03 and abs(z.var() - 1) < 0.04
    assert scipy.stats.kstest(z, "norm").pvalue > 0.01
    x = jr.normal(k2, (20000,), dtype, loc=2.0, scale=3.0)
    assert abs(x.mean() - 2) < 0.1 and abs(x.std() - 3) < 0.1
    u = jr.uniform(k3, (20000,), dtype, minval=-1.0, maxval=3.0)
    assert scipy.stats.kstest(u, "uniform", args=(-1, 4)).pvalue > 0.01


def test_normal_matches_the_exact_quantile_and_tails():
    # the normal draw is the normal quantile of (m + 1/2) / 2**52, m the top 52 bits
    b = jr.bits(KEY, (5000,), np.uint64)
    m = (b >> np.uint64(12)).astype(np.float64)
    z = jr.normal(KEY, (5000,))
    assert np.allclose(z, scipy.special.ndtri((m + 0.5) / 2 ** 52), rtol=1e-14, atol=1e-15)
    extreme = np.array([0, 1, 2 ** 51 - 1, 2 ** 51, 2 ** 52 - 1], np.uint64) << np.uint64(12)
    zs = rngmath.normal64(extreme)
    assert np.allclose(zs, scipy.special.ndtri((extreme.astype(float) / 2 ** 12 + 0.5) / 2 ** 52), rtol=1e-14)
    assert np.all(np.isfinite(zs)) and zs[0] == -zs[-1]


def test_other_distributions():
    ks = jr.split(KEY, 8)
    e = jr.exponential(ks[0], (20000,), scale=2.0)
    assert scipy.stats.kstest(e, "expon", args=(0, 2)).pvalue > 0.01
    b = jr.bernoulli(ks[1], 0.3, (20000,))
    assert abs(b.mean() - 0.3) < 0.015
    r = jr.randint(ks[2], (30000,), -2, 4)
    assert r.min() == -2 and r.max() == 3
    assert scipy.stats.chisquare(np.bincount(r + 2)).pvalue > 0.01
    p = np.array([0.1, 0.2, 0.7])
    c = jr.categorical(ks[3], np.log(p), shape=(20000,))
    assert np.allclose(np.bincount(c, minlength=3) / 20000, p, atol=0.015)
    c2 = jr.categorical(ks[3], np.log(np.stack([p, p[::-1]])), axis=1)
    assert c2.shape == (2,)
    g = jr.gumbel(ks[4], (20000,))
    assert scipy.stats.kstest(g, "gumbel_r").pvalue > 0.01
    perm = jr.permutation(ks[5], 10)
    assert sorted(perm.tolist()) == list(range(10))
    x = np.arange(12.0).reshape(3, 4)
    assert sorted(jr.permutation(ks[5], x, axis=1)[0].tolist()) == [0, 1, 2, 3]
    ch = jr.choice(ks[6], 10, (5,), replace=False)
    assert len(set(ch.tolist())) == 5
    wp = jr.choice(ks[7], np.array([10.0, 20.0, 30.0]), (20000,), p=p)
    assert np.allclose([np.mean(wp == v) for v in (10, 20, 30)], p, atol=0.015)
    nr = jr.choice(ks[7], 4, (4,), replace=False, p=np.array([0.1, 0.2, 0.3, 0.4]))
    assert sorted(nr.tolist()) == [0, 1, 2, 3]


def test_edge_cases():
    assert jr.choice(KEY, 0, (0,)).shape == (0,) and jr.permutation(KEY, 0).shape == (0,)
    assert np.isnan(jr.normal(KEY, (2,), loc=np.nan)).all()
    assert jr.normal(np.array([[0, 5], [1, 7]], np.uint32)[:, 1], 2).shape == (2,)   # a strided key
    with pytest.raises(ValueError, match="2\\*\\*32"):
        jr.normal(KEY, (2 ** 20, 2 ** 13))          # refused before anything is allocated
    with pytest.raises(TypeError, match="non-negative"):
        jr.normal(KEY, (2, -1))
    with pytest.raises(ValueError, match="empty population"):
        jr.choice(KEY, 0, (2,))


def test_gradient_tape_sees_reparameterised_draws():
    v = jitgrad.Variable(np.array([0.5, 1.0]))
    with jitgrad.GradientTape() as tape:
        y = np.sum(jr.normal(KEY, (2,), loc=v, scale=2.0) ** 2)
    assert np.allclose(tape.gradient(y, v), 2 * (np.array([0.5, 1.0]) + 2 * jr.normal(KEY, (2,))))


def test_permutations_are_uniform():
    counts = {}
    for k in jr.split(KEY, 3000):
        p = tuple(jr.permutation(k, 3).tolist())
        counts[p] = counts.get(p, 0) + 1
    assert len(counts) == 6 and scipy.stats.chisquare(list(counts.values())).pvalue > 0.01


# ---------------------------------------------------------------------------
# Inside transforms: traced, differentiable, batched, fresh per key


def test_draws_are_traced_not_frozen():
    g = jitgrad.grad(lambda m, k: np.sum((jr.normal(k, (3,)) + m) ** 2))
    k1, k2 = jr.split(KEY)
    assert g(0.0, k1) == g(0.0, k1) and g(0.0, k1) != g(0.0, k2)
    eps = jr.normal(k1, (3,))
    assert np.isclose(g(0.5, k1), np.sum(2 * (eps + 0.5)))
    ir = str(jitgrad.make_ir(lambda k: jr.normal(k, (3,)))(KEY))
    assert "random_bits[out=normal64]" in ir


def test_reparameterised_gradients_match_finite_differences():
    # common random numbers: the key is fixed, so the objective is a smooth function of the parameters
    def objective(loc, scale, lo, hi):
        x = jr.normal(KEY, (7,), loc=loc, scale=scale)
        u = jr.uniform(jr.fold_in(KEY, 1), (7,), minval=lo, maxval=hi)
        e = jr.exponential(jr.fold_in(KEY, 2), (7,), scale=scale)
        return np.sum(np.sin(x) * u) + np.sum(e * u)
    check_grads(objective, (0.3, 1.2, -0.5, 2.0), order=2)
    g = jitgrad.grad(lambda loc, scale: np.mean(jr.normal(KEY, (7,), loc=loc, scale=scale)), argnums=(0, 1))
    assert np.isclose(g(0.0, 1.0)[0], 1.0) and np.isclose(g(0.0, 1.0)[1], np.mean(jr.normal(KEY, (7,))))


def test_the_key_has_no_derivative_and_jacobians_work():
    f = lambda mu: jr.normal(KEY, (3,), loc=mu, scale=2.0)      # noqa: E731
    assert np.allclose(jitgrad.jacfwd(f)(0.5), np.ones(3))
    assert np.allclose(jitgrad.jacrev(f)(0.5), np.ones(3))
    h = jitgrad.hessian(lambda s: np.sum(jr.normal(KEY, (4,), scale=s) ** 2))(1.5)
    assert np.isclose(h, 2 * np.sum(jr.normal(KEY, (4,)) ** 2))
    out, tangent = jitgrad.jvp(lambda k, s: jr.normal(k, (2,), scale=s), (KEY, 1.0), (np.zeros(2, np.uint32), 1.0))
    assert np.allclose(tangent, jr.normal(KEY, (2,)))


def test_vmap_over_keys_draws_per_key():
    ks = jr.split(KEY, 4)
    batched = jitgrad.vmap(lambda k: jr.normal(k, (3,)))(ks)
    assert np.array_equal(batched, np.stack([jr.normal(k, (3,)) for k in ks]))
    per_key = jitgrad.vmap(lambda k, mu: jr.uniform(k, (2,), minval=mu, maxval=mu + 1), in_axes=(0, None))
    assert np.array_equal(per_key(ks, 1.0), np.stack([jr.uniform(k, (2,), minval=1.0, maxval=2.0) for k in ks]))
    sub = jitgrad.vmap(lambda k: jr.split(k, 3))(ks)
    assert sub.shape == (4, 3, 2) and np.array_equal(sub[2], jr.split(ks[2], 3))
    perms = jitgrad.vmap(lambda k: jr.permutation(k, 5))(ks)
    assert np.array_equal(perms[1], jr.permutation(ks[1], 5))


def test_generator_interface_and_fresh_rng_per_call():
    rng = jr.Generator(0)
    a, b = rng.normal(size=3), rng.normal(size=3)
    assert not np.array_equal(a, b)
    assert rng.integers(5, size=100).max() < 5 and rng.random(2).shape == (2,)
    assert rng.uniform(1.0, 2.0, size=4).min() >= 1.0 and len(rng.spawn(3)) == 3

    def loss(m, rng):
        return np.sum((rng.standard_normal(3) + m) ** 2)
    g = jitgrad.grad(loss)
    fixed = jr.Generator(1)
    assert g(0.0, fixed) == g(0.0, fixed)                 # a generator is a value: same key, same draw
    step = jr.with_rng(g, seed=3)
    values = [step(0.0) for _ in range(4)]
    assert len(set(values)) == 4                          # a fresh generator on each call
    again = jr.with_rng(g, seed=3)
    assert [again(0.0) for _ in range(4)] == values       # reproducible from the seed
    stepk = jr.with_key(jitgrad.grad(lambda m, k: np.sum((jr.normal(k, (3,)) + m) ** 2)), seed=3)
    assert stepk(0.0) != stepk(0.0)
    # a generator over stacked keys maps under vmap: one key per element
    ks = jr.split(KEY, 3)
    drawn = jitgrad.vmap(lambda g: g.normal(size=2))(jr.Generator(ks))
    assert np.array_equal(drawn, np.stack([jr.Generator(k).normal(size=2) for k in ks]))
    with pytest.raises(TypeError, match="vmap"):
        jr.Generator(ks).normal()
    # the same code runs as plain NumPy with NumPy's generator
    assert np.isfinite(loss(0.0, np.random.default_rng(0)))


# ---------------------------------------------------------------------------
# Both tiers draw the same bits (one small compiled function)


def _everything(k, mu):
    k1, k2 = jr.split(k)
    return (jr.normal(k1, (5,)), jr.normal(k1, (2, 3), np.float32, loc=mu.astype(np.float32)),
            jr.uniform(k2, (5,)), jr.uniform(k2, (4,), np.float32), jr.bits(k, (3,)),
            jr.bits(k, (3,), np.uint64), jr.fold_in(k, 9), jr.randint(k2, (4,), -3, 7),
            jr.bernoulli(k1, 0.5, (4,)), jr.exponential(k2, (3,)), jr.permutation(k1, 4),
            jitgrad.grad(lambda m: np.sum(jr.normal(k1, (5,), loc=m, scale=m) ** 2))(mu))


def test_interpreter_and_compiled_code_agree_bit_for_bit():
    expected = jitgrad.jit(_everything)(KEY, 0.7)
    eager = _everything(KEY, np.float64(0.7))
    with jitgrad.config(compile="always"):
        compiled = jitgrad.jit(_everything)(KEY, 0.7)
        batched = jitgrad.vmap(lambda k: jr.normal(k, (3,), np.float32))(jr.split(KEY, 3))
    for a, b, c in zip(expected, compiled, eager):
        assert a.dtype == b.dtype == np.asarray(c).dtype
        assert np.array_equal(a, b) and np.array_equal(a, c)
    assert np.array_equal(batched, jitgrad.vmap(lambda k: jr.normal(k, (3,), np.float32))(jr.split(KEY, 3)))


def test_a_draw_fuses_into_the_loop_that_uses_it():
    src = jitgrad.source(lambda k, m: np.sum(jr.normal(k, (8,), loc=m) ** 2))(KEY, 1.0)
    body = src.split("def jg_")[1]
    assert body.count("for i0 in range(8):") + body.count("for i0 in range(_trip(8)):") == 1 and "np.empty" not in body
    assert "rng_normal64(x0[0], x0[1 + 0], np.uint32(0), c0[i0])" in body


# ---------------------------------------------------------------------------
# The example


def test_bbvi_example_converges():
    path = pathlib.Path(__file__).resolve().parent.parent / "examples" / "bbvi.py"
    spec = importlib.util.spec_from_file_location("bbvi_example", path)
    bbvi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bbvi)
    mu, sigma, _ = bbvi.fit(steps=500)
    assert np.allclose(mu, bbvi.TARGET_MEAN, atol=0.15)
    assert np.allclose(sigma, 1 / np.sqrt(np.diag(bbvi.TARGET_PRECISION)), rtol=0.15)
