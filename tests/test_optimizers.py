"""Optimizers against their update formulas, written out here (Keras's for the
classes, optax's for the functional chain), stateful and functional, eager,
inside ``jit`` and inside ``jitgrad.function``."""
import numpy as np
import pytest

import jitgrad
from jitgrad import optimizers as O
from jitgrad.optimizers import schedules as S

f32, f64 = np.float32, np.float64

P0 = np.array([0.5, -1.5, 2.0])
GRADS = np.random.default_rng(7).normal(size=(6, 3))      # the gradient of each step


def close(a, b, rtol=1e-12):
    np.testing.assert_allclose(np.asarray(a, f64), np.asarray(b, f64), rtol=rtol, atol=1e-14)


# -- the formulas, in float64: step(p, g, state, t) -> (p, state), t = 1, 2, ...

def sgd_ref(lr, momentum=0.0, nesterov=False):
    def step(p, g, s, t):
        if momentum == 0:
            return p - lr * g, s
        v = momentum * s.get("v", 0.0) - lr * g
        return (p + momentum * v - lr * g if nesterov else p + v), {"v": v}
    return step


def adam_ref(lr, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False):
    def step(p, g, s, t):
        m = b1 * s.get("m", 0.0) + (1 - b1) * g
        v = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        vmax = np.maximum(s.get("vmax", 0.0), v) if amsgrad else v
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return p - alpha * m / (np.sqrt(vmax) + eps), {"m": m, "v": v, "vmax": vmax}
    return step


def decayed(step_fn, lr, wd):
    """Decoupled weight decay before the step: p <- p - p * wd * lr."""
    return lambda p, g, s, t: step_fn(p - p * wd * lr, g, s, t)


def rmsprop_ref(lr, rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    def step(p, g, s, t):
        v = rho * s.get("v", 0.0) + (1 - rho) * g * g
        mg = rho * s.get("mg", 0.0) + (1 - rho) * g
        denom = v - mg * mg + eps if centered else v + eps
        inc = lr * g / np.sqrt(denom)
        if momentum:
            mom = momentum * s.get("mom", 0.0) + inc
            return p - mom, {"v": v, "mg": mg, "mom": mom}
        return p - inc, {"v": v, "mg": mg}
    return step


def adagrad_ref(lr, init=0.1, eps=1e-7):
    def step(p, g, s, t):
        a = s.get("a", init) + g * g
        return p - lr * g / np.sqrt(a + eps), {"a": a}
    return step


def adadelta_ref(lr, rho=0.95, eps=1e-7):
    def step(p, g, s, t):
        ag = rho * s.get("ag", 0.0) + (1 - rho) * g * g
        d = np.sqrt(s.get("ad", 0.0) + eps) / np.sqrt(ag + eps) * g
        ad = rho * s.get("ad", 0.0) + (1 - rho) * d * d
        return p - lr * d, {"ag": ag, "ad": ad}
    return step


def adamax_ref(lr, b1=0.9, b2=0.999, eps=1e-7):
    def step(p, g, s, t):
        m = b1 * s.get("m", 0.0) + (1 - b1) * g
        u = np.maximum(b2 * s.get("u", 0.0), np.abs(g))
        return p - lr * m / ((1 - b1 ** t) * (u + eps)), {"m": m, "u": u}
    return step


def nadam_ref(lr, b1=0.9, b2=0.999, eps=1e-7):
    def mu(t):
        return b1 * (1 - 0.5 * 0.96 ** t)

    def step(p, g, s, t):
        prod = s.get("prod", 1.0) * mu(t)            # mu_1 * ... * mu_t
        m = b1 * s.get("m", 0.0) + (1 - b1) * g
        v = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        m_hat = mu(t + 1) * m / (1 - prod * mu(t + 1)) + (1 - mu(t)) * g / (1 - prod)
        v_hat = v / (1 - b2 ** t)
        return p - lr * m_hat / (np.sqrt(v_hat) + eps), {"m": m, "v": v, "prod": prod}
    return step


CASES = [
    ("sgd", lambda: O.SGD(0.1), sgd_ref(0.1)),
    ("sgd_momentum", lambda: O.SGD(0.1, momentum=0.9), sgd_ref(0.1, 0.9)),
    ("sgd_nesterov", lambda: O.SGD(0.1, momentum=0.9, nesterov=True), sgd_ref(0.1, 0.9, True)),
    ("adam", lambda: O.Adam(0.01), adam_ref(0.01)),
    ("adam_amsgrad", lambda: O.Adam(0.01, amsgrad=True), adam_ref(0.01, amsgrad=True)),
    ("adamw", lambda: O.AdamW(0.01, weight_decay=0.1), decayed(adam_ref(0.01), 0.01, 0.1)),
    ("adamw_default_decay", lambda: O.AdamW(0.01), decayed(adam_ref(0.01), 0.01, 0.004)),
    ("sgd_weight_decay", lambda: O.SGD(0.1, weight_decay=0.5), decayed(sgd_ref(0.1), 0.1, 0.5)),
    ("rmsprop", lambda: O.RMSprop(0.01), rmsprop_ref(0.01)),
    ("rmsprop_momentum", lambda: O.RMSprop(0.01, momentum=0.5), rmsprop_ref(0.01, momentum=0.5)),
    ("rmsprop_centered", lambda: O.RMSprop(0.01, centered=True), rmsprop_ref(0.01, centered=True)),
    ("rmsprop_centered_momentum", lambda: O.RMSprop(0.01, momentum=0.5, centered=True),
     rmsprop_ref(0.01, momentum=0.5, centered=True)),
    ("adagrad", lambda: O.Adagrad(0.1), adagrad_ref(0.1)),
    ("adagrad_init", lambda: O.Adagrad(0.1, initial_accumulator_value=1.0), adagrad_ref(0.1, 1.0)),
    ("adadelta", lambda: O.Adadelta(1.0), adadelta_ref(1.0)),
    ("adamax", lambda: O.Adamax(0.01), adamax_ref(0.01)),
    ("nadam", lambda: O.Nadam(0.01), nadam_ref(0.01)),
]
IDS = [c[0] for c in CASES]


def _reference(ref, steps=len(GRADS)):
    p, s = P0.copy(), {}
    for t in range(1, steps + 1):
        p, s = ref(p, GRADS[t - 1], s, t)
    return p


@pytest.mark.parametrize("make, ref", [c[1:] for c in CASES], ids=IDS)
def test_stateful_matches_formula(make, ref):
    v = jitgrad.Variable(P0.copy())
    opt = make()
    for g in GRADS:
        opt.apply_gradients([(jitgrad.constant(g), v)])
    close(v.numpy(), _reference(ref))
    assert int(opt.iterations) == len(GRADS) and v.dtype == f64
    assert opt.variables[0] is opt.iterations


@pytest.mark.parametrize("make, ref", [c[1:] for c in CASES], ids=IDS)
def test_functional_matches_formula_eager_and_in_jit(make, ref):
    opt = make()
    params = {"p": P0.copy()}
    state = opt.init(params)

    def step(params, state, g):
        return opt.update({"p": g}, state, params)

    jstep = jitgrad.jit(step)
    jparams, jstate = params, state
    for g in GRADS:
        params, state = step(params, state, g)
        jparams, jstate = jstep(jparams, jstate, g)
    close(params["p"], _reference(ref))
    close(jparams["p"], params["p"], rtol=1e-12)
    assert int(state["step"]) == int(jstate["step"]) == len(GRADS)


@pytest.mark.parametrize("mode", ["never", "always"])
@pytest.mark.parametrize("make, ref", [c[1:] for c in CASES if c[0] in
                                       ("sgd_nesterov", "adamw", "rmsprop_centered_momentum", "nadam")],
                         ids=["sgd_nesterov", "adamw", "rmsprop_centered_momentum", "nadam"])
def test_stateful_inside_function(make, ref, mode):
    v = jitgrad.Variable(P0.copy())
    opt = make()

    @jitgrad.function
    def step(g):
        opt.apply_gradients([(g, v)])

    with jitgrad.config(compile=mode):
        for g in GRADS:
            step(g)
    close(v.numpy(), _reference(ref), rtol=1e-10)
    assert int(opt.iterations) == len(GRADS)


def test_float32_stays_float32():
    for name, make, _ in CASES:
        v = jitgrad.Variable(P0.astype(f32))
        opt = make()
        opt.apply_gradients([(GRADS[0].astype(f32), v)])
        assert v.dtype == f32, name
        params, state = opt.init([P0.astype(f32)]), None
        new, _ = opt.update([GRADS[0].astype(f32)], params, [P0.astype(f32)])
        assert new[0].dtype == f32, name


# -- clipping


def test_clipnorm_clipvalue_global_clipnorm():
    def run(**kw):
        a, b = jitgrad.Variable(np.zeros(2)), jitgrad.Variable(np.zeros(1))
        O.SGD(1.0, **kw).apply_gradients([(np.array([3.0, 4.0]), a), (np.array([12.0]), b)])
        return -a.numpy(), -b.numpy()

    # clipnorm: each gradient to norm 1: [3, 4] / 5, [12] / 12
    ga, gb = run(clipnorm=1.0)
    close(ga, [0.6, 0.8])
    close(gb, [1.0])
    # a gradient within the limit is unchanged
    ga, gb = run(clipnorm=100.0)
    close(ga, [3.0, 4.0])
    close(gb, [12.0])
    # global_clipnorm: all together, norm 13 -> 1
    ga, gb = run(global_clipnorm=1.0)
    close(ga, [3 / 13, 4 / 13])
    close(gb, [12 / 13])
    # clipvalue
    ga, gb = run(clipvalue=3.5)
    close(ga, [3.0, 3.5])
    close(gb, [3.5])
    # a zero gradient stays zero
    z = jitgrad.Variable(np.ones(2))
    O.SGD(1.0, clipnorm=1.0).apply_gradients([(np.zeros(2), z)])
    close(z.numpy(), [1.0, 1.0])
    with pytest.raises(ValueError, match="at most one"):
        O.SGD(0.1, clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="non-negative"):
        O.Adam(clipnorm=-1.0)


def test_clipping_in_the_functional_form_and_in_jit():
    opt = O.SGD(1.0, global_clipnorm=1.0)
    params = [np.zeros(2), np.zeros(1)]
    grads = [np.array([3.0, 4.0]), np.array([12.0])]
    new, _ = opt.update(grads, opt.init(params), params)
    jnew, _ = jitgrad.jit(lambda g, s, p: opt.update(g, s, p))(grads, opt.init(params), params)
    close(new[0], [-3 / 13, -4 / 13])
    close(jnew[0], new[0])
    close(jnew[1], new[1])


# -- learning-rate schedules


def test_schedules_match_their_formulas():
    e = S.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    es = S.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    c = S.CosineDecay(0.1, decay_steps=20, alpha=0.1)
    cw = S.CosineDecay(0.0, decay_steps=20, warmup_target=0.1, warmup_steps=5)
    pc = S.PiecewiseConstantDecay([3, 7], [1.0, 0.5, 0.1])
    it = S.InverseTimeDecay(0.1, decay_steps=10, decay_rate=0.5)
    for step in range(0, 30):
        close(e(step), 0.1 * 0.5 ** (step / 10))
        close(es(step), 0.1 * 0.5 ** (step // 10))
        s = min(step, 20) / 20
        close(c(step), 0.1 * ((1 - 0.1) * 0.5 * (1 + np.cos(np.pi * s)) + 0.1))
        if step < 5:
            close(cw(step), 0.1 * step / 5)
        else:
            s = min(step - 5, 20) / 20
            close(cw(step), 0.1 * 0.5 * (1 + np.cos(np.pi * s)))
        close(pc(step), 1.0 if step <= 3 else 0.5 if step <= 7 else 0.1)
        close(it(step), 0.1 / (1 + 0.5 * step / 10))
    # traced steps give the same values
    for sched in (e, es, c, cw, pc, it):
        got = jitgrad.jit(lambda t: sched(t))(np.arange(30))
        close(got, [sched(int(t)) for t in range(30)])
    # a warm-up target without warm-up steps: the decay starts from the target
    close(S.CosineDecay(1.0, 10, warmup_target=0.5)(5), 0.5 * 0.5 * (1 + np.cos(np.pi / 2)))
    with pytest.raises(ValueError, match="one more value"):
        S.PiecewiseConstantDecay([1, 2], [1.0, 2.0])


@pytest.mark.parametrize("compiled", [False, True])
def test_schedule_drives_the_optimizer(compiled):
    sched = S.PiecewiseConstantDecay([1, 3], [1.0, 0.1, 0.01])
    v = jitgrad.Variable(np.zeros(1))
    opt = O.SGD(sched)

    def step():
        opt.apply_gradients([(np.ones(1), v)])

    step = jitgrad.function(step) if compiled else step
    for _ in range(5):
        step()
    # step 0, 1: 1.0; steps 2, 3: 0.1; step 4: 0.01
    close(v.numpy(), [-(1.0 + 1.0 + 0.1 + 0.1 + 0.01)])
    close(opt.learning_rate, 0.01)


def test_learning_rate_is_state():
    opt = O.Adam(0.01)
    assert isinstance(opt.learning_rate, jitgrad.Variable) and opt.learning_rate.numpy() == 0.01
    opt.learning_rate = 0.5
    assert opt.learning_rate.numpy() == 0.5
    opt.learning_rate = S.ExponentialDecay(1.0, 1, 0.5)
    assert opt.learning_rate.numpy() == 1.0


# -- the functional chain (optax's formulas)


def _run_chain(tx, params, steps=len(GRADS)):
    state = tx.init(params)
    for g in GRADS[:steps]:
        updates, state = tx.update(g, state, params)
        params = O.apply_updates(params, updates)
    return params


def test_chain_sgd_and_momentum():
    close(_run_chain(O.sgd(0.1), P0), P0 - 0.1 * GRADS.sum(0))
    p, m = P0.copy(), 0.0
    for g in GRADS:
        m = g + 0.9 * m
        p = p - 0.1 * m
    close(_run_chain(O.sgd(0.1, momentum=0.9), P0), p)
    p, m = P0.copy(), 0.0
    for g in GRADS:
        m = g + 0.9 * m
        p = p - 0.1 * (g + 0.9 * m)
    close(_run_chain(O.sgd(0.1, momentum=0.9, nesterov=True), P0), p)


def _adam_chain_ref(lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
    p, m, v = P0.copy(), 0.0, 0.0
    for t, g in enumerate(GRADS, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        u = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        p = p - lr * (u + wd * p)
    return p


def test_chain_adam_adamw():
    close(_run_chain(O.adam(0.01), P0), _adam_chain_ref(0.01))
    close(_run_chain(O.adamw(0.01, weight_decay=0.1), P0), _adam_chain_ref(0.01, wd=0.1))


def test_chain_rmsprop_and_adagrad():
    p, v, mg = P0.copy(), 0.0, 0.0
    for g in GRADS:
        v = 0.9 * v + 0.1 * g * g
        p = p - 0.01 * g / np.sqrt(v + 1e-8)
    close(_run_chain(O.rmsprop(0.01), P0), p)
    p, v, mg = P0.copy(), 0.0, 0.0
    for g in GRADS:
        v = 0.9 * v + 0.1 * g * g
        mg = 0.9 * mg + 0.1 * g
        p = p - 0.01 * g / np.sqrt(v - mg * mg + 1e-8)
    close(_run_chain(O.rmsprop(0.01, centered=True), P0), p)
    p, a = P0.copy(), 0.1
    for g in GRADS:
        a = a + g * g
        p = p - 0.1 * g / np.sqrt(a + 1e-7)
    close(_run_chain(O.adagrad(0.1), P0), p)


def test_chain_composes_clipping_schedules_and_pytrees():
    sched = S.ExponentialDecay(0.1, 1, 0.5)
    tx = O.chain(O.clip_by_global_norm(1.0), O.clip(0.5), O.trace(0.5),
                 O.scale_by_learning_rate(sched))
    params = {"a": P0.copy(), "b": [np.array(1.0)]}
    p, m = dict(a=P0.copy(), b=1.0), [0.0, 0.0]
    state = tx.init(params)
    for t, g in enumerate(GRADS):
        grads = {"a": g, "b": [np.array(g[0])]}
        updates, state = tx.update(grads, state, params)
        params = O.apply_updates(params, updates)
        n = np.sqrt(np.sum(g * g) + g[0] ** 2)
        ga, gb = [np.clip(x * 1.0 / max(n, 1.0), -0.5, 0.5) for x in (g, g[0])]
        m = [ga + 0.5 * m[0], gb + 0.5 * m[1]]
        lr = 0.1 * 0.5 ** t
        p = {"a": p["a"] - lr * m[0], "b": p["b"] - lr * m[1]}
    close(params["a"], p["a"])
    close(params["b"][0], p["b"])


@pytest.mark.parametrize("mode", ["never", "always"])
def test_chain_inside_jit_is_one_training_step(mode):
    x = np.random.default_rng(1).normal(size=(8, 3))
    y = x @ np.array([1.0, -2.0, 0.5])
    tx = O.chain(O.clip_by_global_norm(10.0), O.scale_by_adam(), O.scale_by_learning_rate(0.05))

    def loss(w):
        return np.mean((x @ w - y) ** 2)

    def step(w, state):
        g = jitgrad.grad(loss)(w)
        updates, state = tx.update(g, state, w)
        return O.apply_updates(w, updates), state

    w, state = np.zeros(3), tx.init(np.zeros(3))
    jw, jstate = w, state
    with jitgrad.config(compile=mode):
        jstep = jitgrad.jit(step)
        for _ in range(5):
            w, state = step(w, state)
            jw, jstate = jstep(jw, jstate)
    close(jw, w, rtol=1e-10)
    assert loss(w) < loss(np.zeros(3))


def test_chain_from_the_tape():
    w = jitgrad.Variable(P0.copy())
    tx = O.adam(0.01)
    state = tx.init(w.numpy())
    for _ in range(3):
        with jitgrad.GradientTape() as tape:
            loss = np.sum(np.sin(w))
        g = tape.gradient(loss, w)
        updates, state = tx.update(g, state)
        w.assign(O.apply_updates(w.numpy(), updates))
    p, m, v = P0.copy(), 0.0, 0.0
    for t in range(1, 4):
        g = np.cos(p)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        p = p - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    close(w.numpy(), p)


def test_add_decayed_weights_needs_params():
    tx = O.add_decayed_weights(0.1)
    with pytest.raises(ValueError, match="parameters"):
        tx.update(np.ones(2), tx.init(np.ones(2)))
