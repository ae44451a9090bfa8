"""Recurrent layers: training step and predict time of nnscratch, PyTorch and Keras, in alternating processes.

A batch of sequences (default 64 x 50 steps x 32 features) goes through one
recurrent layer (LSTM, GRU, SimpleRNN; default 128 units; ``GRU_reset_before``
is a GRU with ``reset_after=False``, Keras 2's variant, which PyTorch does not
have) and a
``Dense(10, softmax)``, trained with Adam on categorical cross-entropy; then
``predict`` of the same batch in one call. Each framework runs in a fresh
process per round (``--rounds``, alternating), timing the median of
``--steps`` calls after 3 warm-up calls, with ``--threads`` threads. The
table gives each framework's median over the rounds with the rounds' range,
in milliseconds, and nnscratch's speed-up against the faster other framework.
This is the table of docs/performance.md, "Recurrent layers".

Usage::

    python benchmarks/bench_recurrent.py                        # all three, if installed
    python benchmarks/bench_recurrent.py --frameworks nnscratch,torch --rounds 5 --json out.json

A framework that is not installed is reported as such and left out, and a
layer a framework does not have (PyTorch's ``GRU_reset_before``) is a blank
cell.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

LAYERS = ("LSTM", "GRU", "SimpleRNN", "GRU_reset_before")
DEFAULT_LAYERS = LAYERS[:3]
FRAMEWORKS = ("nnscratch", "torch", "keras")
CLASSES = 10


def data(batch, steps, features):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, steps, features)).astype(np.float32)
    return x, np.eye(CLASSES, dtype=np.float32)[np.arange(batch) % CLASSES]


def median_ms(call, repeats):
    """Median milliseconds of ``repeats`` calls after 3 warm-up calls."""
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def recurrent_layer(module, kind, units):
    """``kind`` from Keras's or nnscratch's layers, ``units`` wide (``GRU_reset_before``: ``reset_after=False``)."""
    if kind == "GRU_reset_before":
        return module.GRU(units, reset_after=False)
    return getattr(module, kind)(units)


def measure_nnscratch(layers, x, y, units, threads, repeats):
    import numba
    import threadpoolctl

    import nnscratch

    threadpoolctl.threadpool_limits(threads)
    numba.set_num_threads(threads)
    out = {}
    for kind in layers:
        model = nnscratch.Sequential([nnscratch.Input(x.shape[1:]), recurrent_layer(nnscratch.layers, kind, units),
                                      nnscratch.layers.Dense(CLASSES, activation="softmax")])
        model.compile("adam", "categorical_crossentropy")
        out[kind] = (median_ms(lambda: model.train_on_batch(x, y), repeats),
                     median_ms(lambda: model.predict(x, batch_size=len(x), verbose=0), repeats))
    return out


def measure_torch(layers, x, y, units, threads, repeats):
    import torch

    torch.set_num_threads(threads)
    xt, labels = torch.from_numpy(x), torch.from_numpy(y.argmax(1))
    out = {}
    for kind in layers:
        if kind == "GRU_reset_before":      # PyTorch's GRU applies the reset gate after the product only
            continue
        rnn = getattr(torch.nn, "RNN" if kind == "SimpleRNN" else kind)(x.shape[2], units, batch_first=True)
        head = torch.nn.Linear(units, CLASSES)
        optimizer = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), eps=1e-7)

        def step():
            optimizer.zero_grad(set_to_none=True)
            outputs, _ = rnn(xt)
            torch.nn.functional.cross_entropy(head(outputs[:, -1]), labels).backward()   # softmax + CE, fused
            optimizer.step()

        def predict():
            with torch.inference_mode():
                outputs, _ = rnn(xt)
                return torch.softmax(head(outputs[:, -1]), dim=1)

        out[kind] = (median_ms(step, repeats), median_ms(predict, repeats))
    return out


def measure_keras(layers, x, y, units, threads, repeats):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    out = {}
    for kind in layers:
        model = keras.Sequential([keras.Input(x.shape[1:]), recurrent_layer(keras.layers, kind, units),
                                  keras.layers.Dense(CLASSES, activation="softmax")])
        model.compile("adam", "categorical_crossentropy")
        out[kind] = (median_ms(lambda: model.train_on_batch(x, y), repeats),
                     median_ms(lambda: model.predict(x, batch_size=len(x), verbose=0), repeats))
    return out


MEASURE = {"nnscratch": measure_nnscratch, "torch": measure_torch, "keras": measure_keras}


def worker(args):
    """Measure one framework in this process and print ``{layer: [train ms, predict ms]}`` as JSON."""
    x, y = data(args.batch, args.timesteps, args.features)
    print(json.dumps(MEASURE[args.worker](args.layers, x, y, args.units, args.threads, args.steps)))


def run_round(framework, args):
    """One fresh process for ``framework``; its results, or None when the framework is not installed."""
    command = [sys.executable, __file__, "--worker", framework, "--layers", ",".join(args.layers),
               "--units", str(args.units), "--batch", str(args.batch), "--timesteps", str(args.timesteps),
               "--features", str(args.features), "--threads", str(args.threads), "--steps", str(args.steps)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        if "ModuleNotFoundError" in done.stderr:
            return None
        raise RuntimeError(f"{framework} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args, log=print):
    """``{framework: {layer: {"train": [ms per round], "predict": [...]}}}``, frameworks alternating each round."""
    results = {name: {kind: {"train": [], "predict": []} for kind in args.layers} for name in args.frameworks}
    missing = set()
    for round_ in range(args.rounds):
        for name in args.frameworks:
            if name in missing:
                continue
            figures = run_round(name, args)
            if figures is None:
                missing.add(name)
                log(f"{name}: not installed")
                continue
            for kind, (train, predict) in figures.items():
                results[name][kind]["train"].append(train)
                results[name][kind]["predict"].append(predict)
            log(f"round {round_ + 1}: {name} " + ", ".join(f"{k} {t:.1f}/{p:.2f} ms" for k, (t, p) in figures.items()))
    return {name: value for name, value in results.items() if name not in missing}


def markdown(results, layers):
    """The table: median (range) ms per framework, and nnscratch's speed-up against the faster other one."""
    others = [name for name in results if name != "nnscratch"]
    lines = ["| layer, what | " + " | ".join(results) + " | nnscratch vs faster other |",
             "|---" * (len(results) + 2) + "|"]
    for kind in layers:
        for what in ("train", "predict"):
            cells, medians = [], {}
            for name in results:
                values = results[name][kind][what]
                if not values:                  # a layer this framework does not have
                    cells.append("")
                    continue
                medians[name] = statistics.median(values)
                cells.append(f"{medians[name]:.1f} ({min(values):.1f}-{max(values):.1f})")
            ratio = ""
            timed_others = [o for o in others if o in medians]
            if "nnscratch" in medians and timed_others:
                ratio = f"{min(medians[o] for o in timed_others) / medians['nnscratch']:.2f}x"
            lines.append(f"| {kind}, {what} ms | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                        help="comma-separated, from " + ", ".join(FRAMEWORKS))
    parser.add_argument("--layers", default=",".join(DEFAULT_LAYERS), help="comma-separated, from " + ", ".join(LAYERS))
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=50)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30, help="timed calls per measurement (after 3 warm-up calls)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the per-round figures here")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.frameworks = [name.strip() for name in args.frameworks.split(",") if name.strip()]
    args.layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    for name in args.frameworks:
        if name not in FRAMEWORKS:
            parser.error(f"unknown framework {name!r}; expected some of {FRAMEWORKS}")
    for name in args.layers:
        if name not in LAYERS:
            parser.error(f"unknown layer {name!r}; expected some of {LAYERS}")
    for name in ("units", "batch", "timesteps", "features", "threads", "steps", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    return args


def main(argv=None):
    args = parse(argv)
    if args.worker:
        worker(args)
        return
    results = run(args)
    print(markdown(results, args.layers))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": {k: v for k, v in vars(args).items() if k not in ("json", "worker")},
                       "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
