"""Deep CNN of the study (nnscratch.zoo.deep_cnn): three conv blocks with batch norm, two dense blocks.

Trains on one augmented stream (batch 64, up to 20 epochs, Adam 1e-3 with
clipnorm=1, the study's EarlyStopping and ReduceLROnPlateau), validating on the
last 10% of the training images. The slowest model of the study: see
experiments/README.md for the expected wall time.

    python experiments/deep_cnn.py
    python experiments/deep_cnn.py --quick --train-size 500 --test-size 200
"""

import sys
import time

import common
from nnscratch import zoo

NAME = "deep_cnn"


def parser():
    epilog = common.help_epilog(
        "14-60 min (about 45 min on a 2-core machine; 50-170 s an epoch, up to 20 epochs)",
        common.COMMON_OUTPUTS,
        ["python experiments/deep_cnn.py", "python experiments/deep_cnn.py --quick --train-size 500 --test-size 200"])
    return common.build_parser(NAME, __doc__.splitlines()[0], epilog=epilog)


def main(argv=None):
    args = common.parse_args(parser(), argv)
    start = time.perf_counter()
    with common.run_context(args):
        data = common.load_mnist(args, validation="last")
        metrics, _ = common.run_single(
            args, build=zoo.deep_cnn, data=data, augment=True, callbacks=common.study_callbacks, start=start,
            description="3 x [Conv-BN-ReLU-Conv-BN-ReLU-MaxPool-Dropout .25], Dense 512/256 with BN and "
                        "Dropout .5, Dense 10; Adam clipnorm=1")
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
