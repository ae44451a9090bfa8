"""Images per second of the augmentation kernels on 28x28 MNIST-sized batches.

Run from the repository root::

    python benchmarks/bench_augment.py [--images 10000] [--repeats 5]

It times ``affine_transform_batch`` of both twins on the same random matrices
(rotation 10 degrees, zoom 0.1, shifts 0.1, as in the MNIST study), and the
whole ``ImageDataGenerator.transform`` (sampling + matrices + kernel) with the
Numba twin. The first Numba call (compilation) is not timed.
"""

import argparse
import os
import time

import numpy as np

from nnscratch import kernels
from nnscratch.preprocessing import ImageDataGenerator

__all__ = ["best_rate", "main"]


def best_rate(function, n_images, repeats):
    """Best of ``repeats`` timings of ``function()``, as images per second."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return n_images / best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.random((args.images, 28, 28, 1)).astype(np.float32)
    gen = ImageDataGenerator(rotation_range=10, zoom_range=0.1, width_shift_range=0.1,
                             height_shift_range=0.1, seed=0)
    matrices = gen.random_matrices(args.images, 28, 28)
    fast, reference = kernels.image_backend("numba"), kernels.image_backend("numpy")
    fast.affine_transform_batch(x[:2], matrices[:2], 0, 0.0)  # compile (or load the cache)

    print(f"{args.images} images of 28x28x1 float32, {os.cpu_count()} CPU cores, best of {args.repeats}")
    rates = {
        "numba kernel": best_rate(lambda: fast.affine_transform_batch(x, matrices, 0, 0.0),
                                  args.images, args.repeats),
        "numpy reference kernel": best_rate(
            lambda: reference.affine_transform_batch(x, matrices, 0, 0.0), args.images, args.repeats),
    }
    kernels.set_backend("numba")
    rates["ImageDataGenerator.transform (numba)"] = best_rate(lambda: gen.transform(x),
                                                             args.images, args.repeats)
    for name, rate in rates.items():
        print(f"  {name:38s} {rate:12,.0f} images/s")
    print(f"  numba / numpy speed-up: {rates['numba kernel'] / rates['numpy reference kernel']:.1f}x")


if __name__ == "__main__":
    main()
