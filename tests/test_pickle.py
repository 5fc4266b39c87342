"""Transformed functions pickle by reference: the transform, the function (by
qualified name when it is importable) and the transform's arguments, never
traces or compiled code.  One instance per (function, transform, arguments)."""
import copy
import functools
import gc
import inspect
import pickle
import weakref

import numpy as np
import pytest

import jitgrad
import procs_helpers as H
from jitgrad.api import transformed as T

X = np.linspace(-1.0, 1.0, 5)


TRANSFORMS = [
    ("grad", lambda: jitgrad.grad(H.f)),
    ("grad_argnums", lambda: jitgrad.grad(H.loss, argnums=(0, 2))),
    ("grad_has_aux", lambda: jitgrad.grad(H.loss, has_aux=False)),
    ("value_and_grad", lambda: jitgrad.value_and_grad(H.f)),
    ("jit", lambda: jitgrad.jit(H.f)),
    ("jit_static", lambda: jitgrad.jit(H.loss, static_argnums=())),
    ("vmap", lambda: jitgrad.vmap(H.vector_f)),
    ("vmap_axes", lambda: jitgrad.vmap(H.vector_f, in_axes=[1], out_axes=1)),
    ("jacfwd", lambda: jitgrad.jacfwd(H.vector_f)),
    ("jacrev", lambda: jitgrad.jacrev(H.vector_f)),
    ("hessian", lambda: jitgrad.hessian(H.f)),
    ("jit_of_grad", lambda: jitgrad.jit(jitgrad.grad(H.f))),
    ("jacfwd_of_decorated_jit", lambda: jitgrad.jacfwd(H.decorated_jit)),
]


def _args(name):
    if name.startswith("grad_argnums") or name == "grad_has_aux" or name == "jit_static":
        Xd, y = H.data()
        return (np.zeros(3), Xd, y)
    if name == "vmap_axes":
        return (np.arange(6.0).reshape(2, 3),)
    return (X,)


@pytest.mark.parametrize("name,make", TRANSFORMS, ids=[n for n, _ in TRANSFORMS])
def test_transforms_of_module_level_functions_pickle_by_reference(name, make):
    t = make()
    data = pickle.dumps(t)
    assert len(data) < 400, "pickled with more than a reference"
    back = pickle.loads(data)
    assert back is t            # one instance per (function, transform, arguments)
    want = t(*_args(name))
    got = back(*_args(name))
    for a, b in zip(jitgrad.tree.leaves(want), jitgrad.tree.leaves(got)):
        np.testing.assert_array_equal(a, b)


def test_pickled_size_does_not_grow_with_compiled_state():
    t = jitgrad.grad(H.f)
    before = len(pickle.dumps(t))
    with jitgrad.config(compile="always"):
        t(X)
    assert len(pickle.dumps(t)) == before


def test_decorated_module_level_functions_pickle_by_name():
    for t in (H.decorated, H.decorated_jit):
        data = pickle.dumps(t)
        assert b"procs_helpers" in data and len(data) < 100
        assert pickle.loads(data) is t
    # a transform of the function inside a decorated one names it through the decoration
    vg = jitgrad.value_and_grad(H.decorated.__wrapped__)
    assert pickle.loads(pickle.dumps(vg)) is vg
    v, g = vg(X)
    np.testing.assert_allclose(g, H.decorated(X), rtol=1e-15)


def test_transforms_of_decorated_functions_pickle():
    t = jitgrad.vmap(H.decorated)
    assert pickle.loads(pickle.dumps(t)) is t
    np.testing.assert_allclose(t(np.stack([X, 2 * X]))[1], H.decorated(2 * X), rtol=1e-14)


def test_jvp_and_vjp_of_importable_functions_pickle_as_partials():
    fj = functools.partial(jitgrad.jvp, H.vector_f)
    back = pickle.loads(pickle.dumps(fj))
    out, tangent = back((X,), (np.ones(5),))
    np.testing.assert_allclose(tangent, np.cos(X) * X + np.sin(X), rtol=1e-14)
    hv = pickle.loads(pickle.dumps(functools.partial(jitgrad.hvp, H.f)))
    np.testing.assert_allclose(hv((X,), (np.ones(5),)), jitgrad.hessian(H.f)(X).sum(1), rtol=1e-13)


def test_lambdas_are_refused_by_the_standard_pickle_with_its_own_message():
    t = jitgrad.grad(lambda x: np.sum(x ** 2))
    with pytest.raises((pickle.PicklingError, AttributeError), match="lambda"):
        pickle.dumps(t)


def test_cloudpickle_carries_lambdas_and_closures_without_compiled_state():
    cloudpickle = pytest.importorskip("cloudpickle", reason="cloudpickle is not installed "
                                      "(it comes with dask[distributed]: pip install '.[dask]')")
    w = np.array([0.5, -1.5, 2.0, 0.25, 1.0])
    t = jitgrad.grad(lambda x: np.sum(np.sin(x) * w))
    with jitgrad.config(compile="always"):
        t(X)
    data = cloudpickle.dumps(t)
    assert len(data) < 4000       # the lambda's code and the captured array
    back = cloudpickle.loads(data)
    assert back is not t and back._staged.cache == {}   # no traces or executables travel
    np.testing.assert_allclose(back(X), np.cos(X) * w, rtol=1e-14)


def test_one_instance_per_function_transform_and_arguments():
    assert jitgrad.grad(H.f) is jitgrad.grad(H.f)
    assert jitgrad.grad(H.loss, argnums=1) is not jitgrad.grad(H.loss)
    assert jitgrad.jit(H.f) is not jitgrad.grad(H.f)
    assert jitgrad.vmap(H.vector_f, in_axes=[0]) is jitgrad.vmap(H.vector_f, in_axes=[0])
    lam = lambda x: np.sum(x * 3.0)      # noqa: E731
    assert jitgrad.grad(lam) is jitgrad.grad(lam)     # while the user holds it
    assert jitgrad.grad(lambda x: np.sum(x)) is not jitgrad.grad(lambda x: np.sum(x))


def test_registry_drops_transforms_of_dropped_functions(frozen_heap):
    def make():
        c = np.arange(3.0)
        return jitgrad.grad(lambda x: np.sum(x * c))
    g = make()
    g(np.ones(3))
    assert g in list(T._live.values())
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None


def test_a_function_defined_again_under_its_name_replaces_its_transform(tmp_path, monkeypatch):
    mod = tmp_path / "redefined_mod.py"
    mod.write_text("import numpy as np\ndef f(x):\n    return np.sum(x * 2.0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import redefined_mod
    g1 = jitgrad.grad(redefined_mod.f)
    exec("def f(x):\n    return np.sum(x * 5.0)\n", redefined_mod.__dict__)
    g2 = jitgrad.grad(redefined_mod.f)
    assert g2 is not g1
    np.testing.assert_array_equal(g2(np.ones(2)), [5.0, 5.0])
    assert pickle.loads(pickle.dumps(g2)) is g2


def test_deepcopy_and_copy_give_the_same_transform():
    t = jitgrad.grad(H.f)
    assert copy.copy(t) is t and copy.deepcopy(t) is t


def test_transformed_functions_keep_the_function_surface():
    t = jitgrad.grad(H.f)
    assert t.__name__ == "f" and t.__wrapped__ is H.f and t.__module__ == "procs_helpers"
    assert inspect.signature(t) == inspect.signature(H.f)
    assert "grad" in repr(t) and "f" in repr(t)
    assert callable(t)


def test_transforms_as_class_attributes_bind_like_functions():
    class Model:
        scale = 3.0
        step = jitgrad.jit(lambda self, x: x * self.scale, static_argnums=0)

        def __hash__(self):
            return 1

        def __eq__(self, other):
            return isinstance(other, Model)
    np.testing.assert_array_equal(Model().step(np.ones(2)), [3.0, 3.0])
    assert Model.step(Model(), np.ones(1)) == 3.0


def test_keywords_still_reach_the_function():
    t = jitgrad.grad(H.loss)
    Xd, y = H.data()
    np.testing.assert_allclose(t(np.zeros(3), X=Xd, y=y), t(np.zeros(3), Xd, y), rtol=1e-15)


def test_module_level_custom_rules_and_their_transforms_pickle_by_name():
    assert pickle.loads(pickle.dumps(H.softplus)) is H.softplus
    t = jitgrad.vmap(H.softplus)
    data = pickle.dumps(t)
    assert len(data) < 300 and pickle.loads(data) is t
    np.testing.assert_allclose(jitgrad.grad(lambda x: np.sum(H.softplus(x)))(X),
                               1 / (1 + np.exp(-X)), rtol=1e-14)


def test_vjp_and_linearize_functions_pickle_without_compiled_state():
    with jitgrad.config(compile="always"):
        out, vjp_fn = jitgrad.vjp(H.vector_f, X)
        vjp_fn(np.ones(5))
        _, f_jvp = jitgrad.linearize(H.vector_f, X)
        f_jvp(np.ones(5))
    for fn in (vjp_fn, f_jvp):
        data = pickle.dumps(fn)
        assert len(data) < 1000                # the function's name and the primals
        back = pickle.loads(data)
        got = back(np.ones(5))
        np.testing.assert_allclose(got[0] if isinstance(got, tuple) else got,
                                   np.cos(X) * X + np.sin(X), rtol=1e-14)
