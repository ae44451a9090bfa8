"""OrthogonalRegularizer: the mean absolute cosine of a kernel's rows or columns, its gradient, in a layer.

Keras 3.15 itself was compared outside the suite (docs/keras.md)."""

import itertools

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import nnscratch
from nnscratch import regularizers
from nnscratch.gradcheck import numerical_gradient, relative_error
from nnscratch.layers import Dense
from nnscratch.regularizers import OrthogonalRegularizer

try:
    from tests.grad_strategies import STEP, TOLERANCE, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, rng_seeds


def mean_absolute_cosine(vectors):
    """By the definition, pair by pair."""
    pairs = list(itertools.combinations(vectors, 2))
    return np.mean([abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)) for a, b in pairs])


@given(rows=st.integers(2, 6), cols=st.integers(1, 6), mode=st.sampled_from(["rows", "columns"]), seed=rng_seeds())
def test_the_penalty_and_its_gradient(rows, cols, mode, seed):
    w = np.random.default_rng(seed).standard_normal((rows, cols))
    vectors = w if mode == "rows" else w.T
    assume(len(vectors) >= 2)
    u = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = u @ u.T
    assume(np.abs(cosines[~np.eye(len(u), dtype=bool)]).min() > 1e-3)   # away from |.|'s kink
    regularizer = OrthogonalRegularizer(0.3, mode)
    assert regularizer(w) == pytest.approx(0.3 * mean_absolute_cosine(vectors), rel=1e-12)
    numeric = numerical_gradient(lambda: regularizer(w), w, h=STEP)
    assert relative_error(regularizer.gradient(w), numeric).max(initial=0) < TOLERANCE


def test_orthogonal_rows_cost_nothing_and_a_row_turned_along_another_costs_most():
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((5, 5)))
    assert OrthogonalRegularizer(1.0)(q[:3] * [[2.0], [0.5], [3.0]]) == pytest.approx(0.0, abs=1e-12)
    assert OrthogonalRegularizer(1.0)(np.array([[1.0, 2.0], [-2.0, -4.0]])) == pytest.approx(1.0)
    assert OrthogonalRegularizer(1.0)(np.ones((1, 4))) == 0.0                   # one row: no pairs (Keras: nan)
    np.testing.assert_array_equal(OrthogonalRegularizer(1.0).gradient(np.ones((1, 4))), 0.0)


def test_its_gradient_pulls_the_columns_apart_and_on_a_dense_kernel_it_joins_the_loss():
    rng = np.random.default_rng(2)
    w, regularizer = rng.standard_normal((6, 4)), OrthogonalRegularizer(1.0, mode="columns")
    start = regularizer(w)
    for _ in range(200):
        w -= 0.05 * regularizer.gradient(w)
    assert regularizer(w) < 0.3 * start                   # (|cos| has a kink at 0: the steps hover near it)
    nnscratch.set_random_seed(3)
    layer = Dense(4, kernel_regularizer=regularizer)
    model = nnscratch.Sequential([nnscratch.Input((6,)), layer])
    model.compile(nnscratch.optimizers.SGD(0.0), "mse")
    x = rng.standard_normal((32, 6)).astype(np.float32)
    loss = model.train_on_batch(x, np.zeros((32, 4), np.float32))
    expected = np.mean(np.square(model.predict(x, verbose=0))) + regularizer(layer.kernel.value)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert model.losses[0] == pytest.approx(regularizer(layer.kernel.value))
    again = regularizers.get(regularizers.serialize(layer.kernel_regularizer))
    assert isinstance(again, OrthogonalRegularizer) and again.get_config() == {"factor": 1.0, "mode": "columns"}
    assert isinstance(regularizers.get("orthogonal_regularizer"), OrthogonalRegularizer)


def test_bad_arguments_and_kernels_are_refused():
    with pytest.raises(ValueError, match="mode must be 'rows' or 'columns'"):
        OrthogonalRegularizer(mode="diagonal")
    with pytest.raises(ValueError, match="factor must be a finite number >= 0"):
        OrthogonalRegularizer(-1.0)
    with pytest.raises(ValueError, match=r"takes a 2-D kernel \(a Dense layer's\), got shape \(3, 3, 1, 2\)"):
        OrthogonalRegularizer()(np.ones((3, 3, 1, 2)))
