"""Time the NumPy reference kernels against their Numba twins.

Shapes are those of the deep CNN at batch 64: 3x3 "same" convolutions on
28x28x32, 14x14x64 and 7x7x128 feature maps, 2x2 max pooling, batch
normalisation on (64*28*28, 32). For each convolution the matmul of the
im2col matrix with the kernel is timed too, to show where the time goes.

Then one training step of the three convolutions is timed op by op, as a
layer would run it (fresh arrays, BLAS matmuls between the Numba kernels), to
show the interplay of the two thread pools: try it with and without
``OMP_WAIT_POLICY=passive`` in the environment.

Then the deep CNN's 3x3 convolutions (forward, input gradient and kernel
gradient, as the layer computes them) by im2col + GEMM against Winograd
F(2x2, 3x3), both fast twins, including the layers Conv2D leaves to im2col.

Also measures the start-up cost of the Numba twin: import plus the first call
of every kernel in a fresh process, once with an empty Numba cache (compile)
and once more with the cache that run left behind (``cache=True``).

Usage::

    python benchmarks/bench_kernels.py [--repeat 7] [--dtype float32] [--steps 10]
        [--no-kernels] [--no-step] [--no-winograd] [--no-startup]
"""

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time

import nnscratch  # noqa: F401  (before NumPy: its thread settings must reach OpenBLAS)
import numpy as np

from nnscratch import kernels
from nnscratch.kernels import fast, reference, winograd_fast

BATCH = 64
CONV_LAYERS = [(28, 28, 32), (14, 14, 64), (7, 7, 128)]  # (H, W, C), 3x3 same, C filters


def median_time(fn, repeat):
    """Median wall time of ``fn()`` over ``repeat`` runs, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cases(dtype, rng):
    """Yield (label, callable taking the kernel module) for every benchmark."""
    for h, w, c in CONV_LAYERS:
        x = rng.standard_normal((BATCH, h, w, c)).astype(dtype)
        geo = (3, 3, 1, 1, 1, 1, h, w)  # 3x3, stride 1, same padding
        cols = reference.im2col(x, *geo)
        kernel = rng.standard_normal((9 * c, c)).astype(dtype)
        tag = f"{h}x{w}x{c}"
        yield f"im2col {tag} -> {cols.shape}", lambda k, x=x, geo=geo: k.im2col(x, *geo)
        yield f"col2im {tag}", lambda k, c_=cols, s=x.shape, geo=geo: k.col2im(c_, s, *geo)
        yield f"matmul cols @ W {cols.shape}x{kernel.shape}", lambda k, a=cols, b=kernel: a @ b
        dy = rng.standard_normal((cols.shape[0], c)).astype(dtype)
        yield "matmul dW = cols.T @ dy", lambda k, a=cols, b=dy: a.T @ b
        yield "matmul dcols = dy @ W.T", lambda k, a=dy, b=kernel: a @ b.T
        z = rng.standard_normal((BATCH * h * w, c)).astype(dtype)
        b = rng.standard_normal(c).astype(dtype)
        yield f"bias_activation relu {z.shape}", lambda k, z=z, b=b: k.bias_activation(z.copy(), b, "relu")
        yield f"  (copy of z, included above)", lambda k, z=z: z.copy()
        y = np.maximum(z, 0)
        yield f"activation_backward relu {z.shape}", lambda k, g=z, y=y: k.activation_backward(g, y, "relu")
        yield f"bias_gradient {z.shape}", lambda k, g=z: k.bias_gradient(g)
        yield f"  (np.sum(dz, axis=0), what Conv2D called before)", lambda k, g=z: np.sum(g, axis=0)
    x = rng.standard_normal((BATCH, 14, 14, 32)).astype(dtype)   # the deep CNN's first Dropout(0.25)
    u = rng.random(x.shape, dtype=np.float32)
    yield f"dropout_forward {x.shape}", lambda k, x=x, u=u: k.dropout_forward(x, u, 0.25)
    yield "  (the uniform draws, Generator.random float32)", lambda k, g=np.random.default_rng(0), s=x.shape: g.random(
        s, dtype=np.float32)
    for h, w, c in CONV_LAYERS[:2]:
        x = rng.standard_normal((BATCH, h, w, c)).astype(dtype)
        geo = (2, 2, 2, 2, 0, 0, h // 2, w // 2)
        _, argmax = reference.maxpool2d_forward(x, *geo)
        gy = rng.standard_normal(argmax.shape).astype(dtype)
        yield f"maxpool2d_forward 2x2 {h}x{w}x{c}", lambda k, x=x, geo=geo: k.maxpool2d_forward(x, *geo)
        yield (f"maxpool2d_backward 2x2 {h}x{w}x{c}",
               lambda k, gy=gy, a=argmax, s=x.shape, geo=geo: k.maxpool2d_backward(gy, a, s, *geo[:6]))
    m, c = BATCH * 28 * 28, 32
    x = (rng.standard_normal((m, c)) * 2 + 1).astype(dtype)
    gamma = rng.standard_normal(c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    _, xhat, _, _, inv_std = reference.batchnorm_forward_train(x, gamma, beta, 1e-3)
    gy = rng.standard_normal((m, c)).astype(dtype)
    yield f"batchnorm_forward_train {x.shape}", lambda k: k.batchnorm_forward_train(x, gamma, beta, 1e-3)
    yield f"batchnorm_backward {x.shape}", lambda k: k.batchnorm_backward(gy, xhat, gamma, inv_std)
    logits = (rng.standard_normal((BATCH, 10)) * 3).astype(dtype)
    labels = np.eye(10, dtype=dtype)[rng.integers(0, 10, BATCH)]
    yield "softmax_cross_entropy (64, 10)", lambda k: k.softmax_cross_entropy(logits, labels)


# the deep CNN's 3x3 "same" convolutions: (H, W, C in, F out)
WINOGRAD_LAYERS = [(28, 28, 1, 32), (28, 28, 32, 32), (14, 14, 32, 64), (14, 14, 64, 64), (7, 7, 64, 128),
                   (7, 7, 128, 128)]


def winograd_times(dtype, rng, repeat):
    """Yield (label, im2col ms, F(2x2, 3x3) ms, F(4x4, 3x3) ms) for the three products of each deep-CNN conv."""
    for h, w, c, f in WINOGRAD_LAYERS:
        x = rng.standard_normal((BATCH, h, w, c)).astype(dtype)
        kernel = (rng.standard_normal((3, 3, c, f)) * 0.1).astype(dtype)
        g = rng.standard_normal((BATCH, h, w, f)).astype(dtype)
        turned = np.ascontiguousarray(kernel[::-1, ::-1].transpose(0, 1, 3, 2))
        geo = (3, 3, 1, 1, 1, 1, h, w)
        t_fwd = median_time(lambda: fast.conv2d_forward(x, kernel, *geo), repeat)
        # im2col's kernel gradient alone, and what the input gradient adds to it (dcols = dz K^T, col2im)
        t_dk = median_time(lambda: fast.conv2d_backward(x, g.reshape(-1, f), kernel, *geo, input_gradient=False),
                           repeat)
        t_dx = median_time(lambda: fast.conv2d_backward(x, g.reshape(-1, f), kernel, *geo), repeat) - t_dk
        w_fwd, w_dk, w_dx = [], [], []
        for tile in winograd_fast.TILES:
            w_fwd.append(median_time(lambda: winograd_fast.winograd_conv2d_forward(x, kernel, 1, 1, h, w, tile=tile),
                                     repeat))
            w_dk.append(median_time(lambda: winograd_fast.winograd_conv2d_kernel_gradient(
                x, g.reshape(-1, f), 1, 1, h, w, tile=tile), repeat))
            w_dx.append(median_time(lambda: winograd_fast.winograd_conv2d_forward(g, turned, 1, 1, h, w, tile=tile),
                                    repeat))
        tile = winograd_fast.winograd_tile(kernel.shape, (1, 1), (h, w), kernels.get_conv_algorithm())
        tag = f"{h}x{w}x{c} -> {f}" + (f" (Conv2D: F{tile})" if tile else " (Conv2D: im2col)")
        yield f"forward {tag}", t_fwd, *w_fwd
        yield f"input gradient {tag}", t_dx, *w_dx
        yield f"kernel gradient {tag}", t_dk, *w_dk


def training_step_times(dtype, rng, steps):
    """Median time per op of the conv layers' forward and backward, run in sequence."""
    layers = []
    for h, w, c in CONV_LAYERS:
        x = rng.standard_normal((BATCH, h, w, c)).astype(dtype)
        kernel = (rng.standard_normal((9 * c, c)) * 0.05).astype(dtype)
        layers.append((x, kernel, np.zeros(c, dtype), (3, 3, 1, 1, 1, 1, h, w)))
    times = collections.defaultdict(list)

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        times[name].append(time.perf_counter() - t0)
        return out

    def step():
        for x, kernel, bias, geo in layers:
            tag = "x".join(map(str, x.shape[1:]))
            h, w = geo[6], geo[7]
            cols = timed(f"{tag} im2col", lambda: fast.im2col(x, *geo))
            z = timed(f"{tag} matmul cols @ W", lambda: cols @ kernel)
            z = timed(f"{tag} bias_activation relu", lambda: fast.bias_activation(z, bias, "relu"))
            y = z.reshape(BATCH, h, w, -1)
            p, argmax = timed(f"{tag} maxpool2d_forward", lambda: fast.maxpool2d_forward(
                y, 2, 2, 2, 2, 0, 0, h // 2, w // 2))
            dy = timed(f"{tag} maxpool2d_backward", lambda: fast.maxpool2d_backward(
                p, argmax, y.shape, 2, 2, 2, 2, 0, 0))
            dz = timed(f"{tag} activation_backward relu", lambda: fast.activation_backward(
                dy.reshape(z.shape), z, "relu"))
            timed(f"{tag} matmul dW = cols.T @ dz", lambda: cols.T @ dz)
            dcols = timed(f"{tag} matmul dcols = dz @ W.T", lambda: dz @ kernel.T)
            timed(f"{tag} col2im", lambda: fast.col2im(dcols, x.shape, *geo))

    step()
    times.clear()
    totals = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        totals.append(time.perf_counter() - t0)
    per_op = {name: statistics.median(v) for name, v in times.items()}
    return per_op, statistics.median(totals), min(totals)


STARTUP_SCRIPT = """
import time
t0 = time.perf_counter()
import numpy as np
from nnscratch.kernels import fast as k
t1 = time.perf_counter()
x = np.ones((2, 6, 6, 3), np.float32)
cols = k.im2col(x, 3, 3, 1, 1, 1, 1, 6, 6)
k.col2im(cols, x.shape, 3, 3, 1, 1, 1, 1, 6, 6)
y, a = k.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0, 3, 3)
k.maxpool2d_backward(y, a, x.shape, 2, 2, 2, 2, 0, 0)
z = np.ones((4, 3), np.float32)
for act in ("linear", "relu", "sigmoid", "tanh"):
    k.bias_activation(z, np.ones(3, np.float32), act)
    k.activation_backward(z, z, act)
g = np.ones(3, np.float32)
out = k.batchnorm_forward_train(z, g, g, 1e-3)
k.batchnorm_backward(z, out[1], g, out[4])
k.softmax_cross_entropy(z, z)
k.bias_gradient(z)
k.dropout_forward(z, z, 0.5)
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def startup_times():
    """(import s, first-call s) in a fresh process: cold cache, then warm cache."""
    results = []
    with tempfile.TemporaryDirectory() as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", STARTUP_SCRIPT], env=env,
                                 capture_output=True, text=True, check=True).stdout
            results.append(tuple(float(v) for v in out.split()))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--no-kernels", action="store_true", help="skip the kernel-by-kernel table")
    parser.add_argument("--no-step", action="store_true")
    parser.add_argument("--no-winograd", action="store_true")
    parser.add_argument("--no-startup", action="store_true")
    args = parser.parse_args()

    import numba
    env = {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER") if k in os.environ}
    print(f"numpy {np.__version__}, numba {numba.__version__}, numba threads {numba.get_num_threads()}, "
          f"dtype {args.dtype}, batch {BATCH}, env {env or '{}'}")
    print("load average before: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    rng = np.random.default_rng(0)
    if not args.no_kernels:
        print(f"{'kernel':58s} {'numpy ms':>9s} {'numba ms':>9s} {'speed-up':>8s}")
    for label, fn in ([] if args.no_kernels else cases(np.dtype(args.dtype), rng)):
        if label.startswith(("matmul", "  (")):
            t = median_time(lambda: fn(None), args.repeat)
            print(f"{label:58s} {t * 1e3:9.2f}")
            continue
        t_ref = median_time(lambda: fn(reference), args.repeat)
        t_fast = median_time(lambda: fn(fast), args.repeat)
        print(f"{label:58s} {t_ref * 1e3:9.2f} {t_fast * 1e3:9.2f} {t_ref / t_fast:7.1f}x")

    if not args.no_step:
        per_op, total, best = training_step_times(np.dtype(args.dtype), rng, args.steps)
        print(f"\none training step of the 3 conv layers, fast kernels + BLAS, op by op "
              f"(numba threading layer: {numba.threading_layer()}):")
        for name, t in per_op.items():
            print(f"  {name:52s} {t * 1e3:8.2f} ms")
        print(f"  {'sum of op medians':52s} {sum(per_op.values()) * 1e3:8.2f} ms")
        print(f"  {'median step':52s} {total * 1e3:8.2f} ms")
        print(f"  {'fastest step':52s} {best * 1e3:8.2f} ms")

    if not args.no_winograd:
        print(f"\n3x3 convolutions of the deep CNN, fast twins: {'im2col ms':>9s} {'F2 ms':>7s} {'F4 ms':>7s}")
        for label, t_im2col, t_f2, t_f4 in winograd_times(np.dtype(args.dtype), rng, args.repeat):
            print(f"  {label:58s} {t_im2col * 1e3:9.2f} {t_f2 * 1e3:7.2f} {t_f4 * 1e3:7.2f}")

    if not args.no_startup:
        print("\nfresh process, import + first call of every kernel (float32):")
        for name, (t_import, t_call) in zip(("empty cache (compiles)", "cache from the run before"),
                                            startup_times()):
            print(f"  {name:28s} import {t_import:6.2f} s, first calls {t_call:6.2f} s")


    print("load average after: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
