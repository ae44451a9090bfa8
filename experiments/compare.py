"""Compare every model of the study: one table (markdown and CSV) and one chart.

Reads every ``<results>/<name>/metrics.json`` (quick runs are left out unless
``--include-quick``) and writes ``comparison.md``, ``comparison.csv`` and
``comparison.png`` (test accuracy, errors, prediction time of the test images,
parameters) to ``--out`` (default: the results folder). Quick runs are marked
"(quick)" in the table and the chart: their numbers are not comparable to the study.

    python experiments/compare.py
    python experiments/compare.py --results results/quick --include-quick
"""

import argparse
import csv
import sys
from pathlib import Path

import common

COLUMNS = (
    # (csv key, markdown header)
    ("experiment", "model"),
    ("test_accuracy", "test accuracy"),
    ("published_test_accuracy", "published"),
    ("errors", "errors"),
    ("n_test", "test images"),
    ("test_loss", "test loss"),
    ("f1_macro", "macro F1"),
    ("prediction_time_s", "prediction time (s)"),
    ("published_prediction_time_s", "published prediction time (s)"),
    ("params", "parameters"),
    ("epochs_run", "epochs"),
    ("best_epoch", "best epoch"),
    ("wall_time_s", "wall time (s)"),
    ("kfold_mean_accuracy", "k-fold mean"),
    ("kfold_std_accuracy", "k-fold std"),
)


def rows_from(found):
    """One dict per experiment with the keys of :data:`COLUMNS`."""
    rows = []
    for name, metrics in found.items():
        published = metrics.get("published") or common.PUBLISHED.get(name, {})
        row = {key: metrics.get(key) for key, _ in COLUMNS}
        row["experiment"] = name
        row["published_test_accuracy"] = published.get("test_accuracy")
        row["published_prediction_time_s"] = published.get("prediction_time_s")
        row["quick"] = bool(metrics.get("quick"))
        rows.append(row)
    return rows


def row_label(row):
    """The experiment's name, with "(quick)" for a ``--quick`` run."""
    return f"{row['experiment']} (quick)" if row.get("quick") else row["experiment"]


def markdown(rows) -> str:
    def cell(key, value):
        if value is None:
            return ""
        if key in ("test_accuracy", "published_test_accuracy", "kfold_mean_accuracy", "kfold_std_accuracy",
                   "f1_macro"):
            return common.fmt_percent(value)
        if key in ("errors", "n_test", "params", "epochs_run", "best_epoch"):
            return common.fmt_int(value)
        if key == "wall_time_s":
            return common.fmt_seconds(value)
        if key.endswith("time_s"):
            return f"{value:.3f}"
        if key == "test_loss":
            return f"{value:.4f}"
        return str(value)

    def cells(row):
        return [row_label(row) if key == "experiment" else cell(key, row[key]) for key, _ in COLUMNS]

    return common.markdown_table([header for _, header in COLUMNS], [cells(row) for row in rows])


def write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[key for key, _ in COLUMNS] + ["quick"])
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if value is None else value for key, value in row.items()})


def chart_title(rows):
    """The chart's title; it warns when quick runs are among the rows."""
    title = "nnscratch reproduction of the MNIST study"
    if any(row.get("quick") for row in rows):
        title += f"\n(quick) = {common.QUICK_TAG}"
    return title


def plot(path, rows):
    """Four bar charts: test accuracy (with the published value), errors, prediction time, parameters."""
    plt = common._pyplot()
    import numpy as np

    names = [row_label(row) for row in rows]
    positions = np.arange(len(rows))
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    panels = [
        ("test_accuracy", "Test accuracy (%)", 100, "published_test_accuracy"),
        ("errors", "Test errors", 1, None),
        ("prediction_time_s", "Prediction time of the test images (s)", 1, "published_prediction_time_s"),
        ("params", "Parameters", 1, None),
    ]
    for ax, (key, title, factor, published_key) in zip(axes.flat, panels):
        values = np.array([np.nan if row[key] is None else factor * row[key] for row in rows], dtype=float)
        width = 0.4 if published_key else 0.7
        offset = width / 2 if published_key else 0.0
        bars = ax.bar(positions - offset, values, width, label="nnscratch")
        if published_key:
            published = np.array([np.nan if row[published_key] is None else factor * row[published_key]
                                  for row in rows], dtype=float)
            ax.bar(positions + offset, published, width, label="published (Keras)", color="tab:orange")
            ax.legend(fontsize=8)
        for bar, value in zip(bars, values):
            if np.isfinite(value):
                label = f"{value:.2f}" if key == "test_accuracy" else (
                    f"{value:.3g}" if key == "prediction_time_s" else f"{value:,.0f}")
                ax.annotate(label, (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=7)
        if key == "test_accuracy" and np.isfinite(values).any():
            low = np.nanmin(np.concatenate([values, published])) if published_key else np.nanmin(values)
            ax.set_ylim(max(0, low - 1), 100.2)
        if key in ("params", "prediction_time_s") and np.nanmax(values, initial=0) > 0:
            ax.set_yscale("log")
        ax.set_xticks(positions)
        ax.set_xticklabels(names, rotation=25, ha="right", fontsize=8)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(chart_title(rows))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def quick_note(rows):
    """A warning paragraph for comparison.md when quick runs are among the rows, else ""."""
    if not any(row["quick"] for row in rows):
        return ""
    return (f"**Rows marked (quick) are --quick runs, a {common.QUICK_TAG}: a tiny subset and 1 epoch.**"
            "\n\n")


def parser():
    epilog = ("typical run time: seconds\n"
              "writes to --out: comparison.md, comparison.csv, comparison.png\n"
              "examples:\n"
              "  python experiments/compare.py\n"
              "  python experiments/compare.py --results results/quick --include-quick --out /tmp/compare")
    p = argparse.ArgumentParser(prog="experiments/compare.py", description=__doc__.splitlines()[0], epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=common.RESULTS, help="folder of <name>/metrics.json (default results/)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: the results folder)")
    p.add_argument("--include-quick", action="store_true", help="also list --quick runs")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    found = common.find_metrics(args.results, include_quick=args.include_quick)
    if not found:
        raise SystemExit(f"no metrics.json found under {args.results}/*/ (run the experiments first"
                         + ("" if args.include_quick else ", or pass --include-quick for quick runs") + ")")
    out = Path(args.out or args.results)
    out.mkdir(parents=True, exist_ok=True)
    rows = rows_from(found)
    table = markdown(rows)
    (out / "comparison.md").write_text(
        "# Model comparison\n\nGenerated by `experiments/compare.py` from "
        f"`{args.results}/*/metrics.json`. Prediction time: `model.predict` of the whole test set "
        f"(batch {common.PREDICT_BATCH_SIZE}).\n\n" + quick_note(rows) + table + "\n")
    write_csv(out / "comparison.csv", rows)
    plot(out / "comparison.png", rows)
    print(table)
    print(f"wrote {out / 'comparison.md'}, {out / 'comparison.csv'} and {out / 'comparison.png'}")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
