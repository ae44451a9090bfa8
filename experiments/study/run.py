"""One model from start to files: :func:`run_single`, the common path of most scripts.

It ties the other modules together: build (:func:`nnscratch.sklearn.build_model`),
train (:func:`study.training.fit_model`), evaluate
(:func:`study.evaluation.evaluate_model`), record
(:func:`study.records.collect_metrics`) and write (:func:`study.outputs.write_outputs`).
"""

import time

from nnscratch.sklearn import build_model

from study.evaluation import evaluate_model
from study.outputs import report, write_outputs
from study.records import collect_metrics
from study.settings import AUGMENTATION
from study.training import fit_model

__all__ = ["run_single"]


def run_single(args, *, build, description, data, augment, callbacks, extra=None, start=None, show=True):
    """Build, train, evaluate and write the outputs of one model: the common path of most scripts.

    ``build`` is a zero-argument callable returning the compiled model;
    ``callbacks`` a zero-argument callable returning the callbacks (or None).
    ``show=False`` leaves the console summary (:func:`report`) to the caller,
    for a script that does more work afterwards.
    """
    start = time.perf_counter() if start is None else start
    model = build_model(build, args.seed)
    run = fit_model(model, data.train, data.val, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                    augment=augment, callbacks=callbacks() if callbacks else None, verbose=args.verbose)
    evaluation = evaluate_model(model, data.test)
    sizes = {"n_train": len(data.train), "n_val": 0 if data.val is None else len(data.val)}
    metrics = collect_metrics(args, model, evaluation, run, wall_time_s=time.perf_counter() - start,
                              description=description, augmentation=AUGMENTATION if augment else None,
                              callbacks=bool(callbacks), **sizes, **(extra or {}))
    write_outputs(args.out, metrics, run.history)
    if show:
        report(metrics, args.out)
    return metrics, model
