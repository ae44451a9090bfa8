"""The Dot merge layer: Keras's batch_dot per sample (einsum as the reference), normalize, gradient checks of
models that use it (float64), saving and errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_model
from nnscratch.layers import Dense, Dot, Flatten, Input, Reshape, dot

try:
    from tests.grad_strategies import STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds

# (shape of x1's sample, shape of x2's sample, axes, einsum of the batch, output sample shape)
CASES = [((5,), (5,), 1, "nk,nk->n", (1,)),
         ((5,), (5,), -1, "nk,nk->n", (1,)),
         ((3, 5), (4, 5), 2, "nak,nbk->nab", (3, 4)),
         ((3, 5), (5, 4), (2, 1), "nak,nkb->nab", (3, 4)),
         ((5, 3), (4, 5), (1, -1), "nka,nbk->nab", (3, 4)),
         ((3, 4, 5), (5, 2), (3, 1), "nabk,nkc->nabc", (3, 4, 2))]


@pytest.mark.parametrize("s1, s2, axes, spec, out", CASES)
def test_forward_is_batch_dot(s1, s2, axes, spec, out):
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((2,) + s1), rng.standard_normal((2,) + s2)
    layer = Dot(axes)
    y = layer([x1, x2])
    assert layer.output_shape == (None,) + out
    np.testing.assert_allclose(y, np.einsum(spec, x1, x2).reshape((2,) + out), rtol=1e-12)


def test_normalize_gives_the_cosine():
    rng = np.random.default_rng(1)
    x1, x2 = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    cos = (x1 * x2).sum(1) / np.linalg.norm(x1, axis=1) / np.linalg.norm(x2, axis=1)
    np.testing.assert_allclose(dot([x1, x2], axes=1, normalize=True)[:, 0], cos, rtol=1e-12)


def _two_branch_model(features, s1, s2, axes, normalize):
    """Input -> two Dense branches reshaped to s1 and s2 -> Dot -> Flatten -> Dense(2)."""
    inputs = Input((features,))
    a = Reshape(s1)(Dense(int(np.prod(s1)), activation="tanh")(inputs))
    b = Reshape(s2)(Dense(int(np.prod(s2)), activation="tanh")(inputs))
    return nnscratch.Model(inputs, Dense(2)(Flatten()(Dot(axes, normalize=normalize)([a, b]))))


@settings(max_examples=12)
@given(n=batch_sizes(), case=st.sampled_from(CASES), normalize=st.booleans(), seed=rng_seeds())
def test_gradients_of_a_model_with_a_dot(n, case, normalize, seed):
    s1, s2, axes = case[:3]
    rng = np.random.default_rng(seed)
    with float64_floatx():
        model = _two_branch_model(3, s1, s2, axes, normalize)
    for layer in model.layers:
        if layer.params:
            layer.set_weights([0.7 * rng.standard_normal(w.shape) for w in layer.get_weights()])
    report = check_model(model, rng.standard_normal((n, 3)), seed=seed, h=STEP)
    assert report.passed() and report.max_error < TOLERANCE, f"\n{report}"


def test_saves_and_loads(tmp_path):
    model = _two_branch_model(3, (3, 5), (5, 4), (2, 1), True)
    model.compile(optimizer="adam", loss="mse")
    path = tmp_path / "dot.npz"
    model.save(path)
    loaded = nnscratch.load_model(path)
    layer = [lay for lay in loaded.layers if isinstance(lay, Dot)][0]
    assert layer.axes == (2, 1) and layer.normalize
    x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_errors():
    with pytest.raises(ValueError, match=r"the contracted axes have sizes 5 and 4"):
        Dot(2).build([(3, 5), (5, 4)])
    with pytest.raises(ValueError, match="0 is the batch axis"):
        Dot(0).build([(5,), (5,)])
    with pytest.raises(ValueError, match="axis 3 is not an axis of a sample"):
        Dot((3, 1)).build([(3, 5), (5, 4)])
    with pytest.raises(ValueError, match="a tuple of 2 ints"):
        Dot((1, 2, 3))
    with pytest.raises(TypeError, match="must be an int or a tuple of 2 ints"):
        Dot("last")
    with pytest.raises(ValueError, match="exactly 2 tensors"):
        Dot(1).build([(5,), (5,), (5,)])
    layer = Dot(1)
    layer([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(RuntimeError, match="without forward"):
        layer.backward(np.ones((2, 1)))
