"""Winograd F(2x2, 3x3) and F(4x4, 3x3) convolution, NumPy reference twin (written to be read).

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

F(4x4, 3x3) (``tile=4``) is the same with larger tiles: each 4x4 block of
outputs from a 6x6 input tile, with ``B^T`` (6x6), ``G`` (6x3) and ``A^T``
(4x6) built on the points 0, 1, -1, 2, -2 and infinity (``BT4``, ``G4``,
``AT4``). 36 products give 16 outputs, where direct convolution needs 144:
4x fewer multiply-adds (1.78x fewer than F(2x2, 3x3)). The price is rounding:
the transforms multiply by up to 8 and divide by up to 24, so float32 results
differ from the direct convolution by about ten times more than F(2x2,
3x3)'s (measured in tests/test_winograd.py), still far below the noise of
training.

Its Numba twin, :mod:`nnscratch.kernels.winograd_fast`, has the same name and
signature. Both are selected with ``nnscratch.kernels.set_conv_algorithm``.
"""

import numpy as np

__all__ = ["BT", "G", "AT", "BT4", "G4", "AT4", "TILES", "MIN_CHANNELS", "MIN_OUTPUT_SIDE", "MIN_OUTPUT_SIDE_F4",
           "F4_BELOW_OUTPUT_SIDE",
           "winograd_applies",
           "winograd_tile", "check_winograd_args",
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

# F(4x4, 3x3), from the points 0, 1, -1, 2, -2 and infinity (Lavin & Gray, 2016)
BT4 = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G4 = np.array([[1 / 4, 0, 0],
               [-1 / 6, -1 / 6, -1 / 6],
               [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6],
               [1 / 24, -1 / 12, 1 / 6],
               [0, 0, 1]], dtype=np.float64)
AT4 = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=np.float64)

TILES = (2, 4)  # output tile sides: F(2x2, 3x3) and F(4x4, 3x3)


def _matrices(tile):
    """``(B^T, G, A^T)`` of F(tile x tile, 3x3)."""
    if tile == 2:
        return BT, G, AT
    if tile == 4:
        return BT4, G4, AT4
    raise ValueError(f"tile must be one of {TILES} (F(2x2, 3x3) or F(4x4, 3x3)), got {tile!r}")


# Below these, Winograd measured slower than im2col (2-core EPYC, batch 64): with
# few input channels the 16 (36) transformed products (tiles x F each) outweigh
# the output itself, and on small images the tiles overhang the edges (a 5x5 layer's
# 3x3 output is one 4x4 tile of F(4x4, 3x3), 44% of it wasted). F(4x4, 3x3) also takes
# the deep CNN's 7x7 layers (two 4x4 tiles a side): 9.6 against im2col's 16.7 ms for
# 7x7x128 (Zen 4 EPYC, session 6).
MIN_CHANNELS = 8
MIN_OUTPUT_SIDE = 8      # F(2x2, 3x3)
MIN_OUTPUT_SIDE_F4 = 7   # F(4x4, 3x3)
# "winograd-mixed" takes F(4x4, 3x3) for outputs from 7x7 up to 11x11 and F(2x2, 3x3)
# from 12x12 up. On the small layers F(4x4) is the faster one (measured on the Xeon,
# session 12: the simple CNN's 11x11x64 layer, forward 1.23-1.27 against 1.45-1.51 ms
# and kernel gradient 1.20-1.34 against 1.55-1.71; the deep CNN's 7x7 layers 21.4
# against 26.0 ms (forward and backward), where F(2x2) does not apply and im2col ran).
# It is not the default: the study's main job gave 99.65% with it on the Xeon but
# 99.26% on a Zen 1 EPYC (session 13, stopped early at epoch 9), where the default,
# F(2x2) alone, gave 99.68% (and 99.62-99.67% in six runs on three other kinds).
F4_BELOW_OUTPUT_SIDE = 12


def winograd_applies(kernel_shape, strides, out_hw=(MIN_OUTPUT_SIDE, MIN_OUTPUT_SIDE), tile=2) -> bool:
    """True where Conv2D can use Winograd F(tile x tile, 3x3): 3x3 kernels, stride 1, >= 8 input channels,
    output >= 8x8 (tile 2) or >= 7x7 (tile 4)."""
    min_side = MIN_OUTPUT_SIDE_F4 if tile == 4 else MIN_OUTPUT_SIDE
    return (tuple(kernel_shape[:2]) == (3, 3) and tuple(strides) == (1, 1)
            and kernel_shape[2] >= MIN_CHANNELS and min(out_hw) >= min_side)


def winograd_tile(kernel_shape, strides, out_hw, algorithm="winograd") -> int:
    """The output tile side a Conv2D layer uses: 2 for F(2x2, 3x3), 4 for F(4x4, 3x3), 0 for im2col.

    ``algorithm`` is ``kernels.get_conv_algorithm()``: ``"winograd"`` (the
    default) takes F(2x2, 3x3) wherever it applies (from 8x8 outputs);
    ``"winograd4"`` F(4x4, 3x3) wherever it applies (from 7x7);
    ``"winograd-mixed"`` F(4x4, 3x3) for outputs from 7x7 to 11x11 and
    F(2x2, 3x3) from 12x12 up (``F4_BELOW_OUTPUT_SIDE``); ``"im2col"`` never
    Winograd. All of them need ``winograd_applies``.
    """
    if algorithm not in ("im2col", "winograd", "winograd-mixed", "winograd4"):
        raise ValueError(f"algorithm must be 'im2col', 'winograd', 'winograd-mixed' or 'winograd4', got {algorithm!r}")
    if algorithm == "im2col":
        return 0
    if algorithm == "winograd-mixed":
        tile = 4 if min(out_hw) < F4_BELOW_OUTPUT_SIDE else 2
    else:
        tile = 4 if algorithm == "winograd4" else 2
    return tile if winograd_applies(kernel_shape, strides, out_hw, tile) else 0


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


def transform_kernel(kernel, tile=2):
    """``U = G g G^T`` for every (channel, filter) pair: (3, 3, C, F) -> ((tile + 2)^2, C, F), float64 math."""
    _, g, _ = _matrices(tile)
    u = np.einsum("ai,ijcf,bj->abcf", g, kernel.astype(np.float64), g)
    return u.reshape((tile + 2) ** 2, kernel.shape[2], kernel.shape[3])


def _input_tiles(x, pad_top, pad_left, th, tw, tile):
    """``B^T d B`` of every (tile + 2)-square input tile ``d``, as ((tile + 2)^2, tiles, C)."""
    bt, _, _ = _matrices(tile)
    n, h, w, c = x.shape
    side = tile + 2
    padded = np.zeros((n, tile * th + 2, tile * tw + 2, c), dtype=x.dtype)   # every input tile lies inside it
    rows, cols = min(h, padded.shape[1] - pad_top), min(w, padded.shape[2] - pad_left)
    padded[:, pad_top:pad_top + rows, pad_left:pad_left + cols] = x[:, :rows, :cols]
    # tiles[n, ty, tx, c, i, j] = padded[n, tile ty + i, tile tx + j, c]
    windows = np.lib.stride_tricks.sliding_window_view(padded, (side, side), axis=(1, 2))  # (n, H', W', c, s, s)
    tiles = windows[:, ::tile, ::tile][:, :th, :tw]
    return np.einsum("ai,ntxcij,bj->abntxc", bt, tiles, bt).reshape(side * side, n * th * tw, c)


def winograd_conv2d_forward(x, kernel, pad_top, pad_left, out_h, out_w, bias=None, activation="linear", tile=2,
                            affine=None):
    """3x3 stride-1 convolution by Winograd F(tile x tile, 3x3); the same result as ``conv2d_forward``.

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
    tile : {2, 4}
        Output tile side: F(2x2, 3x3) or F(4x4, 3x3).
    affine : (scale, shift, relu) or None
        As :func:`nnscratch.kernels.reference.conv2d_forward`: then
        ``batchnorm_inference(y, scale, shift, relu)``.

    Returns
    -------
    ndarray (N * out_h * out_w, F), one row per output pixel, in ``x``'s dtype.
    """
    from nnscratch.kernels.reference import batchnorm_inference, bias_activation

    x, kernel, pad_top, pad_left, out_h, out_w = check_winograd_args(x, kernel, pad_top, pad_left, out_h, out_w)
    _, _, at = _matrices(tile)
    n, h, w, c = x.shape
    f, side = kernel.shape[3], tile + 2
    th, tw = -(-out_h // tile), -(-out_w // tile)  # tile x tile output tiles
    v = _input_tiles(x, pad_top, pad_left, th, tw, tile)                        # (side^2, tiles, C)
    m = np.matmul(v, transform_kernel(kernel, tile).astype(x.dtype))            # (side^2, tiles, F)
    y = np.einsum("ai,ijtf,bj->tabf", at, m.reshape(side, side, -1, f), at)      # (tiles, tile, tile, F)
    y = y.reshape(n, th, tw, tile, tile, f).transpose(0, 1, 3, 2, 4, 5).reshape(n, tile * th, tile * tw, f)
    z = np.ascontiguousarray(y[:, :out_h, :out_w], dtype=x.dtype).reshape(-1, f)
    y = bias_activation(z, bias, activation)
    return y if affine is None else batchnorm_inference(y, *affine)


def kernel_from_transformed_gradient(du, tile=2):
    """``dL/dg = G^T dU G`` for every (channel, filter) pair: ((tile + 2)^2, C, F) -> (3, 3, C, F), float64 math.

    The adjoint of :func:`transform_kernel` (``U = G g G^T``).
    """
    _, g, _ = _matrices(tile)
    du = np.asarray(du, dtype=np.float64)
    return np.einsum("ai,abcf,bj->ijcf", g, du.reshape(tile + 2, tile + 2, *du.shape[1:]), g)


def winograd_conv2d_kernel_gradient(x, grad_z, pad_top, pad_left, out_h, out_w, tile=2):
    r"""Kernel gradient of the 3x3 stride-1 convolution, by Winograd F(tile x tile, 3x3).

    The forward pass is ``Y = A^T [U \odot V] A`` per tile, summed over
    channels, with ``U = G g G^T``; so, going backwards, each tile's output
    gradient ``dY`` (2x2, zero where cropped) becomes ``dM = A\, dY A^T``
    (4x4), the 16 products become ``dU = V^T dM`` (16 GEMMs ``(C, tiles) @
    (tiles, F)``, summed over tiles), and ``dg = G^T dU G``: the same value as
    ``im2col(x)^T dz``, up to rounding. With ``tile=4`` the same with 4x4
    ``dY``, 6x6 ``dM`` and 36 products.

    Parameters
    ----------
    x : ndarray (N, H, W, C)
    grad_z : ndarray (N * out_h * out_w, F)
        Gradient of the loss with respect to the pre-activation output.
    pad_top, pad_left, out_h, out_w, tile : int
        As :func:`winograd_conv2d_forward`.

    Returns
    -------
    ndarray (3, 3, C, F) in ``x``'s dtype.
    """
    x, grad_z, pad_top, pad_left, out_h, out_w = check_winograd_gradient_args(
        x, grad_z, pad_top, pad_left, out_h, out_w)
    _, _, at = _matrices(tile)
    n, f = x.shape[0], grad_z.shape[1]
    th, tw = -(-out_h // tile), -(-out_w // tile)
    v = _input_tiles(x, pad_top, pad_left, th, tw, tile)                 # (side^2, tiles, C)
    # output gradient, zero beyond the cropped edges, cut into tile x tile tiles
    g = np.zeros((n, tile * th, tile * tw, f), dtype=x.dtype)
    g[:, :out_h, :out_w] = grad_z.reshape(n, out_h, out_w, f)
    g = g.reshape(n, th, tile, tw, tile, f).transpose(0, 1, 3, 2, 4, 5).reshape(-1, tile, tile, f)
    dm = np.einsum("ai,tabf,bj->ijtf", at, g, at).reshape((tile + 2) ** 2, -1, f)    # A dY A^T
    du = np.matmul(v.transpose(0, 2, 1), dm)                            # (side^2, C, F)
    return kernel_from_transformed_gradient(du, tile).astype(x.dtype)
