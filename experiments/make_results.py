"""Write docs/results.md from the experiments' metrics.json files: published figures beside ours.

The document is generated, never typed by hand: rerun this script after new runs.

    python experiments/make_results.py
    python experiments/make_results.py --results results/quick --include-quick --output /tmp/results.md

Without ``--output`` it replaces the repository's docs/results.md, and only
from full runs of every experiment: with one missing (or only quick runs)
it stops and names them, rather than replace the published tables with
"not run" rows. ``--output FILE`` writes whatever was found to FILE, and
``--allow-missing`` lets a partial page replace docs/results.md after all.
"""

import argparse
import sys
from pathlib import Path

import common

ORDER = ("basic_mlp", "optimized_mlp", "deep_cnn", "simple_cnn_three_conv", "simple_cnn_two_conv",
         "uci_digits_kfold", "uci_digits_kfold_scaled")
COMMANDS = {
    "basic_mlp": "python experiments/basic_mlp.py --jobs 3",
    "optimized_mlp": "python experiments/optimized_mlp.py",
    "deep_cnn": "python experiments/deep_cnn.py",
    "simple_cnn_three_conv": "python experiments/simple_cnn.py --variant three-conv",
    "simple_cnn_two_conv": "python experiments/simple_cnn.py --variant two-conv",
    "uci_digits_kfold": "python experiments/uci_digits_kfold.py --jobs 2",
    "uci_digits_kfold_scaled": "python experiments/uci_digits_kfold.py --jobs 2 --scale",
}


def _pct(value):
    return common.fmt_percent(value) or "–"


def _val(metrics):
    """Our validation figure comparable to the published one (best with restored weights, else final)."""
    if metrics.get("restored_best_weights"):
        return metrics.get("best_val_accuracy")
    return metrics.get("final_val_accuracy")


def summary_table(found):
    header = ["experiment", "test acc. (published)", "test acc. (ours)", "errors (pub. / ours)",
              "val. acc. (pub. / ours)", "params (pub. / ours)", "epochs run, best (pub. / ours)",
              "predict test set (pub. / ours)", "wall time"]
    rows = []
    for name in ORDER:
        published = common.PUBLISHED[name]
        m = found.get(name) or {}
        pub_val = published.get("val_accuracy", published.get("final_val_accuracy"))
        pub_time = published.get("prediction_time_s")
        ours_errors = f"{m['errors']:,} of {m['n_test']:,}" if m else "–"
        ours_val = _pct(_val(m)) if m.get("n_val") else "–"
        ours_epochs = f"{m['epochs_run']}, {m.get('best_epoch') or '–'}" if m else "–"
        ours_time = f"{m['prediction_time_s']:.3f} s" if m else "–"
        rows.append([
            name,
            _pct(published.get("test_accuracy")),
            f"**{_pct(m['test_accuracy'])}**" if m else "not run",
            f"{common.fmt_int(published.get('errors')) or '–'} / {ours_errors}",
            f"{_pct(pub_val)} / {ours_val}",
            f"{common.fmt_int(published.get('params'))} / {common.fmt_int(m.get('params')) or '–'}",
            f"{published.get('epochs_run', '–')} / {ours_epochs}",
            f"{'–' if pub_time is None else f'{pub_time:.3f} s'} / {ours_time}",
            common.fmt_seconds(m.get("wall_time_s")) or "–",
        ])
    return common.markdown_table(header, rows)


def sweep_section(metrics):
    if not metrics or not metrics.get("sweep"):
        return ""
    published = common.PUBLISHED["basic_mlp"]["val_accuracy_by_units"]
    rows = [[entry["units"], _pct(published.get(str(entry["units"]))), _pct(entry.get("best_val_accuracy")),
             entry.get("epochs_run"), entry.get("best_epoch"), f"{entry.get('params', 0):,}",
             common.fmt_seconds(entry.get("train_time_s"))]
            for entry in metrics["sweep"]]
    table = common.markdown_table(["width n", "val. acc. (published)", "val. acc. (ours, best epoch)", "epochs",
                                   "best epoch", "params", "train time"], rows)
    return (f"## Basic MLP width sweep\n\nBest width on validation: **n = {metrics['best_units']}** "
            f"(backend: {metrics.get('parallel_backend', 'sequential')}).\n\n{table}\n")


def uci_section(found):
    runs = [(name, found[name]) for name in ("uci_digits_kfold", "uci_digits_kfold_scaled") if name in found]
    if not runs:
        return ""
    published = common.PUBLISHED["uci_digits_kfold"]
    keys = [("test_accuracy", "split: test accuracy"), ("precision_macro", "split: macro precision"),
            ("recall_macro", "split: macro recall"), ("f1_macro", "split: macro F1"),
            ("kfold_mean_accuracy", "k-fold: mean accuracy"), ("kfold_std_accuracy", "k-fold: std (ddof=0)")]
    header = ["figure", "published (raw 0..16)"] + [
        "ours, " + ("scaled [0, 1]" if metrics.get("scaled") else "raw 0..16") for _, metrics in runs]
    rows = [[label, _pct(published.get(key))] + [_pct(metrics.get(key)) for _, metrics in runs]
            for key, label in keys]
    notes = []
    for name, metrics in runs:
        kfold = metrics.get("kfold") or {}
        if kfold:
            notes.append(f"- `{name}`: {kfold['folds_run']} of {kfold['n_splits']} folds, "
                         f"`KFold(shuffle=True, random_state={kfold['random_state']})`, backend {kfold['backend']}; "
                         f"fold accuracies {', '.join(_pct(v) for v in kfold['accuracy']['values'])}.")
    return ("## UCI 8x8 digits\n\nSplit: `train_test_split(test_size=0.2, random_state=seed)` of the 5,620 rows; "
            "k-fold: a fresh model per fold through `nnscratch.sklearn.NNClassifier` and scikit-learn's "
            "`cross_validate`. The published folds were unseeded; ours are seeded as noted.\n\n"
            + common.markdown_table(header, rows) + "\n\n" + "\n".join(notes) + "\n")


def machine_section(found):
    machines, versions, runtimes = {}, {}, {}
    for name, metrics in found.items():
        machine = metrics.get("machine", {})
        key = (machine.get("cpu"), machine.get("cores"), machine.get("memory_gb"), machine.get("platform"))
        machines.setdefault(key, []).append(name)
        versions.setdefault(tuple(sorted(metrics.get("versions", {}).items())), []).append(name)
        runtime = metrics.get("runtime", {})
        runtimes.setdefault((runtime.get("threads"), runtime.get("kernel_backend"),
                             runtime.get("conv_algorithm", "im2col")), []).append(name)
    lines = ["## Machine and software", ""]
    for (cpu, cores, memory, plat), names in machines.items():
        lines.append(f"- {cpu}, {cores} cores, {memory} GB memory, {plat}"
                     + ("" if len(machines) == 1 else f" ({', '.join(names)})"))
    for version, names in versions.items():
        lines.append("- " + ", ".join(f"{k} {v}" for k, v in version)
                     + ("" if len(versions) == 1 else f" ({', '.join(names)})"))
    for (threads, backend, algorithm), names in runtimes.items():
        count = "all the machine's" if threads is None else f"{threads}"
        lines.append(f"- {count} BLAS/Numba thread(s) per process, kernel backend {backend}, "
                     f"3x3 convolutions by {algorithm}"
                     + ("" if len(runtimes) == 1 else f" ({', '.join(names)})"))
    if len(machines) > 1:
        lines.append("- Wall and prediction times compare only within one machine; runs that shared a machine "
                     "at the same time (see each metrics.json) slowed each other down.")
    lines.append("- Published figures: Keras (TensorFlow) on the original authors' machine.")
    return "\n".join(lines) + "\n"


# The targets for the full runs: (experiment, metrics key, label, target)
TARGETS = [
    ("deep_cnn", "test_accuracy", "deep CNN test accuracy", 0.996),
    ("basic_mlp", "test_accuracy", "basic MLP (best width) test accuracy", 0.989),
    ("optimized_mlp", "test_accuracy", "optimized MLP test accuracy", 0.978),
    ("simple_cnn_three_conv", "test_accuracy", "simple CNN test accuracy", 0.989),
    ("uci_digits_kfold", "test_accuracy", "UCI split test accuracy", 0.990),
    ("uci_digits_kfold", "kfold_mean_accuracy", "UCI 5-fold mean accuracy", 0.990),
]

# Why targets are missed: the same text for every run; it names causes we could
# check, not the test set (nothing was tuned on it).
MISSED_TARGETS_NOTE = (
    "Where a target is missed, these are the differences from the study we know of; none was tuned on "
    "the test set. (1) One seed: the study reports one Keras run and so do we (seed 42); the section "
    "*Spread over seeds* below shows how far other seeds move the result, where it was measured. "
    "(2) Augmentation: `ImageDataGenerator` follows Keras's transforms but not its exact sampling "
    "(docs/data.md lists the differences), which matters most for the augmented basic MLP. "
    "(3) Initialisation and Adam follow Keras's formulas, but random streams differ from TensorFlow's. "
    "(4) The UCI split has 1,124 rows: one image is 0.09 points."
)


def find_spreads(results_dir, include_quick=False):
    """``{name: spread record}`` from ``<results_dir>/seed_spread/<name>/spread.json``."""
    spreads = {}
    for path in sorted(Path(results_dir).glob("seed_spread/*/spread.json")):
        record = common.read_json(path)
        if record.get("quick") and not include_quick:
            continue
        spreads[record.get("name", path.parent.name)] = record
    return spreads


def _target_key(name, key):
    return next((t for t in TARGETS if t[0] == name and t[1] == key), None)


def spread_sentence(label, target, record, key):
    """One sentence on where the target lies within a spread over seeds."""
    stats = record.get(key)
    if not stats:
        return None
    values = stats["values"]
    reached = sum(v >= target for v in values)
    options = " ".join(record.get("extra_args") or [])
    seeds = "seed" if len(values) == 1 else "seeds"
    return (f"- {label}: over {len(values)} other {seeds} ({', '.join(map(str, record['seeds']))}"
            + (f"; options `{options}`" if options else "") + ") the result "
            f"ranged {_pct(stats['min'])} – {_pct(stats['max'])}, mean {_pct(stats['mean'])} "
            f"(std {100 * stats['std']:.2f} points); {reached} of {len(values)} reached {_pct(target)}.")


def targets_section(found, spreads=None):
    spreads = spreads or {}
    rows, sentences = [], []
    for name, key, label, target in TARGETS:
        value = found.get(name, {}).get(key)
        if value is None:
            rows.append(f"| {label} | {_pct(target)} | not run | – |")
            continue
        verdict = "met" if value >= target else f"missed by {100 * (target - value):.2f} points"
        rows.append(f"| {label} | {_pct(target)} | {_pct(value)} | {verdict} |")
        if value < target:
            records = [r for r in spreads.values() if r["experiment"] == name and r.get(key)]
            sentences += [spread_sentence(label, target, record, key) for record in records]
            if records and all(v < target for r in records for v in r[key]["values"]):
                count = 1 + sum(len(r[key]["values"]) for r in records)
                sentences.append(f"- {label}: none of the {count} seeds run (42 included) reached "
                                 f"{_pct(target)}, so this miss is not seed noise alone.")
    table = "| target | at least | ours | verdict |\n|---|---|---|---|\n" + "\n".join(rows)
    sentences = [s for s in sentences if s]
    tail = ("\n\nFor the missed targets whose spread over seeds was measured:\n\n" + "\n".join(sentences)
            if sentences else "")
    return f"## Targets of the full runs\n\n{table}\n\n{MISSED_TARGETS_NOTE}{tail}\n"


def spread_section(spreads, found):
    """A table of every measured spread over seeds, beside the seed-42 run."""
    if not spreads:
        return None
    header = ["experiment", "options", "seeds", "test acc. mean ± std", "min – max", "seed 42 (reported)",
              "target", "seeds reaching it", "wall time"]
    rows = []
    for record in spreads.values():
        name = record["experiment"]
        for key, what in (("test_accuracy", ""), ("kfold_mean_accuracy", " (5-fold mean)")):
            stats = record.get(key)
            if not stats:
                continue
            target = _target_key(name, key)
            ours = found.get(name, {}).get(key)
            rows.append([
                name + what,
                " ".join(record.get("extra_args") or []) or "as the study",
                ", ".join(map(str, record["seeds"])),
                f"{_pct(stats['mean'])} ± {100 * stats['std']:.2f}",
                f"{_pct(stats['min'])} – {_pct(stats['max'])}",
                _pct(ours) if ours is not None else "–",
                _pct(target[3]) if target else "–",
                f"{sum(v >= target[3] for v in stats['values'])} of {len(stats['values'])}" if target else "–",
                common.fmt_seconds(record.get("wall_time_s")) or "–",
            ])
    return ("## Spread over seeds\n\nMeasured by `python experiments/seed_spread.py <experiment> --seeds ...`: "
            "the same script with other seeds (weights, shuffles, dropout, augmentation and splits all follow "
            "the seed), one thread per run, several runs side by side. The std is the population std "
            "(ddof=0). The reported figures stay the seed-42 runs above: no seed was chosen by its test "
            "accuracy." + (" The basic MLP's spread trains only the width given in its options, the one the "
                           "seed-42 sweep chose on validation, to save two thirds of the time."
                           if any(r["experiment"] == "basic_mlp" and "--widths" in r.get("extra_args", [])
                                  for r in spreads.values()) else "")
            + (" `--split-seed 42` keeps the study's UCI split and varies only the model's seed (weights, "
               "shuffles, dropout); without it the split follows the seed too."
               if any(r["experiment"].startswith("uci") for r in spreads.values()) else "")
            + "\n\n" + common.markdown_table(header, rows) + "\n")


def document(found, results_dir, spreads=None):
    missing = [name for name in ORDER if name not in found]
    parts = [
        "# Results of the MNIST study, reproduced with nnscratch",
        "",
        "<!-- Generated by experiments/make_results.py from results/*/metrics.json. Do not edit by hand. -->",
        "",
        f"Generated by `python experiments/make_results.py` from `{results_dir}/*/metrics.json`. "
        "Accuracies are on the test set (10,000 MNIST images; 1,124 UCI rows for the split evaluation). "
        "Validation accuracy is the best epoch's where EarlyStopping restored the best weights, else the "
        "final epoch's. Prediction time is `model.predict` of the whole test set with batch 32 (Keras's "
        "default). Wall time covers the whole script: loading, training, evaluation and plots.",
        "",
        *(["**These are `--quick` smoke-test runs on tiny subsets, not the study's numbers.**", ""]
          if any(m.get("quick") for m in found.values()) else []),
        summary_table(found),
        "",
        targets_section(found, spreads),
    ]
    parts += [section for section in (spread_section(spreads, found), sweep_section(found.get("basic_mlp")),
                                      uci_section(found)) if section]
    if "optimized_mlp" in found:
        m = found["optimized_mlp"]
        parts.append(f"## Optimized MLP\n\nSelectKBest kept {m.get('k')} of the {m.get('n_nonconstant_pixels')} "
                     "pixels that vary over the training images (the study: 196 of 717).\n")
    parts.append(machine_section(found) if found else "## Machine and software\n\nNo runs yet.\n")
    if missing:
        parts.append("## Not run yet\n\n" + "\n".join(f"- `{name}`: `{COMMANDS[name]}`" for name in missing) + "\n")
    return "\n".join(parts)


def by_experiment(found):
    """``{experiment: metrics}`` from ``{folder: metrics}``; a folder named as its experiment wins ties."""
    out = {}
    for folder, metrics in found.items():
        name = metrics.get("experiment", folder)
        if name not in out or folder == name:
            out[name] = metrics
    return {name: out[name] for name in ORDER if name in out} | {k: v for k, v in out.items() if k not in ORDER}


def parser():
    p = argparse.ArgumentParser(prog="experiments/make_results.py", description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=common.RESULTS, help="folder of <name>/metrics.json (default results/)")
    p.add_argument("--output", type=Path, default=None,
                   help="where to write (default docs/results.md, only when every experiment has a full run)")
    p.add_argument("--include-quick", action="store_true", help="also use --quick runs")
    p.add_argument("--allow-missing", action="store_true",
                   help="replace docs/results.md even if some experiments have no run in --results")
    return p


def _missing(found, include_quick):
    """The experiments of the study that ``found`` has no run of (any quick run counts as missing without --include-quick)."""
    return [name for name in ORDER if name not in found or (found[name].get("quick") and not include_quick)]


def main(argv=None):
    args = parser().parse_args(argv)
    found = by_experiment(common.find_metrics(args.results, include_quick=args.include_quick))
    if args.output is None:
        missing = _missing(found, include_quick=False)
        if missing and not args.allow_missing:
            sys.exit(f"make_results: no full run of {', '.join(missing)} in {args.results}; docs/results.md was left "
                     "as it is. Run them first (the commands are in experiments/README.md), write a partial page "
                     "elsewhere with --output FILE, or replace docs/results.md anyway with --allow-missing.")
        args.output = common.DOCS / "results.md"
    try:
        shown = args.results.resolve().relative_to(common.REPO)
    except ValueError:
        shown = args.results
    spreads = find_spreads(args.results, include_quick=args.include_quick)
    text = document(found, shown, spreads)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output} ({len(found)} experiment(s))")
    return text


if __name__ == "__main__":
    main(sys.argv[1:])
