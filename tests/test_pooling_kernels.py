"""Average/global pooling and upsampling kernels: the Numba twin gives the NumPy reference's bits, and both
give the formulas written out here (loops over windows, independent of the kernels' slicing).

Runs with and without ``NUMBA_DISABLE_JIT=1``.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch import kernels
from nnscratch.kernels import pooling_fast as fast
from nnscratch.kernels import pooling_reference as reference
from nnscratch.kernels import workspace

try:
    from tests.grad_strategies import image_shapes
    from tests.kernel_helpers import module_value
    from tests.strategies import ConvGeometry, conv_geometry, float_dtypes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import image_shapes
    from kernel_helpers import module_value
    from strategies import ConvGeometry, conv_geometry, float_dtypes, rng_seeds

TWINS = [reference, fast]


def pool_geometries():
    """Windows up to 4x4, strides 1-3 (overlapping windows when the stride is smaller), odd and even sizes."""
    return conv_geometry(max_batch=3, max_size=9, max_channels=4, max_kernel=4, max_stride=3)


def average_by_windows(x, geom):
    """The Keras formula, window by window: the mean of the input cells the window covers."""
    n, h, w, c = x.shape
    y = np.empty(geom.y_shape)
    for oy in range(geom.out_h):
        for ox in range(geom.out_w):
            r0, c0 = oy * geom.sh - geom.pad_top, ox * geom.sw - geom.pad_left
            cells = x[:, max(r0, 0):min(r0 + geom.kh, h), max(c0, 0):min(c0 + geom.kw, w), :]
            y[:, oy, ox, :] = cells.astype(np.float64).mean(axis=(1, 2))
    return y


def adjoint_by_windows(g, geom):
    """d<avgpool(x), g>/dx, window by window: each window adds g / (its cell count) to its cells."""
    dx = np.zeros(geom.x_shape)
    h, w = geom.h, geom.w
    for oy in range(geom.out_h):
        for ox in range(geom.out_w):
            r0, c0 = oy * geom.sh - geom.pad_top, ox * geom.sw - geom.pad_left
            rows, cols = slice(max(r0, 0), min(r0 + geom.kh, h)), slice(max(c0, 0), min(c0 + geom.kw, w))
            count = (rows.stop - rows.start) * (cols.stop - cols.start)
            dx[:, rows, cols, :] += g[:, oy:oy + 1, ox:ox + 1, :] / count
    return dx


def tolerance(dtype):
    return dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- average pooling

@given(geom=pool_geometries(), dtype=float_dtypes(), seed=rng_seeds())
def test_avgpool_twins_are_bit_identical_and_follow_the_formula(geom, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geom.x_shape).astype(dtype)
    g = rng.standard_normal(geom.y_shape).astype(dtype)
    y, dx = [], []
    for twin in TWINS:
        y.append(twin.avgpool2d_forward(x, *geom.window_args))
        dx.append(twin.avgpool2d_backward(g, geom.x_shape, *geom.window_args[:6]))
        assert y[-1].dtype == dx[-1].dtype == dtype
        assert y[-1].shape == geom.y_shape and dx[-1].shape == geom.x_shape
    np.testing.assert_array_equal(y[1], y[0])
    np.testing.assert_array_equal(dx[1], dx[0])
    np.testing.assert_allclose(y[0], average_by_windows(x, geom), **tolerance(dtype))
    np.testing.assert_allclose(dx[0], adjoint_by_windows(g.astype(np.float64), geom), **tolerance(dtype))


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
@given(geom=pool_geometries(), seed=rng_seeds())
def test_avgpool_backward_is_the_adjoint_of_forward(twin, geom, seed):
    """<pool(x), g> == <x, pool_backward(g)>: the backward of a linear map is its transpose."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(geom.x_shape)
    g = rng.standard_normal(geom.y_shape)
    lhs = np.vdot(twin.avgpool2d_forward(x, *geom.window_args), g)
    rhs = np.vdot(x, twin.avgpool2d_backward(g, geom.x_shape, *geom.window_args[:6]))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
def test_same_padding_counts_only_the_cells_inside(twin):
    """3x3 windows, stride 1, "same" on a 4x4 image: 4 cells at a corner, 6 along an edge, 9 inside."""
    geom = ConvGeometry(1, 4, 4, 1, 3, 3, 1, 1, "same")
    counts = reference.avgpool2d_counts(4, 4, *geom.window_args)
    np.testing.assert_array_equal(counts, [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]])
    ones = np.ones(geom.x_shape)
    np.testing.assert_array_equal(twin.avgpool2d_forward(ones, *geom.window_args), ones)  # not 4/9 at a corner
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    assert twin.avgpool2d_forward(x, *geom.window_args)[0, 0, 0, 0] == (0 + 1 + 4 + 5) / 4
    # backward: every window's gradient is spent on real cells, none on the padding
    g = np.random.default_rng(0).standard_normal(geom.y_shape)
    assert twin.avgpool2d_backward(g, geom.x_shape, *geom.window_args[:6]).sum() == pytest.approx(g.sum())


@pytest.mark.parametrize("geom", [ConvGeometry(3, 7, 6, 5, 3, 3, 2, 2, "same"),     # overlapping, padded
                                  ConvGeometry(4, 6, 8, 3, 2, 2, 2, 2, "valid"),    # the usual 2x2 / 2
                                  ConvGeometry(2, 5, 5, 2, 3, 2, 1, 3, "same")], ids=["overlap", "tiled", "mixed"])
def test_parallel_compilation_gives_the_same_bits(geom):
    """``SERIAL_BELOW = 0`` runs every fast kernel's prange loops on Numba's threads (what arrays of 262,144
    numbers or more get): still the reference's bits. float32 only, the dtype that trains (each compilation
    of the parallel loops costs seconds on a fresh cache)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal(geom.x_shape).astype(np.float32)
    g = rng.standard_normal(geom.y_shape).astype(np.float32)
    g_global = rng.standard_normal((geom.n, geom.c)).astype(np.float32)
    g_up = rng.standard_normal((geom.n, geom.h, 2 * geom.w, geom.c)).astype(np.float32)
    _, argmax = reference.global_maxpool2d_forward(x)
    calls = [("avgpool2d_forward", (x, *geom.window_args)),
             ("avgpool2d_backward", (g, geom.x_shape, *geom.window_args[:6])),
             ("global_avgpool2d_forward", (x,)), ("global_avgpool2d_backward", (g_global, geom.x_shape)),
             ("global_maxpool2d_forward", (x,)), ("global_maxpool2d_backward", (g_global, argmax, geom.x_shape)),
             ("upsample_nearest2d_forward", (x, 2, 3)), ("upsample_nearest2d_backward", (g_up, 1, 2))]
    for name, args in calls:
        with module_value(workspace, "SERIAL_BELOW", 0):
            ours = getattr(fast, name)(*args)
        theirs = getattr(reference, name)(*args)
        if not isinstance(ours, tuple):
            ours, theirs = (ours,), (theirs,)
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
def test_avgpool_bad_arguments_are_refused(twin):
    x = np.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match="holds no cell"):
        twin.avgpool2d_forward(x, 2, 2, 2, 2, 2, 0, 2, 2)      # first window entirely in the padding
    with pytest.raises(ValueError, match="holds no cell"):
        twin.avgpool2d_forward(x, 2, 2, 2, 2, 0, 0, 3, 2)      # third row of windows below the image
    with pytest.raises(TypeError, match="float32 or float64"):
        twin.avgpool2d_forward(x.astype(np.int64), 2, 2, 2, 2, 0, 0, 2, 2)
    with pytest.raises(ValueError, match="NHWC"):
        twin.avgpool2d_forward(np.zeros((4, 4, 1)), 2, 2, 2, 2, 0, 0, 2, 2)
    with pytest.raises(ValueError, match="does not match"):
        twin.avgpool2d_backward(np.zeros((1, 2, 2, 3)), (1, 4, 4, 1), 2, 2, 2, 2, 0, 0)


# --------------------------------------------------------------------------- global pooling

@given(shape=image_shapes(), dtype=float_dtypes(), seed=rng_seeds())
def test_global_pooling_twins_are_bit_identical_and_follow_the_formula(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal((shape[0], shape[3])).astype(dtype)
    n, h, w, c = shape
    results = []
    for twin in TWINS:
        mean = twin.global_avgpool2d_forward(x)
        d_mean = twin.global_avgpool2d_backward(g, shape)
        top, argmax = twin.global_maxpool2d_forward(x)
        d_top = twin.global_maxpool2d_backward(g, argmax, shape)
        assert mean.dtype == d_mean.dtype == top.dtype == d_top.dtype == dtype and argmax.dtype == np.int32
        results.append((mean, d_mean, top, argmax, d_top))
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)
    mean, d_mean, top, argmax, d_top = results[0]
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=(1, 2)), **tolerance(dtype))
    np.testing.assert_allclose(d_mean, np.broadcast_to(g[:, None, None, :] / (h * w), shape), **tolerance(dtype))
    np.testing.assert_array_equal(top, x.max(axis=(1, 2)))
    for b in range(n):
        for q in range(c):
            r, s = divmod(int(argmax[b, q]), w)
            assert x[b, r, s, q] == top[b, q]
            expected = np.zeros((h, w), dtype=dtype)
            expected[r, s] = g[b, q]
            np.testing.assert_array_equal(d_top[b, :, :, q], expected)


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
def test_global_max_ties_go_to_the_first_pixel_and_nan_wins(twin):
    x = np.array([[[1.0, 3.0], [3.0, 0.0]],        # tie between (0, 1) and (1, 0): (0, 1) is first
                  [[2.0, np.nan], [np.nan, 9.0]]])  # a NaN wins over numbers, the first NaN
    top, argmax = twin.global_maxpool2d_forward(x[..., None])
    np.testing.assert_array_equal(argmax[:, 0], [1, 1])
    np.testing.assert_array_equal(top[:, 0], [3.0, np.nan])
    dx = twin.global_maxpool2d_backward(np.array([[2.5], [1.0]]), argmax, (2, 2, 2, 1))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 2.5], [0.0, 0.0]])


@pytest.mark.parametrize("twin", TWINS, ids=["numpy", "numba"])
def test_global_pooling_bad_arguments_are_refused(twin):
    with pytest.raises(ValueError, match="argmax must index"):
        twin.global_maxpool2d_backward(np.zeros((1, 1)), np.array([[4]]), (1, 2, 2, 1))
    with pytest.raises(ValueError, match="grad_y must be"):
        twin.global_avgpool2d_backward(np.zeros((2, 1)), (1, 2, 2, 1))
    with pytest.raises(ValueError, match="at least one pixel"):
        twin.global_avgpool2d_forward(np.zeros((1, 0, 2, 1)))


# --------------------------------------------------------------------------- upsampling

@given(shape=image_shapes(), size_h=st.integers(1, 3), size_w=st.integers(1, 3), dtype=float_dtypes(),
       seed=rng_seeds())
def test_upsample_twins_are_bit_identical_and_follow_the_formula(shape, size_h, size_w, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    n, h, w, c = shape
    g = rng.standard_normal((n, h * size_h, w * size_w, c)).astype(dtype)
    results = [(twin.upsample_nearest2d_forward(x, size_h, size_w), twin.upsample_nearest2d_backward(g, size_h, size_w))
               for twin in TWINS]
    for ours, theirs in zip(*results):
        assert ours.dtype == dtype
        np.testing.assert_array_equal(ours, theirs)
    y, dx = results[0]
    rows, cols = np.arange(h * size_h) // size_h, np.arange(w * size_w) // size_w
    np.testing.assert_array_equal(y, x[:, rows][:, :, cols])
    blocks = g.astype(np.float64).reshape(n, h, size_h, w, size_w, c).sum(axis=(2, 4))
    np.testing.assert_allclose(dx, blocks, **tolerance(dtype))
    # adjoint
    assert np.vdot(y.astype(np.float64), g) == pytest.approx(np.vdot(x.astype(np.float64), dx), rel=1e-5, abs=1e-5)


def test_pooling_backend_follows_set_backend():
    previous = kernels.get_backend()
    try:
        nnscratch.set_backend("numpy")
        assert kernels.pooling_backend() is reference
        nnscratch.set_backend("numba")
        assert kernels.pooling_backend() is fast
        assert kernels.pooling_backend("numpy") is reference
    finally:
        nnscratch.set_backend(previous)
    assert sorted(fast.__all__) == sorted(reference.__all__)
    for name in reference.__all__:
        assert callable(getattr(fast, name))

