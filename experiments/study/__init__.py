"""What the experiment scripts share, one module per job (read in this order).

* :mod:`study.settings`: folders, seed, the study's training settings, the published figures;
* :mod:`study.cli`: the common options (:func:`~study.cli.build_parser`, :func:`~study.cli.parse_args`);
* :mod:`study.seeding`: seeding, ``--threads`` and the first-run notice (:func:`~study.seeding.run_context`);
* :mod:`study.data`: loading and splitting MNIST and UCI optdigits (:func:`~study.data.load_mnist`);
* :mod:`study.training`: the study's callbacks and augmentation, :func:`~study.training.fit_model`;
* :mod:`study.evaluation`: the evaluation report on the test set (:func:`~study.evaluation.evaluate_model`);
* :mod:`study.records`: the ``metrics.json`` record (:func:`~study.records.collect_metrics`);
* :mod:`study.outputs`: JSON, ``history.csv``, plots, the console summary (:func:`~study.outputs.write_outputs`);
* :mod:`study.run`: one model from build to files (:func:`~study.run.run_single`);
* :mod:`study.parallel`: joblib and Dask (:func:`~study.parallel.parallel_map`);
* :mod:`study.tables`: results tables (:func:`~study.tables.find_metrics`, :func:`~study.tables.markdown_table`).

The scripts do not import this package directly but ``common``
(``experiments/common.py``), which re-exports every name, so a script reads
``common.load_mnist(...)``.
"""

import nnscratch  # noqa: F401  first: it sets the BLAS thread policy, which NumPy reads on import

__all__ = []
