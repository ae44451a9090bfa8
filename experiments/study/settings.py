"""The study's fixed settings: folders, seeds, training settings, the published figures.

Every other module of :mod:`study` reads its constants from here, so a
setting is changed in one place. :data:`PUBLISHED` holds the figures of the
study that the results are compared against.
"""

from pathlib import Path

__all__ = ["AUGMENTATION", "DEFAULT_SEED", "DOCS", "NUM_CLASSES", "PREDICT_BATCH_SIZE", "PUBLISHED", "QUICK",
           "QUICK_TAG", "REPO", "RESULTS", "STUDY"]

REPO = Path(__file__).resolve().parents[2]  # experiments/study/settings.py -> the repository
RESULTS = REPO / "results"
DOCS = REPO / "docs"

DEFAULT_SEED = 42
NUM_CLASSES = 10
#: The study's training settings (MNIST models).
STUDY = {"epochs": 20, "batch_size": 64, "learning_rate": 1e-3, "val_fraction": 0.1}
#: The augmentation of the basic and deep models (Keras's ImageDataGenerator arguments).
AUGMENTATION = {"rotation_range": 10, "zoom_range": 0.1, "width_shift_range": 0.1,
                "height_shift_range": 0.1, "fill_mode": "nearest"}
#: ``--quick``: a tiny subset and one epoch, so a test runs a script in seconds.
QUICK = {"train_size": 2000, "test_size": 500, "epochs": 1}
#: Marks a ``--quick`` run on the console and in plot titles: its numbers mean nothing for the study.
QUICK_TAG = "quick smoke test (not comparable to the study)"
#: Keras's default batch size of ``predict``, used to time the test predictions.
PREDICT_BATCH_SIZE = 32

#: Published figures of the study, keyed by experiment (results folder) name.
#: Accuracies are fractions; ``None`` means not published.
PUBLISHED = {
    "basic_mlp": {
        "title": "Basic MLP (width sweep 128/256/512, augmented)",
        "test_accuracy": 0.9905, "params": 407_050, "prediction_time_s": 0.621,
        "val_accuracy_by_units": {"128": 0.9842, "256": 0.9882, "512": 0.9900},
        "val_accuracy": 0.9900,
    },
    "optimized_mlp": {
        "title": "Optimized MLP (196 SelectKBest pixels, dropout)",
        "test_accuracy": 0.9786, "params": 84_618, "prediction_time_s": 0.528,
        "val_accuracy": 0.9805, "epochs_run": 18,
    },
    "deep_cnn": {
        "title": "Deep CNN (3 conv blocks with batch norm, augmented)",
        "test_accuracy": 0.9971, "errors": 29, "params": 1_015_530, "trainable_params": 1_013_098,
        "prediction_time_s": 4.869, "val_accuracy": 0.9968,
    },
    "simple_cnn_three_conv": {
        "title": "Simple CNN (Keras tutorial, three conv layers)",
        "test_accuracy": 0.989, "test_loss": 0.0448, "params": 93_322, "final_val_accuracy": 0.9908,
    },
    "simple_cnn_two_conv": {
        "title": "Simple CNN, two conv layers (sparse labels, 80/20 split)",
        "params": 121_930,
    },
    "uci_digits_kfold": {
        "title": "UCI 8x8 digits CNN, raw 0..16 inputs (80/20 split, 5-fold CV)",
        "test_accuracy": 0.9911, "precision_macro": 0.9908, "recall_macro": 0.9916, "f1_macro": 0.9911,
        "params": 102_794, "kfold_mean_accuracy": 0.9906, "kfold_std_accuracy": 0.0024,
    },
    "uci_digits_kfold_scaled": {
        "title": "UCI 8x8 digits CNN, inputs scaled to [0, 1] (not in the study)",
        "params": 102_794,
    },
}
