"""Winograd F(2x2, 3x3) convolution, NumPy reference twin (written to be read).

A 3x3, stride-1 convolution computes each 2x2 block of outputs from a 4x4
tile of the (padded) input. Done directly that is 2*2*9 = 36 multiplications
per channel pair; Winograd's minimal filtering algorithm (Lavin & Gray, 2016)
does it with 16, after transforming the tile and the kernel:

.. math::

    Y = A^T \\Big[ \\sum_c (G\\, g_{c,f}\\, G^T) \\odot (B^T d_c\\, B) \\Big] A

with ``d_c`` the 4x4 input tile of channel ``c``, ``g_{c,f}`` the 3x3 kernel
from channel ``c`` to filter ``f``, and the constant matrices ``B^T`` (4x4),
``G`` (4x3), ``A^T`` (2x4) below. The sum over channels, for each of the 16
positions of the 4x4 transformed tile, is a matrix product: 16 GEMMs of
``(tiles, C) @ (C, F)`` replace the im2col GEMM ``(pixels, 9 C) @ (9 C, F)``,
2.25x fewer multiply-adds. The transforms add only additions (and the
kernel's halves), so the result equals the direct convolution up to rounding.

Its Numba twin, :mod:`nnscratch.kernels.winograd_fast`, has the same name and
signature. Both are selected with ``nnscratch.kernels.set_conv_algorithm``.
"""

import numpy as np

__all__ = ["BT", "G", "AT", "MIN_CHANNELS", "MIN_OUTPUT_SIDE", "winograd_applies", "check_winograd_args",
           "check_winograd_gradient_args",
           "transform_kernel", "winograd_conv2d_forward", "kernel_from_transformed_gradient",
           "winograd_conv2d_kernel_gradient"]

BT = np.array([[1, 0, -1, 0],
               [0, 1, 1, 0],
               [0, -1, 1, 0],
               [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1.0, 0.0, 0.0],
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0.0, 0.0, 1.0]])
AT = np.array([[1, 1, 1, 0],
               [0, 1, -1, -1]], dtype=np.float64)


# Below these, Winograd measured slower than im2col (2-core EPYC, batch 64): with
# few input channels the 16 transformed products (16 x tiles x F) outweigh the
# output itself, and on small images the 2x2 tiles overhang the edges.
MIN_CHANNELS = 8
MIN_OUTPUT_SIDE = 8


def winograd_applies(kernel_shape, strides, out_hw=(MIN_OUTPUT_SIDE, MIN_OUTPUT_SIDE)) -> bool:
    """True where Conv2D uses F(2x2, 3x3): 3x3 kernels, stride 1, >= 8 input channels, output >= 8x8."""
    return (tuple(kernel_shape[:2]) == (3, 3) and tuple(strides) == (1, 1)
            and kernel_shape[2] >= MIN_CHANNELS and min(out_hw) >= MIN_OUTPUT_SIDE)


def check_winograd_args(x, kernel, pad_top, pad_left, out_h, out_w):
    """Validate the arguments shared by both twins; return them as arrays and ints."""
    x = np.asarray(x)
    kernel = np.asarray(kernel)
    if x.ndim != 4 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be a float (N, H, W, C) array, got {x.dtype} {x.shape}")
    if kernel.ndim != 4 or kernel.shape[:2] != (3, 3) or kernel.shape[2] != x.shape[3]:
        raise ValueError(f"kernel must be (3, 3, {x.shape[3]}, F) for Winograd F(2x2, 3x3), got {kernel.shape}")
    pad_top, pad_left, out_h, out_w = (int(v) for v in (pad_top, pad_left, out_h, out_w))
    if not (0 <= pad_top <= 2 and 0 <= pad_left <= 2) or out_h < 1 or out_w < 1:
        raise ValueError(f"need paddings in 0..2 and positive output sizes, got pad ({pad_top}, {pad_left}), "
                         f"output {out_h}x{out_w}")
    if out_h > x.shape[1] + 2 * pad_top or out_w > x.shape[2] + 2 * pad_left:
        raise ValueError(f"output {out_h}x{out_w} is larger than the padded input allows")
    return x, kernel.astype(x.dtype, copy=False), pad_top, pad_left, out_h, out_w


def check_winograd_gradient_args(x, grad_z, pad_top, pad_left, out_h, out_w):
    """Validate the kernel gradient's arguments (both twins); return them, ``grad_z`` in ``x``'s dtype."""
    x = np.asarray(x)
    grad_z = np.asarray(grad_z)
    if x.ndim != 4 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be a float (N, H, W, C) array, got {x.dtype} {x.shape}")
    n = x.shape[0]
    if grad_z.ndim != 2 or grad_z.shape[0] != n * int(out_h) * int(out_w):
        raise ValueError(f"grad_z must be ({n} * {out_h} * {out_w}, F), got {grad_z.shape}")
    x, _, pad_top, pad_left, out_h, out_w = check_winograd_args(
        x, np.zeros((3, 3, x.shape[3], grad_z.shape[1]), x.dtype), pad_top, pad_left, out_h, out_w)
    return x, grad_z.astype(x.dtype, copy=False), pad_top, pad_left, out_h, out_w


def transform_kernel(kernel):
    """``U = G g G^T`` for every (channel, filter) pair: (3, 3, C, F) -> (16, C, F), float64 math."""
    u = np.einsum("ai,ijcf,bj->abcf", G, kernel.astype(np.float64), G)
    return u.reshape(16, kernel.shape[2], kernel.shape[3])


def _input_tiles(x, pad_top, pad_left, th, tw):
    """``B^T d B`` of every 4x4 input tile, as (16, tiles, C)."""
    n, h, w, c = x.shape
    padded = np.zeros((n, 2 * th + 2, 2 * tw + 2, c), dtype=x.dtype)   # every 4x4 tile lies inside it
    rows, cols = min(h, padded.shape[1] - pad_top), min(w, padded.shape[2] - pad_left)
    padded[:, pad_top:pad_top + rows, pad_left:pad_left + cols] = x[:, :rows, :cols]
    # tiles[n, ty, tx, c, i, j] = padded[n, 2 ty + i, 2 tx + j, c]
    windows = np.lib.stride_tricks.sliding_window_view(padded, (4, 4), axis=(1, 2))  # (n, H', W', c, 4, 4)
    tiles = windows[:, ::2, ::2][:, :th, :tw]
    return np.einsum("ai,ntxcij,bj->abntxc", BT, tiles, BT).reshape(16, n * th * tw, c)


def winograd_conv2d_forward(x, kernel, pad_top, pad_left, out_h, out_w, bias=None, activation="linear"):
    """3x3 stride-1 convolution by Winograd F(2x2, 3x3); the same result as ``conv2d_forward``.

    Parameters
    ----------
    x : ndarray (N, H, W, C)
    kernel : ndarray (3, 3, C, F)
    pad_top, pad_left : int
        Zero rows/columns before the image (0 for "valid", 1 for "same"; 2 for
        the input gradient of a "valid" convolution).
    out_h, out_w : int
    bias, activation
        As :func:`nnscratch.kernels.reference.bias_activation`.

    Returns
    -------
    ndarray (N * out_h * out_w, F), one row per output pixel, in ``x``'s dtype.
    """
    from nnscratch.kernels.reference import bias_activation

    x, kernel, pad_top, pad_left, out_h, out_w = check_winograd_args(x, kernel, pad_top, pad_left, out_h, out_w)
    n, h, w, c = x.shape
    f = kernel.shape[3]
    th, tw = -(-out_h // 2), -(-out_w // 2)  # 2x2 output tiles
    v = _input_tiles(x, pad_top, pad_left, th, tw)                       # (16, tiles, C)
    m = np.matmul(v, transform_kernel(kernel).astype(x.dtype))           # (16, tiles, F)
    y = np.einsum("ai,ijtf,bj->tabf", AT, m.reshape(4, 4, -1, f), AT)    # (tiles, 2, 2, F)
    y = y.reshape(n, th, tw, 2, 2, f).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * th, 2 * tw, f)
    z = np.ascontiguousarray(y[:, :out_h, :out_w], dtype=x.dtype).reshape(-1, f)
    return bias_activation(z, bias, activation)


def kernel_from_transformed_gradient(du):
    """``dL/dg = G^T dU G`` for every (channel, filter) pair: (16, C, F) -> (3, 3, C, F), float64 math.

    The adjoint of :func:`transform_kernel` (``U = G g G^T``).
    """
    du = np.asarray(du, dtype=np.float64)
    return np.einsum("ai,abcf,bj->ijcf", G, du.reshape(4, 4, *du.shape[1:]), G)


def winograd_conv2d_kernel_gradient(x, grad_z, pad_top, pad_left, out_h, out_w):
    r"""Kernel gradient of the 3x3 stride-1 convolution, by Winograd F(2x2, 3x3).

    The forward pass is ``Y = A^T [U \odot V] A`` per tile, summed over
    channels, with ``U = G g G^T``; so, going backwards, each tile's output
    gradient ``dY`` (2x2, zero where cropped) becomes ``dM = A\, dY A^T``
    (4x4), the 16 products become ``dU = V^T dM`` (16 GEMMs ``(C, tiles) @
    (tiles, F)``, summed over tiles), and ``dg = G^T dU G``: the same value as
    ``im2col(x)^T dz``, up to rounding.

    Parameters
    ----------
    x : ndarray (N, H, W, C)
    grad_z : ndarray (N * out_h * out_w, F)
        Gradient of the loss with respect to the pre-activation output.
    pad_top, pad_left, out_h, out_w : int
        As :func:`winograd_conv2d_forward`.

    Returns
    -------
    ndarray (3, 3, C, F) in ``x``'s dtype.
    """
    x, grad_z, pad_top, pad_left, out_h, out_w = check_winograd_gradient_args(
        x, grad_z, pad_top, pad_left, out_h, out_w)
    n, f = x.shape[0], grad_z.shape[1]
    th, tw = -(-out_h // 2), -(-out_w // 2)
    v = _input_tiles(x, pad_top, pad_left, th, tw)                       # (16, tiles, C)
    # output gradient, zero beyond the cropped edges, cut into 2x2 tiles
    g = np.zeros((n, 2 * th, 2 * tw, f), dtype=x.dtype)
    g[:, :out_h, :out_w] = grad_z.reshape(n, out_h, out_w, f)
    g = g.reshape(n, th, 2, tw, 2, f).transpose(0, 1, 3, 2, 4, 5).reshape(-1, 2, 2, f)  # (tiles, 2, 2, F)
    dm = np.einsum("ai,tabf,bj->ijtf", AT, g, AT).reshape(16, -1, f)    # A dY A^T
    du = np.matmul(v.transpose(0, 2, 1), dm)                            # (16, C, F)
    return kernel_from_transformed_gradient(du).astype(x.dtype)
