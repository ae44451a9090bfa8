"""UCI 8x8 digits CNN (nnscratch.zoo.uci_cnn): an 80/20 split evaluation, then 5-fold cross-validation.

All 5,620 rows of UCI optdigits as (8, 8, 1) images, with the raw pixel counts
0..16 as the tutorial fed them (``--scale`` divides by 16 instead; run both).
Adam 1e-3, 100 epochs, batch 128, no validation, no callbacks.

1. ``train_test_split(test_size=0.2, random_state=split_seed)`` (not
   stratified; 4,496 / 1,124 rows): train, then report test accuracy and
   macro precision/recall/F1.
2. ``KFold(5, shuffle=True, random_state=split_seed)`` on all rows, a fresh model
   per fold, through scikit-learn's ``cross_validate`` and
   :class:`nnscratch.sklearn.NNClassifier`: mean and population std (ddof=0).
   The folds run in parallel with ``--jobs`` or on a Dask cluster with
   ``--dask-scheduler``.

``--split-seed`` (default: ``--seed``) fixes the partition of the rows apart
from the models' seed: ``--seed 7 --split-seed 42`` trains other initial
weights on the study's split.

    python experiments/uci_digits_kfold.py --jobs 2
    python experiments/uci_digits_kfold.py --jobs 2 --scale
    python experiments/uci_digits_kfold.py --dask-scheduler tcp://10.0.0.5:8786
"""

import sys
import time

import common  # first: it imports nnscratch, which sets up OpenBLAS before NumPy loads it
import numpy as np
from nnscratch import zoo
from nnscratch.sklearn import NNClassifier

NAME = "uci_digits_kfold"
QUICK_ROWS = 1000
SCORING = ("accuracy", "precision_macro", "recall_macro", "f1_macro")


def parser():
    epilog = common.help_epilog(
        "1.5 min with --jobs 2 on 2 cores (the split, then the 5 folds side by side in 2 processes)",
        f"{common.COMMON_OUTPUTS}, kfold.png",
        ["python experiments/uci_digits_kfold.py --jobs 2", "python experiments/uci_digits_kfold.py --jobs 2 --scale",
         "python experiments/uci_digits_kfold.py --quick --max-folds 2"])
    p = common.build_parser(NAME, __doc__.splitlines()[0], epochs=100, batch_size=128, parallel=True, subset=False,
                            epilog=epilog, out_default=f"results/{NAME}/, results/{NAME}_scaled/ with --scale")
    p.add_argument("--scale", action="store_true",
                   help=f"scale the pixels to [0, 1] (default: raw 0..16); writes to results/{NAME}_scaled/")
    p.add_argument("--folds", type=int, default=5, help="number of folds of the KFold (default 5)")
    p.add_argument("--max-folds", type=common.positive_int, default=None, metavar="M",
                   help="run only the first M folds of the KFold (a smoke test); default all")
    p.add_argument("--rows", type=common.positive_int, default=None, metavar="N",
                   help=f"use only the first N rows (default: all 5,620, leave the option out; "
                        f"{QUICK_ROWS} with --quick)")
    p.add_argument("--skip-kfold", action="store_true", help="only the split evaluation")
    p.add_argument("--split-seed", type=int, default=None,
                   help="random_state of the train/test split and of the KFold (default: --seed)")
    return p


def cross_validation(args, x, y):
    """The k-fold study: one fresh NNClassifier per fold, scored on the held-out fold."""
    from sklearn.model_selection import KFold, cross_validate

    from sklearn.metrics import f1_score, make_scorer, precision_score, recall_score

    scoring = {"accuracy": "accuracy",
               "precision_macro": make_scorer(precision_score, average="macro", zero_division=0),
               "recall_macro": make_scorer(recall_score, average="macro", zero_division=0),
               "f1_macro": make_scorer(f1_score, average="macro", zero_division=0)}
    kfold = KFold(n_splits=args.folds, shuffle=True, random_state=args.split_seed)
    folds = list(kfold.split(x, y))[:args.max_folds]
    estimator = NNClassifier(zoo.uci_cnn, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                             scale=16 if args.scale else None, threads=common.worker_threads(args),
                             verbose=common.worker_verbose(args))
    start = time.perf_counter()
    with common.parallel_context(args.jobs, args.dask_scheduler) as (n_jobs, backend):
        scores = cross_validate(estimator, x, y, cv=folds, scoring=scoring, n_jobs=n_jobs,
                                error_score="raise")
    result = {"n_splits": args.folds, "folds_run": len(folds), "shuffle": True, "random_state": args.split_seed,
              "seed": args.seed, "backend": backend, "jobs": args.jobs,
              "fold_sizes": [int(len(test)) for _, test in folds],
              "std_ddof": 0, "kfold_time_s": time.perf_counter() - start,
              "fit_time_s": [float(t) for t in scores["fit_time"]]}
    for name in SCORING:
        result[name] = common.mean_std(scores[f"test_{name}"])
    return result


def folds_title(kfold, scaled=False, quick=False):
    """The k-fold plot's title: the folds actually run (``--max-folds``), the inputs, the quick-run mark."""
    folds = kfold["folds_run"]
    if folds == kfold["n_splits"]:
        title = f"{folds}-fold cross-validation"
    else:
        title = f"first {folds} of the {kfold['n_splits']} folds"
    title += f", {'scaled [0, 1]' if scaled else 'raw 0..16'} inputs (seed {kfold['seed']})"
    return f"{title}\n{common.QUICK_TAG}" if quick else title


def folds_figure(kfold, scaled=False, quick=False):
    """Bar chart of the fold accuracies with their mean; the legend sits right of the bars, not on them."""
    plt = common._pyplot()
    values = np.asarray(kfold["accuracy"]["values"])
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    ax.bar(np.arange(1, len(values) + 1), 100 * values, color="tab:blue", label="fold")
    ax.axhline(100 * kfold["accuracy"]["mean"], color="black", ls="--",
               label=f"mean {100 * kfold['accuracy']['mean']:.2f}%\n(std {100 * kfold['accuracy']['std']:.2f}%)")
    ax.set_ylim(max(0.0, 100 * values.min() - 2), 100)
    ax.set_xticks(np.arange(1, len(values) + 1))
    ax.set_xlabel("fold")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(folds_title(kfold, scaled, quick), fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, fontsize=8)
    fig.tight_layout()
    return fig


def plot_folds(path, kfold, scaled=False, quick=False):
    """kfold.png: :func:`folds_figure` saved to ``path``."""
    common.save_figure(folds_figure(kfold, scaled, quick), path)


def main(argv=None):
    p = parser()
    scale = p.parse_known_args(argv)[0].scale
    args = common.parse_args(p, argv, out_name=NAME + ("_scaled" if scale else ""))
    if args.rows is None and args.quick:
        args.rows = QUICK_ROWS
    if args.folds < 2:
        p.error("--folds must be at least 2")
    if args.split_seed is None:
        args.split_seed = args.seed
    start = time.perf_counter()
    with common.run_context(args):
        from sklearn.model_selection import train_test_split

        raw_x, y = common.load_optdigits(args, scale=False)
        if args.rows:
            raw_x, y = raw_x[:args.rows], y[:args.rows]
        x = raw_x / np.float32(16) if args.scale else raw_x
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=args.split_seed)
        data = common.Data(common.Split(x_train, y_train), None, common.Split(x_test, y_test),
                           {"dataset": "optdigits"})
        metrics, _ = common.run_single(
            args, build=zoo.uci_cnn, data=data, augment=False, callbacks=None, start=start, show=False,
            extra={"scaled": bool(args.scale), "n_rows": int(len(y)), "split_seed": args.split_seed},
            description=("3 x [Conv same, Pool, Dropout .25], Dense 128/512 sigmoid, Dense 10; "
                         + ("inputs scaled to [0, 1]" if args.scale else "raw 0..16 inputs")))
        kfold = None if args.skip_kfold else cross_validation(args, raw_x, y)
        metrics["kfold"] = kfold
        if kfold:
            metrics.update({"kfold_mean_accuracy": kfold["accuracy"]["mean"],
                            "kfold_std_accuracy": kfold["accuracy"]["std"]})
            plot_folds(args.out / "kfold.png", kfold, scaled=args.scale, quick=args.quick)
        metrics["wall_time_s"] = time.perf_counter() - start
        common.write_json(args.out / "metrics.json", metrics)
    print(common.summary_line(metrics))  # the split evaluation, with the wall time of the whole script
    if kfold:
        print(f"{kfold['folds_run']} of {kfold['n_splits']} folds ({kfold['backend']}): accuracy "
              f"{kfold['accuracy']['mean']:.4f} +- {kfold['accuracy']['std']:.4f} (ddof=0)")
    print(f"outputs in {args.out}")
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
