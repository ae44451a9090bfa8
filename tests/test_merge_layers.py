"""Merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate): values, gradients, errors.

Forward is compared with NumPy formulas written here; backward is
gradient-checked in float64 over generated shapes (2 to 4 inputs, axes of
size 1 broadcast); ties of Maximum / Minimum send the gradient to the first
input holding the extremum, as Keras on TensorFlow.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.layers import (Add, Average, Concatenate, Dense, Maximum, Minimum, Multiply, Subtract, add, average,
                              concatenate, maximum, minimum, multiply, subtract)
from nnscratch.layers import get as get_layer_class

try:
    from tests.grad_strategies import (LINEAR_STEP, STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds,
                                       well_separated)
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import LINEAR_STEP, STEP, TOLERANCE, batch_sizes, float64_floatx, rng_seeds, well_separated

FORMULAS = {
    Add: lambda xs: sum(xs[1:], xs[0]),
    Subtract: lambda xs: xs[0] - xs[1],
    Multiply: lambda xs: np.prod(np.broadcast_arrays(*xs), axis=0),
    Average: lambda xs: sum(xs[1:], xs[0]) / len(xs),
    Maximum: lambda xs: np.max(np.broadcast_arrays(*xs), axis=0),
    Minimum: lambda xs: np.min(np.broadcast_arrays(*xs), axis=0),
}
FUNCTIONS = {Add: add, Subtract: subtract, Multiply: multiply, Average: average, Maximum: maximum, Minimum: minimum}
ELEMENTWISE = list(FORMULAS)


@st.composite
def merge_shapes(draw, count=None):
    """Batch shapes of 2-4 inputs of rank 2-4 sharing a batch size; some sample axes of size 1 (broadcast)."""
    count = count or draw(st.integers(2, 4))
    n = draw(batch_sizes())
    sample = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    shapes = []
    for _ in range(count):
        ones = draw(st.lists(st.booleans(), min_size=len(sample), max_size=len(sample)))
        shapes.append((n, *(1 if one else size for one, size in zip(ones, sample))))
    return shapes


def _inputs(rng, shapes, distinct):
    if not distinct:
        return [rng.standard_normal(shape) for shape in shapes]
    values = well_separated(rng, (sum(int(np.prod(s)) for s in shapes),))  # no ties anywhere, 1e-2 apart
    pieces, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        pieces.append(values[start:start + size].reshape(shape))
        start += size
    return pieces


# ------------------------------------------------------------------ forward

@pytest.mark.parametrize("cls", ELEMENTWISE, ids=lambda cls: cls.__name__)
@given(shapes=merge_shapes(), seed=rng_seeds())
@settings(max_examples=6)
def test_elementwise_forward_matches_numpy(cls, shapes, seed):
    shapes = shapes[:2] if cls is Subtract else shapes
    xs = [a.astype(np.float32) for a in _inputs(np.random.default_rng(seed), shapes, distinct=False)]
    y = cls()(xs)
    expected = FORMULAS[cls](xs)
    assert y.shape == expected.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("axis", [-1, 1, 2, -2, 3, -3])
def test_concatenate_forward_matches_numpy(axis):
    rng = np.random.default_rng(0)
    sample_axis = axis % 4 - 1
    shapes = []
    for size in (2, 1, 3):
        shape = [2, 3, 4, 5]
        shape[sample_axis + 1] = size
        shapes.append(tuple(shape))
    xs = [rng.standard_normal(shape) for shape in shapes]
    layer = Concatenate(axis=axis)
    np.testing.assert_array_equal(layer(xs), np.concatenate(xs, axis=sample_axis + 1))
    assert layer.output_shape[1:][sample_axis] == 6


def test_symbolic_calls_give_keras_output_shapes():
    a, b = nnscratch.Input((1, 3)), nnscratch.Input((4, 1))
    assert Add()([a, b]).shape == (4, 3)                      # broadcast, as Keras
    c, d = nnscratch.Input((2, 3)), nnscratch.Input((5, 3))
    assert Concatenate(axis=1)([c, d]).shape == (7, 3)
    merged = Multiply()([c, c, c])
    assert merged.parents == (c, c, c) and merged.parent is None and merged.layer.input_shape == [(2, 3)] * 3


# ----------------------------------------------------------------- backward

@pytest.mark.parametrize("cls", ELEMENTWISE, ids=lambda cls: cls.__name__)
@given(shapes=merge_shapes(), seed=rng_seeds())
@settings(max_examples=8)
def test_elementwise_gradients(cls, shapes, seed):
    shapes = shapes[:2] if cls is Subtract else shapes
    piecewise = cls in (Maximum, Minimum)
    xs = _inputs(np.random.default_rng(seed), shapes, distinct=piecewise)
    with float64_floatx():
        report = check_layer(cls(), x=xs, seed=seed, h=LINEAR_STEP / 4 if piecewise else STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


@given(n=batch_sizes(), sizes=st.lists(st.integers(1, 4), min_size=2, max_size=4), rank=st.integers(1, 3),
       data=st.data(), seed=rng_seeds())
@settings(max_examples=10)
def test_concatenate_gradients(n, sizes, rank, data, seed):
    axis = data.draw(st.sampled_from([a for a in range(-rank, rank + 1) if a != 0]))
    sample_axis = axis % (rank + 1) - 1
    base = data.draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    shapes = []
    for size in sizes:
        shape = list(base)
        shape[sample_axis] = size
        shapes.append((n, *shape))
    rng = np.random.default_rng(seed)
    with float64_floatx():
        report = check_layer(Concatenate(axis=axis), x=[rng.standard_normal(s) for s in shapes], seed=seed, h=STEP)
    assert report.max_error < TOLERANCE, f"\n{report}"


@pytest.mark.parametrize("cls, pick", [(Maximum, np.max), (Minimum, np.min)])
def test_ties_send_the_gradient_to_the_first_extreme_input(cls, pick):
    """As Keras on TensorFlow: max(max(x1, x2), x3) sends a tie to its left side at each step."""
    x1 = np.array([[1.0, 2.0, 3.0, 0.5]])
    x2 = np.array([[1.0, 5.0, 3.0, -0.5]])
    x3 = np.array([[1.0, 2.0, 3.0, 0.5]])
    layer = cls()
    layer.build([(4,)] * 3)
    y = layer.forward([x1, x2, x3], training=True)
    np.testing.assert_array_equal(y, pick(np.stack([x1, x2, x3]), axis=0))
    grad = np.array([[10.0, 20.0, 30.0, 40.0]])
    grads = layer.backward(grad)
    stacked = np.stack([x1, x2, x3])
    first = np.argmax(stacked == pick(stacked, axis=0), axis=0)  # index of the first input equal to the extremum
    for k, g in enumerate(grads):
        np.testing.assert_array_equal(g, np.where(first == k, grad, 0.0))
    assert sum(grads).tolist() == grad.tolist()  # exactly one input gets each value's gradient


def test_broadcast_input_gets_the_summed_gradient():
    layer = Add()
    layer.build([(1, 3), (4, 1)])
    a, b = np.ones((2, 1, 3)), np.ones((2, 4, 1))
    layer.forward([a, b], training=True)
    grad = np.arange(24.0).reshape(2, 4, 3)
    ga, gb = layer.backward(grad)
    np.testing.assert_array_equal(ga, grad.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(gb, grad.sum(axis=2, keepdims=True))


# ------------------------------------------------------------------- errors

@pytest.mark.parametrize("cls", ELEMENTWISE + [Concatenate], ids=lambda cls: cls.__name__)
def test_one_input_or_a_bare_tensor_raise(cls):
    x = nnscratch.Input((3,))
    with pytest.raises(ValueError, match="list of"):
        cls()([x])
    with pytest.raises(ValueError, match="list of tensors"):
        cls()(x)


def test_ordinary_layers_refuse_a_list_of_tensors():
    x = nnscratch.Input((3,))
    with pytest.raises(TypeError, match="takes one tensor.*Add"):
        Dense(2)([x, x])
    assert Dense(2)([[1.0, 2.0, 3.0]]).shape == (1, 2)  # a nested list of numbers is still one array


def test_check_layer_makes_one_input_per_shape_for_a_merge_layer():
    with float64_floatx():
        report = check_layer(Subtract(), input_shape=[(2, 3), (2, 1)])
    assert [check.name for check in report.checks] == ["input_0", "input_1"]
    assert [check.shape for check in report.checks] == [(2, 3), (2, 1)] and report.max_error < TOLERANCE


def test_mismatched_shapes_raise_at_call_time():
    a, b = nnscratch.Input((3,)), nnscratch.Input((4,))
    with pytest.raises(ValueError, match=r"incompatible shapes.*\(None, 3\).*\(None, 4\)"):
        Add()([a, b])
    with pytest.raises(ValueError, match="same rank"):
        Multiply()([a, nnscratch.Input((3, 1))])
    with pytest.raises(ValueError, match="exactly 2"):
        Subtract()([a, a, a])
    with pytest.raises(ValueError, match="matching shapes except"):
        Concatenate(axis=-1)([nnscratch.Input((2, 3)), nnscratch.Input((3, 3))])


@pytest.mark.parametrize("axis", [0, 3, -3, 7])
def test_concatenate_refuses_the_batch_axis_and_axes_out_of_range(axis):
    with pytest.raises(ValueError, match=rf"axis={axis}.*batch axis"):
        Concatenate(axis=axis)([nnscratch.Input((2, 3)), nnscratch.Input((2, 3))])


def test_forward_checks_the_inputs():
    layer = Add()
    layer.build([(3,), (3,)])
    with pytest.raises(ValueError, match="2 inputs, got 3"):
        layer.forward([np.ones((2, 3))] * 3)
    with pytest.raises(ValueError, match="one batch size"):
        layer.forward([np.ones((2, 3)), np.ones((4, 3))])
    with pytest.raises(TypeError, match="integer"):
        Concatenate(axis=1.5)


# ------------------------------------------------------------ names, config

@pytest.mark.parametrize("cls", ELEMENTWISE + [Concatenate], ids=lambda cls: cls.__name__)
def test_names_config_and_registry_as_keras(cls):
    layer = cls(name=f"my_{cls.__name__.lower()}")
    config = layer.get_config()
    assert config["name"] == f"my_{cls.__name__.lower()}"
    if cls is Concatenate:
        assert config["axis"] == -1
    twin = get_layer_class(cls.__name__).from_config(config)
    assert type(twin) is cls and twin.get_config() == config
    assert cls().name.startswith({Concatenate: "concatenate"}.get(cls, cls.__name__.lower()))


@pytest.mark.parametrize("cls", ELEMENTWISE, ids=lambda cls: cls.__name__)
def test_functional_forms_build_the_layer(cls):
    a, b = nnscratch.Input((3,)), nnscratch.Input((3,))
    tensor = FUNCTIONS[cls]([a, b], name=f"f_{cls.__name__}")
    assert type(tensor.layer) is cls and tensor.layer.name == f"f_{cls.__name__}" and tensor.parents == (a, b)
    joined = concatenate([a, b], axis=1)
    assert joined.shape == (6,) and joined.layer.axis == 1
