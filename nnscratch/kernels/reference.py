"""Reference kernels: plain NumPy, written to be read line by line.

Every function here has a twin with the same name and signature in
:mod:`nnscratch.kernels.fast` (Numba); tests check that the twins agree.
Images are NHWC: ``x[n, row, col, channel]``.

Geometry arguments shared by the sliding-window kernels
-------------------------------------------------------
kh, kw : window (kernel or pool) height and width
sh, sw : strides
pad_top, pad_left : zero rows/columns added before the image (``"same"`` padding)
out_h, out_w : output height and width (computed by the layer from the padding rule)

Output position ``(oy, ox)`` looks at input rows ``oy*sh - pad_top + i`` for
``i in range(kh)`` and columns ``ox*sw - pad_left + j`` for ``j in range(kw)``.
"""

import numpy as np

__all__ = [
    "im2col",
    "col2im",
    "conv2d_forward",
    "conv2d_backward",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "conv2d_maxpool_forward",
    "bias_activation",
    "activation_backward",
    "bias_gradient",
    "dropout_forward",
    "batchnorm_forward_train",
    "batchnorm_backward",
    "batchnorm_backward_from_input",
    "batchnorm_inference",
    "batchnorm_maxpool_forward_train",
    "bias_softmax",
    "softmax_cross_entropy",
    "pack_panels",
    "matmul_panels",
    "FixedProduct",
    "all_finite",
    "panel_width",
    "fixed_product_pays",
]


def _padded(x, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, fill):
    """Return ``x`` padded with ``fill`` so that every window lies inside it."""
    n, h, w, c = x.shape
    pad_bottom = max(0, (out_h - 1) * sh + kh - h - pad_top)
    pad_right = max(0, (out_w - 1) * sw + kw - w - pad_left)
    widths = ((0, 0), (pad_top, pad_bottom), (pad_left, pad_right), (0, 0))
    return np.pad(x, widths, constant_values=fill)


def im2col(x, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """Unfold every sliding window of ``x`` into one row of a matrix.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C)

    Returns
    -------
    cols : ndarray, shape (N * out_h * out_w, kh * kw * C)
        Row ``(n, oy, ox)`` holds the window at that output position, ordered
        ``(i, j, c)`` -- the order of a Keras kernel ``(kh, kw, C, filters)``
        reshaped to ``(kh * kw * C, filters)``, so that ``conv = cols @ kernel``.
    """
    n, _, _, c = x.shape
    xp = _padded(x, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, 0)
    cols = np.empty((n, out_h, out_w, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # window element (i, j) of every output position, all at once
            cols[:, :, :, i, j, :] = xp[:, i:i + sh * out_h:sh, j:j + sw * out_w:sw, :]
    return cols.reshape(n * out_h * out_w, kh * kw * c)


def col2im(cols, x_shape, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """Fold window rows back into an image, summing where windows overlap.

    This is the adjoint (transpose) of :func:`im2col`: for any ``x`` and ``g``,
    ``sum(im2col(x) * g) == sum(x * col2im(g))``. It turns the gradient with
    respect to ``cols`` into the gradient with respect to ``x``.

    Parameters
    ----------
    cols : ndarray, shape (N * out_h * out_w, kh * kw * C)
    x_shape : tuple (N, H, W, C)

    Returns
    -------
    dx : ndarray, shape ``x_shape``
    """
    n, h, w, c = x_shape
    zeros = np.zeros(x_shape, dtype=cols.dtype)
    dxp = _padded(zeros, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, 0)
    cols = cols.reshape(n, out_h, out_w, kh, kw, c)
    for i in range(kh):
        for j in range(kw):
            dxp[:, i:i + sh * out_h:sh, j:j + sw * out_w:sw, :] += cols[:, :, :, i, j, :]
    return dxp[:, pad_top:pad_top + h, pad_left:pad_left + w, :].copy()


def conv2d_forward(x, kernel, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, bias=None,
                   activation="linear", cols_out=None, affine=None):
    """Convolution as one matrix product: ``z = im2col(x) @ K``, then ``f(z + b)``.

    Parameters
    ----------
    x : ndarray (N, H, W, C)
    kernel : ndarray (kh, kw, C, F), the Keras layout
    bias : ndarray (F,) or None
    activation : str
        An elementwise activation of :func:`bias_activation`; the default
        ``"linear"`` without a bias returns the pre-activation ``z`` itself.
    cols_out : ndarray (N * out_h * out_w, kh * kw * C) or None
        If given, ``im2col(x)`` is also written into it, for the caller to
        pass to :func:`conv2d_backward` (``cols=``) instead of unfolding again.
        C- or F-contiguous (row- or column-major); the fast twin unfolds a
        column-major one column by column.
    affine : (scale, shift, relu) or None
        An inference-mode batch norm after the layer (``BatchNormalization.inference_affine``):
        ``y`` then goes on through :func:`batchnorm_inference` ``(y, scale, shift, relu)``;
        the fast twin does it in the same sweep.

    Returns
    -------
    y : ndarray (N * out_h * out_w, F), ``f(z + b)``, one row per output pixel
    """
    cols = im2col(x, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)
    if cols_out is not None:
        _check_cols(cols_out, cols.shape, cols.dtype, "cols_out")
        cols_out[...] = cols
    z = cols @ kernel.reshape(-1, kernel.shape[-1])
    y = bias_activation(z, bias, activation)
    return y if affine is None else batchnorm_inference(y, *affine)


def _check_cols(cols, shape, dtype, name):
    if not isinstance(cols, np.ndarray) or cols.shape != shape or cols.dtype != dtype \
            or not (cols.flags.c_contiguous or cols.flags.f_contiguous):
        got = f"{cols.dtype} {cols.shape}" if isinstance(cols, np.ndarray) else type(cols).__name__
        raise ValueError(f"{name} must be a C- or F-contiguous {np.dtype(dtype)} array of shape {shape}, got {got}")


def conv2d_backward(x, grad_z, kernel, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, input_gradient=True,
                    cols=None):
    """Gradients of ``z = im2col(x) @ K`` with respect to ``K`` and ``x``.

    ``dK = im2col(x)^T dz`` and ``dx = col2im(dz K^T)``. ``im2col(x)`` is
    computed again here rather than kept from the forward pass: for a
    28x28x32 layer at batch 64 it is a 58 MB matrix, cheaper to rebuild than
    to hold between the passes. For a small one (a one-channel first layer:
    1.8 MB, but slow to build, a copy of 9 numbers per row) the layer keeps
    it instead and passes it as ``cols``.

    Returns
    -------
    dkernel : ndarray (kh, kw, C, F)
    dx : ndarray (N, H, W, C), or None when ``input_gradient`` is False
    """
    geometry = (kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)
    kernel_matrix = kernel.reshape(-1, kernel.shape[-1])
    if cols is None:
        cols = im2col(x, *geometry)
    else:
        _check_cols(cols, (grad_z.shape[0], kernel_matrix.shape[0]), x.dtype, "cols")
    dkernel = (cols.T @ grad_z).reshape(kernel.shape)
    if not input_gradient:
        return dkernel, None
    return dkernel, col2im(grad_z @ kernel_matrix.T, x.shape, *geometry)


def maxpool2d_forward(x, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """Max over each window; also return where the maximum was.

    Padding cells count as ``-inf`` (never chosen). Tie rule: when several
    cells share the maximum, the first in row-major window order wins and
    alone receives the gradient (as ``np.argmax``).

    Returns
    -------
    y : ndarray, shape (N, out_h, out_w, C)
    argmax : ndarray of int32, shape (N, out_h, out_w, C)
        Index ``i * kw + j`` of the winning cell inside its window.
    """
    xp = _padded(x, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, -np.inf)
    windows = np.stack(
        [xp[:, i:i + sh * out_h:sh, j:j + sw * out_w:sw, :] for i in range(kh) for j in range(kw)],
        axis=-1,
    )  # (N, out_h, out_w, C, kh*kw)
    argmax = windows.argmax(axis=-1).astype(np.int32)
    y = np.take_along_axis(windows, argmax[..., None].astype(np.intp), axis=-1)[..., 0]
    return y, argmax


def conv2d_maxpool_forward(x, kernel, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, pool, bias=None,
                           activation="linear", cols_out=None):
    """A convolution whose output only a max pooling reads: :func:`conv2d_forward`, then :func:`maxpool2d_forward`.

    ``pool`` is the pooling's ``(kh, kw, sh, sw, pad_top, pad_left, out_h,
    out_w)`` (``MaxPooling2D.window()``); the other arguments are
    :func:`conv2d_forward`'s. A ``Model`` calls it in training for a
    ReLU-activated Conv2D followed by a MaxPooling2D whose backward also takes
    the ReLU's: backward then needs the pooled output and its argmax, not the
    full-size convolution output, which the fast twin therefore never writes
    (it pools each block of images while the block is in cache).

    Returns
    -------
    y, argmax : ndarray (N, pool out_h, pool out_w, F), as :func:`maxpool2d_forward`
    """
    if len(pool) != 8:
        raise ValueError(f"pool must be (kh, kw, sh, sw, pad_top, pad_left, out_h, out_w), got {pool!r}")
    z = conv2d_forward(x, kernel, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, bias=bias,
                       activation=activation, cols_out=cols_out)
    return maxpool2d_forward(z.reshape(x.shape[0], out_h, out_w, kernel.shape[-1]), *pool)


def maxpool2d_backward(grad_y, argmax, x_shape, kh, kw, sh, sw, pad_top, pad_left, relu_output=None):
    """Route each output gradient to the input cell that won its window.

    ``dx[n, oy*sh - pad_top + i, ox*sw - pad_left + j, c] += grad_y[n, oy, ox, c]``
    where ``argmax[n, oy, ox, c] == i * kw + j``; overlapping windows add up.

    ``relu_output``: the pooling's output ``y``, given when the pooled values
    ``h`` were the output of a ReLU; the gradient then goes on through that
    ReLU too, ``dz = dx * [h > 0]``, as ``activation_backward(dx, h, "relu")``.
    ``h`` itself is not needed: where a cell won a window, ``h`` there *is*
    that window's ``y``; where it won none, ``dx`` is 0 whatever the mask.
    """
    n, h, w, c = x_shape
    _, out_h, out_w, _ = grad_y.shape
    zeros = np.zeros(x_shape, dtype=grad_y.dtype)
    dxp = _padded(zeros, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w, 0)
    for i in range(kh):
        for j in range(kw):
            routed = np.where(argmax == i * kw + j, grad_y, 0)
            dxp[:, i:i + sh * out_h:sh, j:j + sw * out_w:sw, :] += routed
    dx = dxp[:, pad_top:pad_top + h, pad_left:pad_left + w, :].copy()
    if relu_output is None:
        return dx
    # [h > 0] at every cell: 1 where the cell won a window whose maximum is positive
    won_positive = maxpool2d_backward((relu_output > 0).astype(dx.dtype), argmax, x_shape, kh, kw, sh, sw,
                                      pad_top, pad_left) > 0
    return dx * won_positive


#: The elementwise activations of :func:`bias_activation` and :func:`activation_backward`.
ELEMENTWISE_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "elu", "selu", "softplus", "softsign",
                           "leaky_relu", "gelu", "silu", "hard_sigmoid", "exponential", "relu6",
                           "celu", "hard_silu", "hard_tanh", "log_sigmoid", "mish", "soft_shrink", "hard_shrink",
                           "sparse_plus", "sparse_sigmoid", "squareplus", "tanh_shrink")
#: Those whose derivative is not a function of their output: backward needs the pre-activation ``z``
#: (hard_tanh only at its kinks: TensorFlow's slope is 1 at z = -1 and 1, where y says -1 or 1 for z beyond too).
NEEDS_PREACTIVATION = ("gelu", "silu", "mish", "hard_silu", "tanh_shrink", "hard_tanh")
#: The activations that take a parameter ``alpha``, and its default (Keras's): elu's ``alpha``, leaky_relu's
#: ``negative_slope``.
ALPHA_DEFAULTS = {"elu": 1.0, "leaky_relu": 0.2}
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
SELU_SCALE_ALPHA = 1.7580993408473768599402175208123   # SELU_SCALE * SELU_ALPHA, as TensorFlow writes it
SQRT_HALF = 0.7071067811865476                        # 1 / sqrt(2)
INV_SQRT_2PI = 0.3989422804014327                     # 1 / sqrt(2 pi)


def activation_alpha(activation, alpha):
    """The parameter of ``activation`` (elu's alpha, leaky_relu's negative slope): ``alpha``, or the default if None.

    None for the activations without one (which must not be given one). ``alpha``
    must be a finite number >= 0: for ``alpha < 0`` the output would no longer
    tell the sign of the input, from which backward computes the derivative.
    """
    if activation not in ALPHA_DEFAULTS:
        if alpha is not None:
            raise ValueError(f"activation {activation!r} takes no parameter, got alpha={alpha!r}")
        return None
    if alpha is None:
        return ALPHA_DEFAULTS[activation]
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)) \
            or not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"{activation}'s alpha must be a finite number >= 0, got {alpha!r}")
    return float(alpha)


def _check_elementwise(activation):
    if not isinstance(activation, str) or activation not in ELEMENTWISE_ACTIVATIONS:
        raise ValueError(f"unknown elementwise activation {activation!r}; expected one of {ELEMENTWISE_ACTIVATIONS}")


def _erfc(x):
    """``erfc(x)`` in ``x``'s dtype (SciPy's, for float32 too)."""
    from scipy.special import erfc  # only gelu needs it: imported on first use
    return erfc(x).astype(x.dtype, copy=False)


def _sigmoid(z):
    """``1 / (1 + exp(-z))``, split by sign so that exp never overflows (a new array)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def bias_activation(z, bias, activation, alpha=None):
    r"""Add a bias along the last axis, then apply an elementwise activation, in place.

    ``y = f(z + b)``; ``z`` is overwritten with ``y`` and returned; ``bias``
    may be None. ``f`` (Keras 3's definitions and names):

    ============== =====================================================================
    linear         :math:`z`
    relu           :math:`\max(z, 0)`
    sigmoid        :math:`1 / (1 + e^{-z})`
    tanh           :math:`\tanh z`
    elu            :math:`z` if :math:`z > 0`, else :math:`\alpha (e^z - 1)` (``alpha``, default 1)
    selu           :math:`\lambda z` if :math:`z > 0`, else :math:`\lambda \alpha (e^z - 1)`,
                   :math:`\lambda \approx 1.0507`, :math:`\alpha \approx 1.6733`
    softplus       :math:`\log(1 + e^z)`
    softsign       :math:`z / (1 + |z|)`
    leaky_relu     :math:`z` if :math:`z > 0`, else :math:`\alpha z` (``alpha``: the negative slope, default 0.2)
    gelu           :math:`z \Phi(z) = \tfrac12 z \,\mathrm{erfc}(-z / \sqrt 2)` (the exact form)
    silu           :math:`z \sigma(z)` (Keras's ``"swish"`` too)
    hard_sigmoid   :math:`\mathrm{relu6}(z + 3) / 6`
    exponential    :math:`e^z`
    relu6          :math:`\min(\max(z, 0), 6)`
    celu           :math:`\max(z, 0) + \alpha (e^{\min(z, 0) / \alpha} - 1)`, :math:`\alpha = 1`: elu's numbers
    hard_silu      :math:`z \cdot \mathrm{hard\_sigmoid}(z)` (Keras's ``"hard_swish"`` too)
    hard_tanh      :math:`\min(\max(z, -1), 1)`
    log_sigmoid    :math:`\log \sigma(z) = -\mathrm{softplus}(-z)`
    mish           :math:`z \tanh(\mathrm{softplus}(z))`
    soft_shrink    :math:`z - 0.5` if :math:`z > 0.5`, :math:`z + 0.5` if :math:`z < -0.5`, else 0
    hard_shrink    :math:`z` if :math:`|z| > 0.5`, else 0
    sparse_plus    0 if :math:`z \le -1`, :math:`(z + 1)^2 / 4` if :math:`-1 < z < 1`, else :math:`z`
    sparse_sigmoid 0 if :math:`z \le -1`, :math:`(z + 1) / 2` if :math:`-1 < z < 1`, else 1
    squareplus     :math:`(z + \sqrt{z^2 + b}) / 2`, :math:`b = 4`
    tanh_shrink    :math:`z - \tanh z`
    ============== =====================================================================

    ``e^z - 1`` is computed as ``expm1(z)`` (exact near 0), softplus as
    :math:`\max(z, 0) + \log(1 + e^{-|z|})` (never overflows), and so
    log_sigmoid and mish's softplus. soft_shrink is computed as
    :math:`z - \mathrm{clip}(z, -0.5, 0.5)` (the same numbers; NaN stays NaN),
    squareplus with :math:`s = \mathrm{hypot}(z, 2) = \sqrt{z^2 + 4}` as
    :math:`z / 2 + s / 2` for :math:`z \ge 0` (no overflow) and :math:`2 / (s - z)` below
    (the same number, :math:`(s + z)(s - z) = 4`, without the cancellation of
    :math:`z + s` for a large negative :math:`z`). The parameters of celu,
    soft_shrink, hard_shrink and squareplus are Keras's defaults, the values
    a name gives. ``alpha`` (:func:`activation_alpha`) only for elu and leaky_relu.
    """
    _check_elementwise(activation)
    alpha = activation_alpha(activation, alpha)
    if bias is not None:
        z += bias
    if activation == "relu":
        np.maximum(z, 0, out=z)
    elif activation == "sigmoid":
        # 1 / (1 + exp(-z)), split by sign so that exp never overflows
        z[...] = _sigmoid(z)
    elif activation == "tanh":
        np.tanh(z, out=z)
    elif activation == "elu":
        z[...] = np.where(z > 0, z, z.dtype.type(alpha) * np.expm1(np.minimum(z, 0)))   # (no overflow above 0)
    elif activation == "selu":
        z[...] = np.where(z > 0, z.dtype.type(SELU_SCALE) * z,
                          z.dtype.type(SELU_SCALE_ALPHA) * np.expm1(np.minimum(z, 0)))
    elif activation == "softplus":
        z[...] = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    elif activation == "softsign":
        z[...] = z / (1 + np.abs(z))
    elif activation == "leaky_relu":
        z[...] = np.where(z > 0, z, z.dtype.type(alpha) * z)
    elif activation == "gelu":
        z[...] = z.dtype.type(0.5) * z * _erfc(-z * z.dtype.type(SQRT_HALF))
    elif activation == "silu":
        z[...] = z * _sigmoid(z)
    elif activation == "hard_sigmoid":
        z[...] = np.minimum(np.maximum(z + 3, 0), 6) / 6
    elif activation == "exponential":
        np.exp(z, out=z)
    elif activation == "relu6":
        z[...] = np.minimum(np.maximum(z, 0), 6)
    elif activation == "celu":
        z[...] = np.where(z > 0, z, np.expm1(np.minimum(z, 0)))   # alpha = 1
    elif activation == "hard_silu":
        z[...] = z * (np.minimum(np.maximum(z + 3, 0), 6) / 6)
    elif activation == "hard_tanh":
        z[...] = np.minimum(np.maximum(z, -1), 1)
    elif activation == "log_sigmoid":
        z[...] = np.minimum(z, 0) - np.log1p(np.exp(-np.abs(z)))
    elif activation == "mish":
        z[...] = z * np.tanh(np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))))
    elif activation == "soft_shrink":
        z[...] = z - np.minimum(np.maximum(z, z.dtype.type(-0.5)), z.dtype.type(0.5))
    elif activation == "hard_shrink":
        z[...] = np.where(np.abs(z) <= z.dtype.type(0.5), 0, z)
    elif activation == "sparse_plus":
        t = np.minimum(np.maximum(z, -1), 1) + 1          # z + 1 where used (no overflow where not)
        z[...] = np.where(z <= -1, 0, np.where(z >= 1, z, z.dtype.type(0.25) * np.square(t)))
    elif activation == "sparse_sigmoid":
        z[...] = np.where(z <= -1, 0, np.where(z >= 1, 1, z.dtype.type(0.5) * (z + 1)))
    elif activation == "squareplus":
        s = np.hypot(z, z.dtype.type(2))                   # sqrt(z^2 + 4) without overflow
        # the branch not taken may divide by 0 (inf - inf); s - z past the largest float gives 2 / inf = 0
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            z[...] = np.where(z >= 0, z.dtype.type(0.5) * z + z.dtype.type(0.5) * s, 2 / (s - z))
    elif activation == "tanh_shrink":
        z[...] = z - np.tanh(z)
    return z


def activation_backward(grad_y, y, activation, z=None, alpha=None):
    r"""Gradient through an elementwise activation: ``dz = dy * f'(z)``.

    ``y`` is the activation's output ``f(z)``, from which the derivative is
    computed for every activation except gelu, silu, mish, hard_silu and
    tanh_shrink (whose derivative is not a function of ``y``: ``f`` is not
    one-to-one, or ``y`` cannot be inverted in closed form) and hard_tanh
    (TensorFlow's slope at ``z = -1, 1``), which need the pre-activation ``z``
    itself (:data:`NEEDS_PREACTIVATION`); ``z`` is not read by the others.
    ``alpha`` as in :func:`bias_activation`.

    ============== ===============================================================
    linear         ``dy`` itself (returned, not copied)
    relu           ``dy * [y > 0]``
    sigmoid        ``dy * y (1 - y)``
    tanh           ``dy * (1 - y^2)``
    elu            ``dy`` if ``y > 0``, else ``dy * (y + alpha)``  (``alpha e^z = y + alpha``)
    selu           ``dy * scale`` if ``y >= 0``, else ``dy * (y + scale * alpha)``
    softplus       ``dy * (1 - e^{-y})``  (``= sigmoid(z)``)
    softsign       ``dy * (1 - |y|)^2``  (``= 1 / (1 + |z|)^2``)
    leaky_relu     ``dy`` if ``y > 0``, else ``dy * alpha``
    gelu           ``dy * (Phi(z) + z phi(z))``, ``phi(z) = e^{-z^2/2} / sqrt(2 pi)``
    silu           ``dy * s (1 + z (1 - s))``, ``s = sigmoid(z)``
    hard_sigmoid   ``dy / 6`` if ``0 < y < 1``, else 0
    exponential    ``dy * y``
    relu6          ``dy`` if ``0 < y < 6``, else 0
    celu           ``dy`` if ``y > 0``, else ``dy * (y + 1)``  (``e^z = y + 1``)
    hard_silu      from ``z``: 0 if ``z <= -3``, ``dy`` if ``z >= 3``, else ``dy * (z / 3 + 1 / 2)``
    hard_tanh      from ``z``: ``dy`` if ``-1 <= z <= 1``, else 0
    log_sigmoid    ``dy * (1 - e^y)``  (``= sigmoid(-z)``)
    mish           from ``z``: ``dy * (t + z s (1 - t^2))``, ``t = tanh(softplus(z))``, ``s = sigmoid(z)``
    soft_shrink    ``dy`` if ``y != 0``, else 0
    hard_shrink    ``dy`` if ``y != 0``, else 0
    sparse_plus    ``dy * sqrt(y)`` if ``y < 1``, else ``dy``  (``sqrt(y) = (z + 1) / 2``)
    sparse_sigmoid ``dy / 2`` if ``0 < y < 1``, else 0
    squareplus     ``dy * y^2 / (y^2 + 1)``  (``= (1 + z / sqrt(z^2 + 4)) / 2``), as
                   ``dy / (1 + (1/y)^2)`` for ``y > 1``: no overflow
    tanh_shrink    from ``z``: ``dy * tanh(z)^2``
    ============== ===============================================================

    At the kinks (``z = 0``; ``z = 0, 6`` for relu6; ``z = -3, 3`` for
    hard_sigmoid and hard_silu; ``z = -1, 1`` for hard_tanh and
    sparse_sigmoid; ``z = -0.5, 0.5`` for soft_shrink and hard_shrink) the
    derivative is the one TensorFlow's gradients take: 0 for relu, relu6,
    hard_sigmoid, sparse_sigmoid, soft_shrink and hard_shrink, ``alpha`` for
    elu and leaky_relu (the left one), ``scale`` for selu (the right one), 1
    for hard_tanh (the inner one), 0 at -3 and 1 at 3 for hard_silu (the outer
    ones). celu and sparse_plus have no kink (their slopes meet); TensorFlow's
    gradient of celu at exactly 0 is 2 (those of ``max(z, 0)`` and of
    ``min(z, 0)`` added), here the derivative, 1.
    """
    _check_elementwise(activation)
    alpha = activation_alpha(activation, alpha)
    if activation in NEEDS_PREACTIVATION and z is None:
        raise ValueError(f"the derivative of {activation} needs the pre-activation z (it is not a function of y)")
    if activation == "relu":
        return grad_y * (y > 0)
    if activation == "sigmoid":
        return grad_y * y * (1 - y)
    if activation == "tanh":
        return grad_y * (1 - y * y)
    if activation == "linear":
        return grad_y
    if activation == "elu":
        return grad_y * np.where(y > 0, 1, y + y.dtype.type(alpha))
    if activation == "selu":
        return grad_y * np.where(y >= 0, y.dtype.type(SELU_SCALE), y + y.dtype.type(SELU_SCALE_ALPHA))
    if activation == "softplus":
        return grad_y * -np.expm1(-y)
    if activation == "softsign":
        return grad_y * np.square(1 - np.abs(y))
    if activation == "leaky_relu":
        return grad_y * np.where(y > 0, 1, y.dtype.type(alpha))
    if activation == "gelu":
        cdf = z.dtype.type(0.5) * _erfc(-z * z.dtype.type(SQRT_HALF))
        pdf = z.dtype.type(INV_SQRT_2PI) * np.exp(z * z * z.dtype.type(-0.5))
        return grad_y * (cdf + z * pdf)
    if activation == "silu":
        s = _sigmoid(z)
        return grad_y * (s * (1 + z * (1 - s)))
    if activation == "hard_sigmoid":
        return grad_y * ((y > 0) & (y < 1)) / 6
    if activation == "exponential":
        return grad_y * y
    if activation == "celu":
        return grad_y * np.where(y > 0, 1, y + 1)
    if activation == "hard_silu":
        return grad_y * np.where(z <= -3, 0, np.where(z >= 3, 1, z / 3 + z.dtype.type(0.5)))
    if activation == "hard_tanh":
        return grad_y * ((z >= -1) & (z <= 1))
    if activation == "log_sigmoid":
        return grad_y * -np.expm1(y)
    if activation == "mish":
        t = np.tanh(np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))))
        return grad_y * (t + z * _sigmoid(z) * (1 - t * t))
    if activation in ("soft_shrink", "hard_shrink"):
        return grad_y * (y != 0)
    if activation == "sparse_plus":
        return grad_y * np.where(y >= 1, 1, np.sqrt(y))
    if activation == "sparse_sigmoid":
        return grad_y * ((y > 0) & (y < 1)) / 2
    if activation == "squareplus":
        u = np.minimum(y, 1 / np.maximum(y, 1))            # y if y <= 1, else 1 / y
        return grad_y * (np.where(y > 1, 1, u * u) / (1 + u * u))
    if activation == "tanh_shrink":
        return grad_y * np.square(np.tanh(z))
    # relu6
    return grad_y * ((y > 0) & (y < 6))


def bias_gradient(grad_z):
    """Gradient of a bias added along the last axis: ``db[c] = sum of grad_z[..., c]``.

    ``grad_z`` (..., C) -> ``db`` (C,), in ``grad_z``'s dtype. NumPy adds the
    rows one after the other when C > 1 (the fast twin adds them in the same
    order, so the two agree bit for bit).
    """
    grad_z = np.asarray(grad_z)
    if grad_z.ndim == 0:
        raise ValueError("grad_z must have at least one axis")
    return grad_z.reshape(-1, grad_z.shape[-1]).sum(axis=0)


def dropout_forward(x, uniform, rate):
    """Inverted dropout from uniform draws: keep where ``u >= rate``, scale by ``1/(1-rate)``.

    ``mask = [u >= rate] / (1 - rate)`` (in ``x``'s dtype) and ``y = x * mask``;
    ``uniform`` has ``x``'s shape, values in [0, 1). Returns ``y`` and ``mask``
    (the backward pass is ``dx = dy * mask``).
    """
    x, uniform = np.asarray(x), np.asarray(uniform)
    if uniform.shape != x.shape:
        raise ValueError(f"uniform draws of shape {uniform.shape} do not match x of shape {x.shape}")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")
    mask = (uniform >= rate).astype(x.dtype) / x.dtype.type(1.0 - rate)
    return x * mask, mask


def batchnorm_forward_train(x, gamma, beta, epsilon, relu=False, keep_xhat=True):
    """Batch normalisation of a 2-D array ``(M, C)`` over its rows, per column.

    ``mean = x.mean(0)``, ``var = x.var(0)`` (biased, as Keras),
    ``xhat = (x - mean) / sqrt(var + eps)``, ``y = gamma * xhat + beta``.
    With ``relu=True`` (a BatchNormalization followed by a ReLU, fused by the
    model) ``y`` is then passed through ``bias_activation(y, None, "relu")``:
    the same numbers as the two layers one after the other.

    Returns
    -------
    y, xhat : ndarray (M, C); ``xhat`` is None with ``keep_xhat=False`` (the
        caller keeps ``x`` and ``mean`` for :func:`batchnorm_backward_from_input`)
    mean, var, inv_std : ndarray (C,)
    """
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    inv_std = 1.0 / np.sqrt(var + epsilon)
    xhat = (x - mean) * inv_std
    y = gamma * xhat + beta
    if relu:
        bias_activation(y, None, "relu")
    return y, (xhat if keep_xhat else None), mean, var, inv_std


def batchnorm_backward(grad_y, xhat, gamma, inv_std, beta=None, relu=False):
    """Gradients of batch normalisation in training mode.

    With ``M`` rows: ``dbeta = sum(dy)``, ``dgamma = sum(dy * xhat)`` and
    ``dx = gamma * inv_std / M * (M * dy - dbeta - xhat * dgamma)``
    (the mean and variance depend on ``x`` too; this formula includes that).

    With ``relu=True`` (the forward was fused with a ReLU) ``grad_y`` is the
    gradient of the ReLU's output: it first goes through the ReLU's backward,
    whose mask ``gamma * xhat + beta > 0`` is recomputed here (``beta`` is then
    required), so nothing more than ``xhat`` is kept from the forward pass.

    Returns
    -------
    dx : ndarray (M, C)
    dgamma, dbeta : ndarray (C,)
    """
    if relu:
        if beta is None:
            raise ValueError("batchnorm_backward with relu=True needs beta to recompute the ReLU's mask")
        y = bias_activation(gamma * xhat + beta, None, "relu")
        grad_y = activation_backward(grad_y, y, "relu")
    m = grad_y.shape[0]
    dbeta = grad_y.sum(axis=0)
    dgamma = (grad_y * xhat).sum(axis=0)
    dx = (gamma * inv_std / m) * (m * grad_y - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def batchnorm_backward_from_input(grad_y, x, mean, gamma, inv_std, beta=None, relu=False):
    """:func:`batchnorm_backward` from the layer's input ``x`` and the batch ``mean``.

    ``xhat = (x - mean) * inv_std`` is recomputed with the forward pass's own
    operations, so these are the same numbers as ``batchnorm_backward`` with the
    forward's ``xhat``. A layer that keeps ``x`` (which exists anyway: it is
    the layer below's output) need not store an ``xhat`` of the same size.
    """
    return batchnorm_backward(grad_y, (x - mean) * inv_std, gamma, inv_std, beta=beta, relu=relu)


def batchnorm_maxpool_forward_train(x, gamma, beta, epsilon, relu, kh, kw, sh, sw, pad_top, pad_left, out_h, out_w):
    """Batch norm (training) of the (N, H, W, C) images ``x`` (and the ReLU with ``relu``), then max pooling.

    A BatchNormalization whose output only a MaxPooling2D reads: the model
    needs the pooled output, its argmax and the statistics, not the
    full-size normalised images, which the fast twin therefore never writes.

    Returns
    -------
    y, argmax : ndarray (N, out_h, out_w, C), as :func:`maxpool2d_forward`
    mean, var, inv_std : ndarray (C,), as :func:`batchnorm_forward_train`
    """
    normed, _, mean, var, inv_std = batchnorm_forward_train(x.reshape(-1, x.shape[-1]), gamma, beta, epsilon,
                                                            relu=relu, keep_xhat=False)
    y, argmax = maxpool2d_forward(normed.reshape(x.shape), kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)
    return y, argmax, mean, var, inv_std


def batchnorm_inference(x, scale, shift, relu=False):
    """Batch normalisation with fixed statistics: the affine map ``y = x * scale + shift``.

    The layer folds its weights into ``scale = gamma / sqrt(moving_var + eps)``
    and ``shift = beta - moving_mean * scale`` (one value per column of the
    ``(M, C)`` array ``x``). With ``relu=True`` (fused with a following ReLU)
    ``y`` then goes through ``bias_activation(y, None, "relu")``.
    """
    y = x * scale + shift
    if relu:
        bias_activation(y, None, "relu")
    return y


def bias_softmax(z, bias):
    r"""Add a bias along the last axis of ``z`` in place, then return the softmax of each row as a new array.

    .. math:: y_k = e^{z_k - \max_j z_j} \Big/ \sum_i e^{z_i - \max_j z_j}

    Subtracting the row's maximum changes nothing mathematically and keeps
    every exponential at most 1. ``z`` becomes the logits ``z + b``, which a
    softmax layer keeps for the fused cross-entropy gradient; ``bias`` may be None.
    """
    if bias is not None:
        z += bias
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_cross_entropy(logits, labels):
    """Softmax followed by cross-entropy, fused and numerically stable.

    ``log p = z - max(z) - log(sum(exp(z - max(z))))`` never overflows, so
    logits of any size give a finite loss. The gradient of
    ``L_n = -sum_k t_nk log p_nk`` is ``dL_n/dz_n = p_n - t_n``.

    Parameters
    ----------
    logits : ndarray (N, K)
    labels : ndarray (N, K) of targets (one-hot or soft; rows sum to 1)

    Returns
    -------
    losses : ndarray (N,), one loss per sample
    grad : ndarray (N, K), ``p - t`` for one-hot targets (per sample, not averaged)
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_sum
    losses = -(labels * log_p).sum(axis=1)
    grad = np.exp(log_p) * labels.sum(axis=1, keepdims=True) - labels
    return losses, grad


def panel_width(dtype):
    """Columns of ``w`` in one panel of :func:`pack_panels`: 64 bytes' worth, 16 float32 or 8 float64."""
    return 64 // np.dtype(dtype).itemsize


def pack_panels(w):
    """``w`` ``(k, n)`` in panels of ``width`` columns: ``w_p[q, p, c] = w[p, q * width + c]``.

    Shape ``(ceil(n / width), k, width)``, ``width`` = :func:`panel_width`,
    the last panel padded with zeros; dtypes other than float32 and float64
    are packed as float64. The layout :func:`matmul_panels` reads: row ``p``
    of a panel is 16 neighbouring numbers of ``w``'s row ``p``, and a panel
    is one contiguous block.
    """
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"pack_panels expects a 2-D matrix (k, n), got shape {w.shape}")
    if w.dtype not in (np.float32, np.float64):
        w = w.astype(np.float64)
    k, n = w.shape
    width = panel_width(w.dtype)
    panels = -(-n // width)
    padded = np.zeros((k, panels * width), w.dtype)
    padded[:, :n] = w
    return np.ascontiguousarray(padded.reshape(k, panels, width).transpose(1, 0, 2))


def unpack(w_p, n):
    """The ``(k, n)`` matrix that :func:`pack_panels` packed into ``w_p``."""
    panels, k, width = w_p.shape
    return w_p.transpose(1, 0, 2).reshape(k, panels * width)[:, :n]


def matmul_panels(a, w_p, n, bias=None, activation="linear", w=None):
    """``f(a @ w + bias)`` for ``w`` ``(k, n)`` packed by :func:`pack_panels`: ``(m, k)`` -> ``(m, n)``.

    Here the matrix is unpacked and multiplied by NumPy's ``@``:
    ``out[i, j] = f(sum_p a[i, p] w[p, j] + b[j])``, with ``f`` an elementwise
    activation (:func:`bias_activation`) and ``bias`` of shape ``(n,)`` or
    None. A Dense layer packs its kernel once for a pass of inference
    (``predict``, ``evaluate``) when :func:`fixed_product_pays` says so:
    with ``w`` (``(k, n)``), ``w_p`` is first filled with ``pack_panels(w)``
    (the layer's first batch of the pass).
    """
    a, w_p = np.asarray(a), np.asarray(w_p)
    width = w_p.shape[-1] if w_p.ndim == 3 else 0
    if (a.ndim != 2 or w_p.ndim != 3 or a.shape[1] != w_p.shape[1] or width != panel_width(w_p.dtype)
            or w_p.shape[0] != -(-n // width)):
        raise ValueError(f"matmul_panels expects a (m, k) and w_p (ceil(n / width), k, width) from pack_panels, "
                         f"with n = {n}; got {a.shape} and {w_p.shape}")
    if bias is not None and np.shape(bias) != (n,):
        raise ValueError(f"bias must have shape ({n},), one number per column of w, got {np.shape(bias)}")
    if activation not in ELEMENTWISE_ACTIVATIONS:
        raise ValueError(f"unknown elementwise activation {activation!r}")
    if w is not None:
        if not isinstance(w, np.ndarray) or w.shape != (w_p.shape[1], n) or w.dtype != w_p.dtype:
            raise ValueError(f"w must be a {w_p.dtype} array of shape {(w_p.shape[1], n)} to pack into w_p, "
                             f"got {getattr(w, 'dtype', type(w).__name__)} {np.shape(w)}")
        if not (w_p.flags.c_contiguous and w_p.flags.writeable):
            raise ValueError("w_p must be a writable C-contiguous array to receive w's panels")
        w_p[...] = pack_panels(w)
    return bias_activation(a @ unpack(w_p, n), bias, activation)


def all_finite(x):
    """Whether no number of ``x`` is NaN or infinite (what every ``fit``, ``evaluate`` and ``predict`` checks)."""
    return bool(np.isfinite(x).all())


class FixedProduct:
    """``f(a @ w + bias)`` by one fixed ``w``, call after call: a Dense layer's product for a pass of inference.

    The first call packs ``w`` ``(k, n)`` into ``self.w_p`` with
    :func:`pack_panels`; every call returns
    ``matmul_panels(a, self.w_p, n, bias, activation)``. ``w`` and ``bias``
    must not change before the last call (a pass keeps its weights).
    ``activation``: an elementwise activation of :func:`bias_activation` or
    ``"softmax"``; for a softmax each call also sets :attr:`logits` to
    ``a @ w + bias`` and returns ``bias_softmax(logits, None)``.
    """

    def __init__(self, w, bias=None, activation="linear"):
        if not isinstance(w, np.ndarray) or w.ndim != 2 or w.dtype not in (np.float32, np.float64):
            raise ValueError(f"FixedProduct expects w, a 2-D float32 or float64 array (k, n), got "
                             f"{getattr(w, 'dtype', type(w).__name__)} of shape {np.shape(w)}")
        if bias is not None and np.shape(bias) != (w.shape[1],):
            raise ValueError(f"bias must have shape ({w.shape[1]},), one number per column of w, "
                             f"got {np.shape(bias)}")
        activations = ELEMENTWISE_ACTIVATIONS + ("softmax",)
        if activation not in activations:
            raise ValueError(f"unknown activation {activation!r}; expected one of {activations}")
        self.shape, self.dtype, self.activation = w.shape, w.dtype, activation
        width = panel_width(w.dtype)
        self.w_p = np.empty((-(-w.shape[1] // width), w.shape[0], width), w.dtype)  # filled by the first call
        self.logits = None
        self._w, self._bias = w, bias

    def __call__(self, a):
        """``f(a @ w + bias)``, ``a`` ``(m, k)`` -> ``(m, n)``."""
        k, n = self.shape
        if not isinstance(a, np.ndarray) or a.ndim != 2 or a.shape[1] != k:
            raise ValueError(f"FixedProduct by a ({k}, {n}) matrix expects a of shape (m, {k}), got {np.shape(a)}")
        if self._w is not None:
            self.w_p[...] = pack_panels(self._w)
            self._w = None
        if self.activation != "softmax":
            return matmul_panels(a, self.w_p, n, self._bias, self.activation)
        self.logits = matmul_panels(a, self.w_p, n, self._bias)
        return bias_softmax(self.logits, None)


def fixed_product_pays(k, n):
    """Whether :func:`matmul_panels` is this twin's faster product by a fixed ``(k, n)`` matrix.

    Never here: the reference multiplies with NumPy's ``@`` (BLAS) in every case.
    """
    return False
