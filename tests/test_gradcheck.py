"""Tests of the gradient checker itself (nnscratch.gradcheck).

Before trusting ``check_layer`` to certify every layer's backward pass, check
that it differentiates known functions correctly, that it flags wrong
backward passes (off by a factor, transposed, blind to a constant sum) and
says where, and that it refuses float32 weights.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnscratch
from nnscratch.gradcheck import (GradcheckReport, TensorCheck, check_layer, check_model, numerical_gradient,
                                 relative_error)
from nnscratch.layers import Activation, BatchNormalization, Dense, Flatten

try:
    from tests.grad_strategies import TOLERANCE
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import TOLERANCE


# --------------------------------------------------------------- numerical_gradient

@given(a=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                    elements=st.floats(-3, 3)))
def test_numerical_gradient_of_sum_of_cubes_is_three_a_squared(a):
    original = a.copy()
    grad = numerical_gradient(lambda: float(np.sum(a ** 3)), a)
    # central difference of a cubic: error exactly h**2, plus rounding of eps * |f| / h
    np.testing.assert_allclose(grad, 3 * original ** 2, rtol=1e-6, atol=2e-6)
    assert grad.shape == a.shape and grad.dtype == np.float64
    np.testing.assert_array_equal(a, original)  # the array is restored


def test_numerical_gradient_of_a_quadratic_form():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((4, 4))
    x = rng.standard_normal(4)
    grad = numerical_gradient(lambda: float(x @ m @ x), x)
    np.testing.assert_allclose(grad, (m + m.T) @ x, rtol=1e-8, atol=1e-9)


def test_numerical_gradient_of_a_function_of_some_entries():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    grad = numerical_gradient(lambda: float(np.sum(a[:, 1] ** 2) + 5 * a[1, 2]), a)
    expected = np.zeros((2, 3))
    expected[:, 1] = 2 * a[:, 1]
    expected[1, 2] += 5
    np.testing.assert_allclose(grad, expected, atol=1e-7)


def test_numerical_gradient_uses_the_given_step():
    a = np.array([2.0])
    # f = a**2: a central difference of any step h is exact for a quadratic
    assert numerical_gradient(lambda: float(abs(a[0]) ** 2), a, h=0.5)[0] == pytest.approx(4.0)
    b = np.array([0.0])
    # across the kink of |b| the central difference is 0 for any h
    assert numerical_gradient(lambda: abs(float(b[0])), b, h=1e-3)[0] == 0.0


# --------------------------------------------------------------- relative_error

def test_relative_error_of_equal_arrays_is_zero():
    a = np.array([[1.0, -2.0], [0.0, 3.5]])
    np.testing.assert_array_equal(relative_error(a, a.copy()), np.zeros_like(a))


def test_relative_error_of_two_zero_arrays_is_zero_not_nan():
    err = relative_error(np.zeros(3), np.zeros(3))
    np.testing.assert_array_equal(err, np.zeros(3))


def test_relative_error_divides_by_the_larger_magnitude():
    err = relative_error(np.array([1.0, -4.0]), np.array([2.0, -3.0]))
    np.testing.assert_allclose(err, [0.5, 0.25])


def test_relative_error_is_symmetric():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(10), rng.standard_normal(10)
    np.testing.assert_array_equal(relative_error(a, b), relative_error(b, a))


def test_relative_error_judges_tiny_entries_against_the_tensor_scale():
    # largest entry 1000 -> floor 1: a 1e-3 miss on an entry near 0 is 1e-3, not 1.0
    err = relative_error(np.array([1000.0, 0.0]), np.array([1000.0, 1e-3]))
    np.testing.assert_allclose(err, [0.0, 1e-3])
    # opposite signs of a large entry: relative error 2 (the worst possible)
    assert relative_error(np.array([1.0]), np.array([-1.0]))[0] == pytest.approx(2.0)


def test_relative_error_of_empty_arrays():
    assert relative_error(np.zeros((0, 3)), np.zeros((0, 3))).shape == (0, 3)


# --------------------------------------------------------------- wrong layers are caught

class DoubledInputGradDense(Dense):
    """dL/dx off by a factor 2."""

    def backward_from_preactivation(self, grad_z):
        return 2.0 * super().backward_from_preactivation(grad_z)


class HalvedKernelGradDense(Dense):
    """dL/dW off by a factor 1/2."""

    def backward_from_preactivation(self, grad_z):
        grad_x = super().backward_from_preactivation(grad_z)
        self.kernel.grad *= 0.5
        return grad_x


class TransposedDense(Dense):
    """dL/dx = g W instead of g W^T (runs only for square kernels)."""

    def backward_from_preactivation(self, grad_z):
        super().backward_from_preactivation(grad_z)
        return grad_z @ self.kernel.value


class ForgetsMeanBatchNorm(BatchNormalization):
    """dL/dx as if mu and sigma did not depend on x: gamma * inv_std * dy."""

    def backward(self, grad_output):
        super().backward(grad_output)
        shape = grad_output.shape
        return (grad_output.reshape(-1, shape[-1]) * self.gamma.value * self._inv_std).reshape(shape)


class ZeroSoftmaxGrad(Activation):
    """Softmax whose backward returns zeros: right for L = sum(y), wrong for any other loss."""

    def backward(self, grad_output):
        return np.zeros_like(grad_output)


def _check(report, name):
    return next(c for c in report.checks if c.name == name)


def test_correct_dense_passes(float64):
    report = check_layer(Dense(3, activation="tanh"), input_shape=(4, 5))
    assert report.max_error < TOLERANCE and report.passed()
    assert [c.name for c in report.checks] == ["input", "kernel", "bias"]


def test_input_gradient_off_by_a_factor_is_detected_and_named(float64):
    report = check_layer(DoubledInputGradDense(3, activation="sigmoid"), input_shape=(4, 5))
    assert report.max_error > 1e-2 and not report.passed()
    bad = _check(report, "input")
    assert bad.max_error == pytest.approx(0.5, rel=1e-4)   # |2n - n| / |2n|
    assert _check(report, "kernel").max_error < TOLERANCE
    assert _check(report, "bias").max_error < TOLERANCE
    # the worst index is a valid index of the input, with the values there
    assert len(bad.worst_index) == 2
    assert all(0 <= i < s for i, s in zip(bad.worst_index, bad.shape))
    assert bad.analytic == pytest.approx(2 * bad.numeric, rel=1e-4)


def test_kernel_gradient_off_by_a_factor_is_detected_and_named(float64):
    report = check_layer(HalvedKernelGradDense(2), input_shape=(3, 4))
    bad = _check(report, "kernel")
    assert bad.max_error == pytest.approx(0.5, rel=1e-4)
    assert report.max_error == bad.max_error
    assert _check(report, "input").max_error < TOLERANCE
    assert bad.shape == (4, 2) and len(bad.worst_index) == 2
    assert bad.analytic == pytest.approx(0.5 * bad.numeric, rel=1e-4)


def test_transposed_kernel_in_backward_is_detected(float64):
    report = check_layer(TransposedDense(4), input_shape=(3, 4))
    assert _check(report, "input").max_error > 1e-2
    assert _check(report, "kernel").max_error < TOLERANCE


def test_batchnorm_that_ignores_the_batch_statistics_is_detected(float64):
    report = check_layer(ForgetsMeanBatchNorm(), input_shape=(5, 3))
    assert _check(report, "input").max_error > 1e-2
    assert _check(report, "gamma").max_error < TOLERANCE


def test_projection_loss_catches_a_bug_that_a_plain_sum_would_hide(float64):
    layer = ZeroSoftmaxGrad("softmax")
    x = np.random.default_rng(0).standard_normal((3, 4))
    layer.build((4,))
    # with L = sum(y) the zero gradient is right (softmax rows sum to 1) ...
    numeric_sum = numerical_gradient(lambda: float(np.sum(layer.forward(x, training=True))), x)
    np.testing.assert_allclose(numeric_sum, 0.0, atol=1e-9)
    # ... but the checker's random projection exposes it
    assert check_layer(layer, x=x).max_error > 1e-2


def test_report_of_a_layer_without_parameters_has_only_the_input():
    report = check_layer(Flatten(), input_shape=(2, 3, 2))
    assert [c.name for c in report.checks] == ["input"]
    assert report.max_error < TOLERANCE


# --------------------------------------------------------------- report

def test_report_str_is_a_readable_table(float64):
    report = check_layer(DoubledInputGradDense(3, activation="tanh", name="wrong_dense"), input_shape=(4, 5))
    text = str(report)
    lines = text.splitlines()
    assert len(lines) == 1 + len(report.checks)
    assert "tensor" in lines[0] and "shape" in lines[0] and "max rel. error" in lines[0]
    for line, check in zip(lines[1:], report.checks):
        assert line.startswith(check.name)
        assert str(check.shape) in line
        assert f"{check.max_error:.3e}" in line
        assert str(check.worst_index) in line
    assert lines[1].startswith("input") and "(4, 5)" in lines[1] and "5.000e-01" in lines[1]


def test_model_report_prefixes_parameters_with_the_layer_name(float64):
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2, activation="tanh", name="hidden"),
                                  Dense(2, name="out")])
    report = check_model(model, np.random.default_rng(0).standard_normal((2, 3)))
    assert [c.name for c in report.checks] == ["input", "hidden/kernel", "hidden/bias", "out/kernel", "out/bias"]
    assert "hidden/kernel" in str(report)
    assert report.max_error < TOLERANCE


def test_report_max_error_and_passed():
    assert GradcheckReport().max_error == 0.0
    report = GradcheckReport([TensorCheck("a", (2,), 1e-9, (0,), 1.0, 1.0),
                              TensorCheck("b", (3,), 3e-4, (2,), 1.0, 1.0003)])
    assert report.max_error == 3e-4
    assert not report.passed()
    assert report.passed(tolerance=1e-3)


# --------------------------------------------------------------- float64 only

def test_float32_layer_raises_type_error():
    layer = Dense(3)
    layer.build((4,))  # float32: the autouse fixture's floatx
    assert layer.kernel.value.dtype == np.float32
    with pytest.raises(TypeError, match="float64"):
        check_layer(layer, input_shape=(2, 4))


def test_unbuilt_layer_is_built_in_float64_and_floatx_is_restored():
    layer = Dense(3)
    report = check_layer(layer, input_shape=(2, 4))
    assert layer.kernel.value.dtype == np.float64
    assert nnscratch.floatx() == "float32"
    assert report.max_error < TOLERANCE


def test_float32_model_raises_type_error():
    """check_model must refuse float32 weights like check_layer does.

    In float32 the loss is rounded to about 1e-7 of its size, and the central
    difference divides that rounding by 2h, so the report shows errors of
    1e-3..1e-2 for a correct model: misleading.
    """
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(2, activation="tanh")])
    assert model.layers[0].kernel.value.dtype == np.float32
    with pytest.raises(TypeError, match="float64"):
        check_model(model, np.ones((2, 3)))


def test_checker_leaves_parameters_and_input_unchanged(float64):
    layer = Dense(3, activation="sigmoid")
    layer.build((4,))
    x = np.random.default_rng(0).standard_normal((2, 4))
    before = [w.copy() for w in layer.get_weights()], x.copy()
    check_layer(layer, x=x)
    for w, w0 in zip(layer.get_weights(), before[0]):
        np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(x, before[1])


def test_a_bias_just_before_batch_norm_has_a_zero_gradient_and_passes(float64):
    """Batch norm subtracts any per-channel shift, so the bias before it has a true gradient of exactly 0.

    Its two gradients are then both rounding noise (1e-17 against 1e-11):
    judged against the whole check's gradients they agree; judged against
    each other alone they would read as an error of 1.
    """
    from nnscratch.layers import Conv2D

    for layers, x_shape in (([nnscratch.Input((5,)), Dense(4), BatchNormalization(), Dense(3)], (6, 5)),
                            ([nnscratch.Input((5, 5, 2)), Conv2D(3, 3), BatchNormalization(), Activation("tanh"),
                              Flatten(), Dense(2)], (4, 5, 5, 2))):
        model = nnscratch.Sequential(layers)
        x = np.random.default_rng(3).standard_normal(x_shape)
        report = check_model(model, x)
        bias = next(c for c in report.checks if c.name.endswith("/bias") and c.name.startswith(layers[1].name))
        assert abs(bias.analytic) < 1e-9 and abs(bias.numeric) < 1e-9  # both zero, to rounding
        assert report.passed(), str(report)
        # alone, that tensor's noise is judged against its own scale: an error of order 1
        grads = model.layers[0].bias.grad
        assert relative_error(grads, grads + 1e-11).max() > 1e-2


def test_relative_error_with_a_given_scale():
    err = relative_error(np.array([0.0, 2.0]), np.array([1e-9, 2.0]), scale=1e-3)
    np.testing.assert_allclose(err, [1e-6, 0.0])
    # the scale only ever raises the denominator
    np.testing.assert_allclose(relative_error(np.array([1.0]), np.array([2.0]), scale=1e-6), [0.5])


def test_checker_leaves_batch_norm_statistics_and_dropout_draws_unchanged(float64):
    from nnscratch.layers import Dropout

    bn = BatchNormalization()
    bn.build((3,))
    x = np.random.default_rng(0).standard_normal((6, 3)) * 3 + 5
    assert check_layer(bn, x=x, h=1e-4).passed()   # ~44 training-mode forwards, each updating the statistics
    np.testing.assert_array_equal(bn.buffers["moving_mean"], np.zeros(3))
    np.testing.assert_array_equal(bn.buffers["moving_variance"], np.ones(3))
    bn.forward(x, training=True)                    # a forward alone does update them
    assert not np.array_equal(bn.buffers["moving_mean"], np.zeros(3))

    dropout = Dropout(0.5, seed=1)
    dropout.build((4,))
    state = dropout.generator.bit_generator.state
    assert check_layer(dropout, input_shape=(5, 4)).passed()
    assert dropout.generator.bit_generator.state == state


def test_checker_wants_the_input_gradient_of_a_layer_a_model_trained(float64):
    """A training step lets the lowest layer skip dL/dx; the check asks for it again and puts the switch back."""
    model = nnscratch.Sequential([nnscratch.Input((4,)), Dense(3, activation="tanh"), Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.train_on_batch(np.ones((2, 4)), np.zeros((2, 2)))
    first = model.layers[0]
    assert first.skip_input_gradient
    report = check_layer(first, input_shape=(3, 4))
    assert report.passed() and report.checks[0].name == "input"
    assert first.skip_input_gradient


def test_a_backward_that_returns_nothing_is_named():
    class NoInputGradient(Dense):
        def backward(self, grad_output):
            super().backward(grad_output)

    with pytest.raises(TypeError, match="backward returned None"):
        check_layer(NoInputGradient(2), input_shape=(3, 4))


def test_input_shape_without_the_batch_axis_is_explained():
    with pytest.raises(ValueError, match=r"batch axis first.*input_shape=\(5,\)"):
        check_layer(Dense(3), input_shape=(5,))
    with pytest.raises(ValueError, match="needs x or input_shape"):
        check_layer(Dense(3))


def test_numerical_gradient_restores_the_array_when_f_raises():
    a = np.array([1.0, 2.0])

    def f():
        if a[0] != 1.0:
            raise RuntimeError("f failed")
        return 0.0

    with pytest.raises(RuntimeError, match="f failed"):
        numerical_gradient(f, a)
    np.testing.assert_array_equal(a, [1.0, 2.0])
    with pytest.raises(TypeError):
        numerical_gradient(lambda array: float(array.sum()), a)   # f takes no arguments
    np.testing.assert_array_equal(a, [1.0, 2.0])


# --------------------------------------------------------------- the chapter's example

def test_the_example_in_docs_backprop_runs(capsys):
    """docs/backprop.md shows a runnable check_layer / check_model example: keep it running."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "backprop.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
    example = next(b for b in blocks if "check_layer(" in b and "check_model(" in b)
    exec(compile(example, str(doc), "exec"), {})
    out = capsys.readouterr().out
    assert out.count("max rel. error") == 2
    assert "conv2d" in out and "dense" in out
