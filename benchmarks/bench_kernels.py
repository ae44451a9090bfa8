"""Time the NumPy reference kernels against their Numba twins.

Shapes are those of the deep CNN at batch 64: 3x3 "same" convolutions on
28x28x32, 14x14x64 and 7x7x128 feature maps, 2x2 max pooling, batch
normalisation on (64*28*28, 32). For each convolution the matmul of the
im2col matrix with the kernel is timed too, to show where the time goes.

Also measures the start-up cost of the Numba twin: import plus the first call
of every kernel in a fresh process, once with an empty Numba cache (compile)
and once more with the cache that run left behind (``cache=True``).

Usage::

    python benchmarks/bench_kernels.py [--repeat 7] [--dtype float32] [--no-startup]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from nnscratch.kernels import fast, reference

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
        yield f"matmul dW = cols.T @ dy", lambda k, a=cols, b=rng.standard_normal((cols.shape[0], c)).astype(dtype): a.T @ b
        yield f"matmul dcols = dy @ W.T", lambda k, a=rng.standard_normal((cols.shape[0], c)).astype(dtype), b=kernel: a @ b.T
        z = rng.standard_normal((BATCH * h * w, c)).astype(dtype)
        b = rng.standard_normal(c).astype(dtype)
        yield f"bias_activation relu {z.shape}", lambda k, z=z, b=b: k.bias_activation(z.copy(), b, "relu")
        yield f"  (copy of z, included above)", lambda k, z=z: z.copy()
        y = np.maximum(z, 0)
        yield f"activation_backward relu {z.shape}", lambda k, g=z, y=y: k.activation_backward(g, y, "relu")
    for h, w, c in CONV_LAYERS[:2]:
        x = rng.standard_normal((BATCH, h, w, c)).astype(dtype)
        geo = (2, 2, 2, 2, 0, 0, h // 2, w // 2)
        _, argmax = reference.maxpool2d_forward(x, *geo)
        gy = rng.standard_normal(argmax.shape).astype(dtype)
        yield f"maxpool2d_forward 2x2 {h}x{w}x{c}", lambda k, x=x, geo=geo: k.maxpool2d_forward(x, *geo)
        yield f"maxpool2d_backward 2x2 {h}x{w}x{c}", lambda k, gy=gy, a=argmax, s=x.shape, geo=geo: k.maxpool2d_backward(gy, a, s, *geo[:6])
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
    parser.add_argument("--no-startup", action="store_true")
    args = parser.parse_args()

    import numba
    print(f"numpy {np.__version__}, numba {numba.__version__}, "
          f"numba threads {numba.get_num_threads()}, dtype {args.dtype}, batch {BATCH}")
    rng = np.random.default_rng(0)
    print(f"{'kernel':58s} {'numpy ms':>9s} {'numba ms':>9s} {'speed-up':>8s}")
    for label, fn in cases(np.dtype(args.dtype), rng):
        if label.startswith(("matmul", "  (")):
            t = median_time(lambda: fn(None), args.repeat)
            print(f"{label:58s} {t * 1e3:9.2f}")
            continue
        t_ref = median_time(lambda: fn(reference), args.repeat)
        t_fast = median_time(lambda: fn(fast), args.repeat)
        print(f"{label:58s} {t_ref * 1e3:9.2f} {t_fast * 1e3:9.2f} {t_ref / t_fast:7.1f}x")

    if not args.no_startup:
        print("\nfresh process, import + first call of every kernel (float32):")
        for name, (t_import, t_call) in zip(("empty cache (compiles)", "cache from the run before"),
                                            startup_times()):
            print(f"  {name:28s} import {t_import:6.2f} s, first calls {t_call:6.2f} s")


if __name__ == "__main__":
    main()
