"""Basic MLP of the study: Flatten, Dense(n, relu), Dense(10, softmax), sweeping n = 128, 256, 512.

Each width trains on one augmented stream (batch 64, up to 20 epochs, Adam 1e-3,
EarlyStopping on val_accuracy restoring the best weights, ReduceLROnPlateau on
val_loss), validating on the last 10% of the training images. The width with
the highest validation accuracy (a tie keeps the smaller) is evaluated on the
test set. The widths train in parallel with ``--jobs`` or on a Dask cluster.

    python experiments/basic_mlp.py                  # the study (3 widths, one after the other)
    python experiments/basic_mlp.py --jobs 3         # the widths side by side
    python experiments/basic_mlp.py --quick          # smoke test, seconds
"""

import sys
import time

import common
from nnscratch import zoo
from nnscratch.sklearn import build_model

NAME = "basic_mlp"
WIDTHS = (128, 256, 512)


def train_width(units, x_train, y_train, x_val, y_val, epochs, batch_size, seed, verbose):
    """Train one width; return its weights and training summary (runs in a joblib/Dask worker)."""
    model = build_model(zoo.basic_mlp, seed, units=units)
    run = common.fit_model(model, common.Split(x_train, y_train), common.Split(x_val, y_val), epochs=epochs,
                           batch_size=batch_size, seed=seed, augment=True, callbacks=common.study_callbacks(),
                           verbose=verbose)
    return {"units": units, "weights": model.get_weights(), "history": run.history, "params": model.count_params(),
            **run.summary()}


def best_width(results):
    """The entry with the highest best validation accuracy; a tie keeps the smaller width."""
    return max(sorted(results, key=lambda r: r["units"]), key=lambda r: r["best_val_accuracy"])


def sweep_figure(results, quick=False):
    """Validation accuracy per epoch of every width, with integer epoch ticks."""
    plt = common._pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for result in results:
        values = result["history"]["val_accuracy"]
        ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=f"n = {result['units']}")
    ax.set_xlabel("epoch")
    common.integer_ticks(ax.xaxis)
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"Basic MLP width sweep\n{common.QUICK_TAG}" if quick else "Basic MLP width sweep")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_sweep(path, results, quick=False):
    """sweep.png: :func:`sweep_figure` saved to ``path``."""
    common.save_figure(sweep_figure(results, quick), path)


def parser():
    epilog = common.help_epilog(
        "56 s with --jobs 3 on 2 cores (the three widths side by side)",
        f"{common.COMMON_OUTPUTS}, sweep.png, history_units<n>.csv",
        ["python experiments/basic_mlp.py --jobs 3", "python experiments/basic_mlp.py --quick"])
    p = common.build_parser(NAME, __doc__.splitlines()[0], parallel=True, epilog=epilog)
    p.add_argument("--widths", type=common.positive_int, nargs="+", default=list(WIDTHS),
                   help="hidden widths to sweep (default 128 256 512)")
    return p


def main(argv=None):
    args = common.parse_args(parser(), argv)
    start = time.perf_counter()
    with common.run_context(args):
        data = common.load_mnist(args, validation="last")
        verbose = common.worker_verbose(args)
        tasks = [(units, data.train.x, data.train.y, data.val.x, data.val.y, args.epochs, args.batch_size,
                  args.seed, verbose) for units in args.widths]
        results, backend = common.parallel_map(train_width, tasks, args)
        best = best_width(results)
        model = build_model(zoo.basic_mlp, args.seed, units=best["units"])
        model.set_weights(best["weights"])
        evaluation = common.evaluate_model(model, data.test)
        sweep = [{key: value for key, value in result.items() if key not in ("weights", "history")}
                 for result in results]
        run = common.TrainingRun(best["history"], best["epochs_run"], best["best_epoch"],
                                 best["restored_best_weights"], best["stopped_early"], best["train_time_s"])
        metrics = common.collect_metrics(
            args, model, evaluation, run, wall_time_s=time.perf_counter() - start,
            description="Flatten, Dense(n, relu), Dense(10, softmax); the best n on validation",
            augmentation=common.AUGMENTATION, callbacks=True, n_train=len(data.train), n_val=len(data.val),
            best_units=best["units"], sweep=sweep, parallel_backend=backend, jobs=args.jobs)
        out = common.write_outputs(args.out, metrics, best["history"])
        for result in results:
            common.write_history(out / f"history_units{result['units']}.csv", result["history"])
        plot_sweep(out / "sweep.png", results, quick=args.quick)
    for entry in sweep:
        print(f"  n = {entry['units']}: best val accuracy {entry['best_val_accuracy']:.4f} "
              f"(epoch {entry['best_epoch']} of {entry['epochs_run']})")
    common.report(metrics, out)
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
