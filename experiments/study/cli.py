"""The command line every experiment script shares.

:func:`build_parser` adds the common options (``--epochs``, ``--seed``,
``--out``, ``--quick``, ``--threads``, ``--data-dir`` ...), :func:`parse_args`
fills in the defaults that depend on ``--quick``, and :func:`args_record`
writes the parsed options into ``metrics.json``.
"""

import argparse
from pathlib import Path

from study.settings import DEFAULT_SEED, QUICK, RESULTS, STUDY

__all__ = ["COMMON_OUTPUTS", "args_record", "build_parser", "help_epilog", "parse_args", "positive_int"]


#: The files every training script writes to ``--out``.
COMMON_OUTPUTS = "metrics.json, history.csv, training_curves.png, confusion_matrix.png"


def positive_int(text):
    """argparse type: an integer >= 1 (so ``--train-size 0`` or ``-100`` is an error, not "all")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def help_epilog(run_time, outputs, examples):
    """The text after a script's ``--help`` options: typical run time, files written, examples."""
    lines = [f"typical run time: {run_time}",
             "--quick: seconds; the very first run also compiles the kernels (about 1-2 min)",
             f"writes to --out: {outputs}",
             "examples:"]
    lines += [f"  {example}" for example in examples]
    return "\n".join(lines)


def build_parser(name, description, *, epochs=STUDY["epochs"], batch_size=STUDY["batch_size"],
                 parallel=False, subset=True, out_default=None, epilog=None):
    """The options every script shares.

    ``--epochs``/``--batch-size`` default to the study's values (1 epoch with
    ``--quick``); ``--out`` to ``results/<name>/`` (``results/quick/<name>/``
    with ``--quick``, so a quick run never overwrites a full one).
    ``out_default`` replaces ``results/<name>/`` in that help text when the
    folder depends on another option (``--variant``, ``--scale``).
    ``parallel`` adds ``--jobs`` and ``--dask-scheduler``; ``subset`` adds
    ``--train-size``/``--test-size``. ``epilog`` (see :func:`help_epilog`) ends ``--help``.
    """
    parser = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=description, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(experiment=name, study_epochs=epochs, study_batch_size=batch_size)
    out_default = out_default or f"results/{name}/"
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"training epochs (default {epochs or 'per variant'}; {QUICK['epochs']} with --quick)")
    parser.add_argument("--batch-size", type=int, default=None, help=f"batch size (default {batch_size})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default 42)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default {out_default}; with --quick the same name under results/quick/)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny subset and 1 epoch: a smoke test that runs in seconds; "
                             "its numbers are not comparable to the study")
    if subset:
        parser.add_argument("--train-size", type=positive_int, default=None, metavar="N",
                            help=f"use only the first N training images (default: all, leave the option out; "
                                 f"{QUICK['train_size']} with --quick)")
        parser.add_argument("--test-size", type=positive_int, default=None, metavar="N",
                            help=f"use only the first N test images (default: all, leave the option out; "
                                 f"{QUICK['test_size']} with --quick)")
    threads_help = "BLAS and Numba threads of this process (default: all cores)"
    if parallel:
        threads_help += "; each parallel job of --jobs or --dask-scheduler uses one"
    parser.add_argument("--threads", type=int, default=None, help=threads_help)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data root holding mnist/ and optdigits/, or the data set's own folder "
                             "(default $NNSCRATCH_DATA, then the download cache)")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                        help="0 silent, 1 progress bars, 2 one line per epoch (default 1; 2 with --quick)")
    if parallel:
        parser.add_argument("--jobs", type=int, default=1,
                            help="parallel jobs (joblib processes, default 1; each with one thread, so the "
                                 "losses may differ from --jobs 1 in the last digits); with "
                                 "--dask-scheduler default all workers of the cluster")
        parser.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                            help="run the parallel jobs on this Dask cluster (e.g. tcp://host:8786) "
                                 "through joblib's Dask backend")
    return parser


def parse_args(parser, argv=None, out_name=None):
    """Parse ``argv`` and fill in the defaults that depend on ``--quick``."""
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = QUICK["epochs"] if args.quick else args.study_epochs
    if args.batch_size is None:
        args.batch_size = args.study_batch_size
    for key in ("train_size", "test_size"):
        if hasattr(args, key) and getattr(args, key) is None and args.quick:
            setattr(args, key, QUICK[key])
    if args.verbose is None:
        args.verbose = 2 if args.quick else 1
    name = out_name or args.experiment
    args.name = name
    if args.out is None:
        args.out = RESULTS / "quick" / name if args.quick else RESULTS / name
    args.out = Path(args.out)
    for key in ("epochs", "batch_size", "threads"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be a positive integer")
    if getattr(args, "jobs", 1) < 1 and getattr(args, "jobs", 1) != -1:
        parser.error("--jobs must be a positive integer or -1")
    return args


def args_record(args) -> dict:
    """The parsed options, JSON-ready (paths as strings)."""
    skip = {"study_epochs", "study_batch_size"}
    return {key: (str(value) if isinstance(value, Path) else value)
            for key, value in sorted(vars(args).items()) if key not in skip}
