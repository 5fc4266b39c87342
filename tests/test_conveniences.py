"""Small things users reach for: jitgrad.tree with JAX's spellings,
vmap's out_axes (None, nested), optimizer.variables, the examples' extras."""
import collections
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import jitgrad

ROOT = pathlib.Path(__file__).resolve().parent.parent


# -- jitgrad.tree


def test_tree_map_leaves_structure_flatten_unflatten():
    tree = {"w": np.ones(2), "layers": [(1.0, None), np.zeros(1)]}
    doubled = jitgrad.tree.map(lambda a: a * 2, tree)
    assert doubled["layers"][0][1] is None and doubled["layers"][0][0] == 2.0
    np.testing.assert_array_equal(doubled["w"], [2.0, 2.0])
    summed = jitgrad.tree.map(lambda a, b: a + b, tree, doubled)
    np.testing.assert_array_equal(summed["w"], [3.0, 3.0])
    leaves = jitgrad.tree.leaves(tree)
    assert len(leaves) == 3
    td = jitgrad.tree.structure(tree)
    assert td == jitgrad.tree.flatten(tree)[1] and td.num_leaves == 3
    back = jitgrad.tree.unflatten(td, leaves)
    assert back["layers"][0] == (1.0, None)


def test_tree_map_refuses_structures_that_differ():
    with pytest.raises(ValueError, match="argument 2 has structure .* but the first has"):
        jitgrad.tree.map(lambda a, b: a + b, (1.0, 2.0), [1.0, 2.0])


def test_tree_is_leaf():
    tree = [(1.0, 2.0), (3.0, 4.0)]
    assert jitgrad.tree.leaves(tree, is_leaf=lambda n: isinstance(n, tuple)) == [(1.0, 2.0), (3.0, 4.0)]
    assert jitgrad.tree.map(sum, tree, is_leaf=lambda n: isinstance(n, tuple)) == [3.0, 7.0]


def test_tree_map_on_gradients_of_a_structure():
    params = {"a": np.ones(3), "b": np.float64(2.0)}
    g = jitgrad.grad(lambda p: np.sum(p["a"] * p["b"]))(params)
    step = jitgrad.tree.map(lambda p, d: p - 0.5 * d, params, g)
    np.testing.assert_allclose(step["a"], 0.0)
    assert step["b"] == pytest.approx(0.5)


# -- vmap out_axes


M = np.arange(6.0).reshape(3, 2)


def test_vmap_out_axes_none_for_an_unbatched_output():
    c = np.array([1.0, 2.0])
    out, const = jitgrad.vmap(lambda v: (v * 2.0, c * 3.0), out_axes=(0, None))(M)
    np.testing.assert_array_equal(out, M * 2)
    np.testing.assert_array_equal(const, [3.0, 6.0])      # once, not once per row
    # a batched output may not have None
    with pytest.raises(ValueError, match="out_axes is None for output 0 .* depends on the mapped"):
        jitgrad.vmap(lambda v: (v * 2.0, c), out_axes=(None, 0))(M)


def test_vmap_unbatched_output_with_an_axis_is_broadcast():
    out = jitgrad.vmap(lambda v: np.ones(2), out_axes=1)(M)
    np.testing.assert_array_equal(out, np.ones((2, 3)))


def test_vmap_nested_out_axes():
    def f(v):
        return {"row": v, "sum": np.sum(v)}, (v * 2.0, [v + 1.0])
    d, (twice, (plus,)) = jitgrad.vmap(f, out_axes=({"row": 1, "sum": 0}, (0, [-1])))(M)
    np.testing.assert_array_equal(d["row"], M.T)
    np.testing.assert_array_equal(d["sum"], M.sum(1))
    np.testing.assert_array_equal(twice, 2 * M)
    np.testing.assert_array_equal(plus, (M + 1).T)
    with pytest.raises(ValueError, match=r"out_axes=.*\[0\] is a dict with keys \['x'\] but"):
        jitgrad.vmap(f, out_axes=({"x": 0}, 0))(M)
    with pytest.raises(TypeError, match="out_axes must be an int, None, or"):
        jitgrad.vmap(f, out_axes="0")(M)


def test_vmap_out_axes_none_compiled_and_under_grad():
    c = np.array([1.0, 2.0])
    with jitgrad.config(compile="always"):
        out, const = jitgrad.vmap(lambda v: (np.sin(v), c + 1.0), out_axes=(1, None))(M)
    np.testing.assert_allclose(out, np.sin(M).T, rtol=1e-14)
    np.testing.assert_array_equal(const, c + 1.0)
    g = jitgrad.grad(lambda m: np.sum(jitgrad.vmap(lambda v: (v * v, c), out_axes=(0, None))(m)[0]))(M)
    np.testing.assert_allclose(g, 2 * M)


# -- optimizer.variables


def test_optimizer_variables_as_keras():
    v, u = jitgrad.Variable(np.ones(2)), jitgrad.Variable(np.zeros(3, np.float32))
    adam = jitgrad.optimizers.Adam(0.1)
    assert [int(x) for x in adam.variables] == [0]
    adam.apply_gradients([(np.ones(2), v), (np.ones(3, np.float32), u)])
    iterations, m_v, v_v, m_u, v_u = adam.variables
    assert iterations == 1
    np.testing.assert_allclose(m_v, 0.1)            # (1 - beta_1) * g
    np.testing.assert_allclose(v_v, 0.001)          # (1 - beta_2) * g**2
    assert m_u.shape == (3,) and m_u.dtype == np.float32
    sgd = jitgrad.optimizers.SGD(0.1)
    sgd.apply_gradients([(np.ones(2), v)])
    assert len(sgd.variables) == 1                   # no momentum, no slots


# -- examples


def test_examples_extra_names_what_the_examples_import():
    text = (ROOT / "pyproject.toml").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("examples ="))
    assert "matplotlib" in line and "scikit-learn" in line
    assert "dask[distributed]" in next(ln for ln in text.splitlines() if ln.startswith("test ="))


def test_mlp_digits_exits_nonzero_without_scikit_learn(tmp_path):
    try:
        import sklearn  # noqa: F401
        pytest.skip("scikit-learn is installed: the example would run")
    except ImportError:
        pass
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "mlp_digits.py"), "--epochs", "1"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode != 0
    assert "pip install scikit-learn" in proc.stderr


def test_train_linear_title_lines_are_short():
    # the figure is 6 inches wide: a title line of more than ~50 characters
    # at 11 points runs past its edges
    src = (ROOT / "examples" / "train_linear.py").read_text()
    title = next(ln for ln in src.splitlines() if "set_title(" in ln)
    text = title.split('"')[1]
    assert all(len(part) <= 50 for part in text.split("\\n")), text


def test_namedtuple_counts_as_a_tree_node():
    P = collections.namedtuple("P", "a b")
    assert jitgrad.tree.map(lambda x: x + 1, P(1, 2)) == P(2, 3)
