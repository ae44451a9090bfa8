"""nnscratch's training (or inference) speed under thread settings, alone and beside a busy process.

Each setting (environment variables, e.g. ``GOMP_SPINCOUNT=2000``) gets its
own worker process, which builds the model once; the parent then alternates
the workers, round after round, once with the machine to themselves and once
beside a busy Python loop pinned to the last core (``taskset``), and prints
the median img/s of each setting in each condition. This is how
docs/kernels.md (section 5) chose ``thread_policy.GOMP_SPINCOUNT``.

Usage::

    python benchmarks/bench_contention.py --model simple_cnn --rounds 8 \\
        GOMP_SPINCOUNT=20000 GOMP_SPINCOUNT=2000 GOMP_SPINCOUNT=0
    python benchmarks/bench_contention.py --model deep_cnn --infer GOMP_SPINCOUNT=20000 GOMP_SPINCOUNT=2000

A setting is ``NAME=VALUE[,NAME=VALUE...]``; ``-`` is the environment as it is.
Needs Linux's ``taskset`` for the busy process. The busy process takes one core
whatever the machine, so the comparison means most with ``--threads`` equal to
the number of cores (the default, 2, on the 2-core machines of docs/performance.md).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

import bench_frameworks as bf

BUSY_LOOP = "while True: pass"


def worker_main(model, threads):
    """Build ``model``, then answer each line of stdin (seconds, or ``infer``) with one img/s figure."""
    runner = bf.NnscratchRunner(threads)
    net = runner.build(model)
    bf.time_training(runner, net, 64, 3, 2)  # compile and warm up
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "infer":
            speed = bf.time_inference(runner, net, passes=3)
        else:
            speed, _ = bf.time_training(runner, net, 64, 8, 2, float(line))
        print(f"{speed:.3f}", flush=True)


def parse_setting(setting):
    """``"A=1,B=2"`` -> ``{"A": "1", "B": "2"}``; ``"-"`` -> ``{}``."""
    if setting == "-":
        return {}
    pairs = [item.split("=", 1) for item in setting.split(",")]
    if any(len(pair) != 2 or not pair[0] for pair in pairs):
        raise ValueError(f"a setting is NAME=VALUE[,NAME=VALUE...] or -, got {setting!r}")
    return dict(pairs)


def start_worker(setting, model, threads):
    env = bf.worker_env(threads, parse_setting(setting))
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", "--model", model,
                             "--threads", str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"worker for {setting!r} failed to start (exit code {proc.wait()})")
    return proc


def busy_process():
    """A Python loop pinned to the last core, as another program would keep it busy."""
    core = str((os.cpu_count() or 1) - 1)
    return subprocess.Popen(["taskset", "-c", core, sys.executable, "-c", BUSY_LOOP])


def run(settings, model, rounds, seconds, infer, threads, settle=0.3, log=print):
    workers = {s: start_worker(s, model, threads) for s in settings}
    results = {(s, busy): [] for s in settings for busy in (False, True)}
    try:
        for r in range(rounds):
            for busy in (False, True):
                other = busy_process() if busy else None
                try:
                    for s in settings if r % 2 == 0 else settings[::-1]:
                        time.sleep(settle)
                        workers[s].stdin.write(("infer" if infer else str(seconds)) + "\n")
                        workers[s].stdin.flush()
                        results[(s, busy)].append(float(workers[s].stdout.readline()))
                finally:
                    if other is not None:
                        other.kill()
                        other.wait()
            log(f"round {r + 1}/{rounds} done")
    finally:
        for proc in workers.values():
            proc.stdin.close()
            proc.wait(timeout=60)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", default=["-"])
    parser.add_argument("--model", default="simple_cnn", choices=["simple_cnn", "deep_cnn", "mlp"])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.5, help="timed training per measurement (at least)")
    parser.add_argument("--infer", action="store_true", help="time predict (1,000 images, batches of 100) instead")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.model, args.threads)
    if shutil.which("taskset") is None:
        parser.error("needs taskset (util-linux) to pin the busy process")
    for s in args.settings:
        parse_setting(s)
    results = run(args.settings, args.model, args.rounds, args.seconds, args.infer, args.threads)
    what = "inference" if args.infer else "training"
    print(f"\n{args.model} {what}, img/s: median (lowest-highest) over {args.rounds} rounds")
    print("| setting | alone | beside a busy process |\n|---|---|---|")
    for s in args.settings:
        cells = [results[(s, busy)] for busy in (False, True)]
        print(f"| {s} | " + " | ".join(f"{statistics.median(v):,.0f} ({min(v):,.0f}-{max(v):,.0f})" for v in cells)
              + " |")


if __name__ == "__main__":
    main()
