"""Run one experiment over several seeds and report the spread of its test accuracy.

The study reports one run per model, and so do the other scripts (seed 42). A
miss of a few tenths of a point means little until we know how far another
seed moves the result: this script measures that, without choosing anything
on the test set (the reported figure stays the seed-42 run).

Each seed runs the experiment's own script in a subprocess, one BLAS/Numba
thread each (``--threads``), ``--jobs`` at a time, into ``<out>/seed_<S>/``; then
``<out>/spread.json`` gathers the per-seed test accuracies with their mean,
population std, min and max. ``make_results.py`` turns every
``results/seed_spread/*/spread.json`` into a section of docs/results.md.

    python experiments/seed_spread.py optimized_mlp --seeds 1 2 3 4 5 6 7 8 --jobs 2
    python experiments/seed_spread.py basic_mlp --seeds 1 2 3 4 --jobs 2 -- --widths 512
    python experiments/seed_spread.py uci_digits_kfold --seeds 1 2 3 4 5 6 7 8 --jobs 2 -- --skip-kfold
    python experiments/seed_spread.py uci_digits_kfold --name uci_split42 --seeds 1 2 3 4 5 6 7 8 \
        --jobs 2 -- --skip-kfold --split-seed 42

``--name`` (default: the experiment) names the folder, so that several
spreads of one experiment (with other options) can sit side by side.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import common  # first: it imports nnscratch, which sets up OpenBLAS before NumPy loads it
import joblib
import numpy as np

HERE = Path(__file__).resolve().parent
SCRIPTS = {  # experiment name -> (script, arguments that select it)
    "basic_mlp": ("basic_mlp.py", []),
    "optimized_mlp": ("optimized_mlp.py", []),
    "deep_cnn": ("deep_cnn.py", []),
    "simple_cnn_three_conv": ("simple_cnn.py", ["--variant", "three-conv"]),
    "simple_cnn_two_conv": ("simple_cnn.py", ["--variant", "two-conv"]),
    "uci_digits_kfold": ("uci_digits_kfold.py", []),
    "uci_digits_kfold_scaled": ("uci_digits_kfold.py", ["--scale"]),
}


def run_seed(experiment, seed, out, extra, threads=1, resume=False):
    """Run the experiment's script with ``--seed seed``; return its metrics.json.

    With ``resume``, a seed whose folder already holds a metrics.json (from an
    interrupted spread) is read instead of run again.
    """
    script, selector = SCRIPTS[experiment]
    folder = out / f"seed_{seed}"
    if resume and (folder / "metrics.json").exists():
        return common.read_json(folder / "metrics.json")
    command = [sys.executable, str(HERE / script), *selector, "--seed", str(seed), "--out", str(folder),
               "--threads", str(threads), "--verbose", "0", *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"seed {seed} failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
    return common.read_json(folder / "metrics.json")


def summarise(experiment, seeds, runs, extra, wall_time_s, name=None) -> dict:
    """The spread record: per-seed values and their mean, population std, min and max."""
    def stats(key):
        values = [run.get(key) for run in runs]
        if any(v is None for v in values):
            return None
        array = np.asarray(values, dtype=np.float64)
        return {"values": array.tolist(), "mean": float(array.mean()), "std": float(array.std(ddof=0)),
                "min": float(array.min()), "max": float(array.max())}

    first = runs[0]
    return {
        "name": name or experiment,
        "experiment": experiment,
        "seeds": list(seeds),
        "extra_args": list(extra),
        "quick": bool(first.get("quick")),
        "n_test": first.get("n_test"),
        "test_accuracy": stats("test_accuracy"),
        "kfold_mean_accuracy": stats("kfold_mean_accuracy"),
        "best_val_accuracy": stats("best_val_accuracy"),
        "epochs_run": [run.get("epochs_run") for run in runs],
        "wall_time_s": wall_time_s,
        "machine": first.get("machine"),
        "versions": first.get("versions"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


EPILOG = """\
Arguments after `--` go to the experiment's script, --quick included:
  python experiments/seed_spread.py optimized_mlp --seeds 1 2 --out /tmp/spread -- --quick
typical run time: the number of seeds times one run of the experiment (see its --help), --jobs at a time
writes to --out: spread.json, and seed_<S>/ with each seed's outputs
examples:
  python experiments/seed_spread.py optimized_mlp --seeds 1 2 3 4 5 6 7 8 --jobs 2
  python experiments/seed_spread.py uci_digits_kfold --seeds 1 2 3 4 --jobs 2 -- --skip-kfold"""


def parser():
    p = argparse.ArgumentParser(prog="experiments/seed_spread.py", description=__doc__.splitlines()[0],
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=sorted(SCRIPTS))
    p.add_argument("--seeds", type=int, nargs="+", required=True, help="the seeds to run")
    p.add_argument("--jobs", type=int, default=1, help="seeds run at the same time (default 1)")
    p.add_argument("--threads", type=int, default=1, help="BLAS/Numba threads of each run (default 1)")
    p.add_argument("--resume", action="store_true",
                   help="reuse the seeds whose seed_<S>/metrics.json exists (an interrupted spread)")
    p.add_argument("--name", default=None, help="name of this spread (default: the experiment)")
    p.add_argument("--out", type=Path, default=None,
                   help="default results/seed_spread/<name>/, or results/quick/seed_spread/<name>/ when the "
                        "script's arguments after `--` include --quick")
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    if "--quick" in argv:
        parser().error("--quick is an option of the experiment's script: put it after `--`, "
                       "e.g. seed_spread.py optimized_mlp --seeds 1 2 -- --quick")
    args = parser().parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser().error(f"--seeds must be distinct, got {args.seeds}")
    if args.jobs < 1 or args.threads < 1:
        parser().error(f"--jobs and --threads must be positive integers, got {args.jobs} and {args.threads}")
    base = common.RESULTS / "quick" if "--quick" in extra else common.RESULTS
    name = args.name or args.experiment
    if not name.replace("_", "").replace("-", "").isalnum():
        parser().error(f"--name must be letters, digits, '_' or '-', got {name!r}")
    out = args.out or base / "seed_spread" / name
    out.mkdir(parents=True, exist_ok=True)
    common.first_run_notice()  # the seeds' scripts run silently: say here why the first ones are slow
    start = time.perf_counter()
    runs = joblib.Parallel(n_jobs=min(args.jobs, len(args.seeds)), prefer="threads")(
        joblib.delayed(run_seed)(args.experiment, seed, out, extra, args.threads, args.resume) for seed in args.seeds)
    record = summarise(args.experiment, args.seeds, runs, extra, time.perf_counter() - start, name=name)
    common.write_json(out / "spread.json", record)
    acc = record["test_accuracy"]
    print(f"{name} over seeds {args.seeds}: test accuracy mean {common.fmt_percent(acc['mean'])} "
          f"(std {100 * acc['std']:.2f} points), min {common.fmt_percent(acc['min'])}, "
          f"max {common.fmt_percent(acc['max'])}; wrote {out / 'spread.json'}"
          + (f" [{common.QUICK_TAG}]" if record["quick"] else ""))
    return record


if __name__ == "__main__":
    main()
