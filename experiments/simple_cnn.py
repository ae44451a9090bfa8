"""Simple CNN of the Keras tutorial (nnscratch.zoo.simple_cnn), in two variants.

``--variant three-conv`` (default): Conv 32-Pool-Conv 64-Pool-Conv 64-Dense 64-Dense 10,
one-hot labels, 20 epochs, batch 128, validation = the last 10% of the
training images (Keras's ``validation_split=0.1``), no callbacks.

``--variant two-conv``: without the third conv, sparse categorical
cross-entropy, 10 epochs, batch 128, validation =
``train_test_split(test_size=0.2, random_state=seed)`` of the 60,000 training images.

No augmentation; the final weights are evaluated.

    python experiments/simple_cnn.py
    python experiments/simple_cnn.py --variant two-conv
"""

import sys
import time
from functools import partial

import common
from nnscratch import zoo

NAME = "simple_cnn"
VARIANTS = {
    # variant: (default epochs, validation split of load_mnist)
    "three-conv": (20, "last"),
    "two-conv": (10, "sklearn"),
}


def parser():
    epilog = common.help_epilog(
        "three-conv 4-8 min, two-conv 2-4 min on 2 cores",
        common.COMMON_OUTPUTS,
        ["python experiments/simple_cnn.py", "python experiments/simple_cnn.py --variant two-conv",
         "python experiments/simple_cnn.py --variant two-conv --quick"])
    p = common.build_parser(NAME, __doc__.splitlines()[0], epochs=None, batch_size=128, epilog=epilog,
                            out_default="results/simple_cnn_three_conv/ or results/simple_cnn_two_conv/, by --variant")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="three-conv",
                   help="three-conv (default; 20 epochs) or two-conv (10 epochs)")
    return p


def main(argv=None):
    p = parser()
    variant = p.parse_known_args(argv)[0].variant
    epochs, validation = VARIANTS[variant]
    p.set_defaults(study_epochs=epochs)
    args = common.parse_args(p, argv, out_name=f"{NAME}_{variant.replace('-', '_')}")
    start = time.perf_counter()
    with common.run_context(args):
        data = common.load_mnist(args, validation=validation)
        description = {
            "three-conv": "Conv 32, Pool, Conv 64, Pool, Conv 64, Dense 64, Dense 10; validation = last 10%",
            "two-conv": "Conv 32, Pool, Conv 64, Pool, Dense 64, Dense 10; sparse labels; 80/20 split",
        }[variant]
        metrics, _ = common.run_single(args, build=partial(zoo.simple_cnn, variant), data=data, augment=False,
                                       callbacks=None, start=start, description=description,
                                       extra={"variant": variant})
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
