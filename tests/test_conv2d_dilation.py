"""Conv2D's ``dilation_rate``: the formula, gradient checks (float64, both kernel twins), the Model's fusions,
saving and errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels
from nnscratch.gradcheck import check_layer
from nnscratch.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D

try:
    from tests.grad_strategies import STEP, TOLERANCE, dilated_cases, kernel_values, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import STEP, TOLERANCE, dilated_cases, kernel_values, rng_seeds


def dilated_conv(x, kernel, dilation, padding):
    """The definition, by loops: ``z[n, r, s, f] = sum_ijc x[n, r - pt + i dh, s - pl + j dw, c] K[i, j, c, f]``."""
    (kh, kw, _, f), (dh, dw) = kernel.shape, dilation
    span_h, span_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if padding == "same":   # TensorFlow's: the odd one at the end
        pt, pl = (span_h - 1) // 2, (span_w - 1) // 2
        x = np.pad(x, ((0, 0), (pt, span_h - 1 - pt), (pl, span_w - 1 - pl), (0, 0)))
    out_h, out_w = x.shape[1] - span_h + 1, x.shape[2] - span_w + 1
    z = np.zeros((x.shape[0], out_h, out_w, f))
    for i in range(kh):
        for j in range(kw):
            window = x[:, i * dh:i * dh + out_h, j * dw:j * dw + out_w, :]
            z += window @ kernel[i, j]
    return z


@pytest.mark.parametrize("backend", kernels.BACKENDS)   # conftest restores the default after
@settings(max_examples=10)
@given(case=dilated_cases(), filters=st.integers(1, 3), seed=rng_seeds())
def test_the_forward_pass_is_the_definition(backend, case, filters, seed):
    nnscratch.set_backend(backend)
    shape, size, dilation, padding = case
    rng = np.random.default_rng(seed)
    layer = Conv2D(filters, size, padding=padding, dilation_rate=dilation, use_bias=False)
    layer.build(shape[1:])
    x = rng.standard_normal(shape).astype(np.float32)
    z = dilated_conv(x.astype(np.float64), layer.kernel.value.astype(np.float64), dilation, padding)
    assert layer.output_shape == (None, *z.shape[1:])
    np.testing.assert_allclose(layer.forward(x), z, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", kernels.BACKENDS)
@settings(max_examples=10)
@given(case=dilated_cases(), filters=st.integers(1, 3), use_bias=st.booleans(), seed=rng_seeds())
def test_dilated_conv2d_gradients(backend, case, filters, use_bias, seed):
    """tanh keeps every step on a smooth function; the kernel's gradient has the kernel's shape, not the spread one."""
    nnscratch.set_backend(backend)
    shape, size, dilation, padding = case
    rng = np.random.default_rng(seed)
    nnscratch.set_floatx("float64")
    try:
        layer = Conv2D(filters, size, padding=padding, dilation_rate=dilation, activation="tanh", use_bias=use_bias)
        layer.build(shape[1:])
    finally:
        nnscratch.set_floatx("float32")
    kernel = kernel_values(rng, (*size, shape[-1], filters), size[0] * size[1] * shape[-1])
    layer.set_weights([kernel, 0.5 * rng.standard_normal(filters)] if use_bias else [kernel])
    report = check_layer(layer, x=rng.standard_normal(shape), seed=seed % 1000, h=STEP)
    assert report.checks[1].shape == (*size, shape[-1], filters)
    assert report.passed() and report.max_error < TOLERANCE, f"\n{report}"


def test_a_dilated_kernel_never_takes_winograd():
    """A 2x2 kernel dilated by 2 spans 3x3, the Winograd shape; it must still be computed as itself."""
    rng = np.random.default_rng(1)
    layer = Conv2D(8, 2, padding="same", dilation_rate=2, use_bias=False)
    layer.build((10, 10, 16))
    assert layer._winograd() == 0
    x = rng.standard_normal((2, 10, 10, 16)).astype(np.float32)
    z = dilated_conv(x.astype(np.float64), layer.kernel.value.astype(np.float64), (2, 2), "same")
    np.testing.assert_allclose(layer.forward(x), z, rtol=1e-4, atol=1e-4)


def test_a_model_with_a_dilated_relu_conv_before_a_pooling_trains_and_saves(tmp_path):
    """The Model computes such a pooling inside the Conv2D in training (forward_pooled), the spread kernel too."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 9, 9, 2)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)]
    nnscratch.set_random_seed(0)
    model = nnscratch.Sequential([Input((9, 9, 2)), Conv2D(4, 3, dilation_rate=(2, 1), activation="relu"),
                                  MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    assert model.layers[0].output_shape == (None, 5, 7, 4)
    before = model.layers[0].get_weights()[0]
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert not np.array_equal(model.layers[0].get_weights()[0], before)
    path = tmp_path / "dilated.npz"
    model.save(path)
    loaded = nnscratch.load_model(path)
    assert loaded.layers[0].dilation_rate == (2, 1)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_errors():
    with pytest.raises(ValueError, match="strides > 1 cannot be combined with dilation_rate > 1"):
        Conv2D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="dilation_rate must be positive"):
        Conv2D(2, 3, dilation_rate=0)
    with pytest.raises(ValueError, match=r"kernel \(5, 5\) is larger than its valid-padded input"):
        Conv2D(2, 3, dilation_rate=2).build((4, 4, 1))
