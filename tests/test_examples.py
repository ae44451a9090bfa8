"""The runnable examples in examples/: they run, and what they print is what they claim."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_sequence_tagging_tags_and_its_masked_accuracy():
    example = load("sequence_tagging")
    x, tags = example.make_sequences(np.random.default_rng(1), 50)
    for row, row_tags in zip(x, tags):
        digits = row[row != 0]
        assert (row[len(digits):] == 0).all() and 3 <= len(digits) <= 12      # padding at the end only
        assert row_tags[0] == 0 and (row_tags[len(digits):] == 0).all()
        np.testing.assert_array_equal(row_tags[1:len(digits)], np.where(digits[1:] > digits[:-1], 1, 2))
    accuracy, by_hand = example.main(train=2000, epochs=6, verbose=0)     # (the example: 4000 and 8, 99.7%)
    assert accuracy == pytest.approx(by_hand, abs=1e-12)    # evaluate counts the real steps only
    assert accuracy > 0.6                 # it learns: the commonest tag is ~45% of the real steps (74% here)
