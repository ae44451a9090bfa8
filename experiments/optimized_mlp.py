"""Optimized MLP of the study: 196 pixels chosen by SelectKBest(f_classif), then a small dropout MLP.

The pixel selection is fitted on the 54,000 training images only (the 717
pixels that vary there); the same 196 pixels are then taken from the
validation and test images. Model: Dense(256, relu), Dropout(0.3),
Dense(128, relu), Dropout(0.2), Dense(10, softmax); no augmentation; batch 64,
up to 20 epochs, Adam 1e-3, the study's EarlyStopping and ReduceLROnPlateau.

    python experiments/optimized_mlp.py
    python experiments/optimized_mlp.py --quick
"""

import sys
import time
from functools import partial

import common  # first: it imports nnscratch, which sets up OpenBLAS before NumPy loads it
import numpy as np
from nnscratch import zoo
from nnscratch.features import select_k_best_pixels

NAME = "optimized_mlp"


def plot_selection(path, selection):
    """The F-score map of the 784 pixels and the chosen ones."""
    plt = common._pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    image = axes[0].imshow(selection.scores_map, cmap="viridis")
    axes[0].set_title("ANOVA F-score per pixel")
    fig.colorbar(image, ax=axes[0], fraction=0.046)
    mask = np.zeros(selection.scores_map.size)
    mask[selection.indices] = 1
    axes[1].imshow(mask.reshape(selection.scores_map.shape), cmap="gray_r")
    axes[1].set_title(f"{len(selection.indices)} selected pixels")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parser():
    epilog = common.help_epilog(
        "18-34 s on 2 cores",
        f"{common.COMMON_OUTPUTS}, selected_pixels.png, pixel_scores.npy",
        ["python experiments/optimized_mlp.py", "python experiments/optimized_mlp.py --quick --out /tmp/opt"])
    p = common.build_parser(NAME, __doc__.splitlines()[0], epilog=epilog)
    p.add_argument("--k", type=common.positive_int, default=196, help="pixels to keep (default 196)")
    return p


def main(argv=None):
    args = common.parse_args(parser(), argv)
    start = time.perf_counter()
    with common.run_context(args):
        data = common.load_mnist(args, validation="last")
        selection = select_k_best_pixels(data.train.x[..., 0], data.train.y, k=args.k)
        for split in (data.train, data.val, data.test):
            split.x = selection.transform(split.x[..., 0])
        extra = {"k": args.k, "n_nonconstant_pixels": selection.n_nonconstant,
                 "selected_pixels": selection.indices.tolist()}
        metrics, _ = common.run_single(
            args, build=partial(zoo.optimized_mlp, n_features=args.k), data=data, augment=False,
            callbacks=common.study_callbacks, start=start, extra=extra,
            description="SelectKBest(f_classif) pixels; Dense 256, Dropout .3, Dense 128, Dropout .2, Dense 10")
        plot_selection(args.out / "selected_pixels.png", selection)
        np.save(args.out / "pixel_scores.npy", selection.scores_map)
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
