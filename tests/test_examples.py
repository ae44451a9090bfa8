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


def test_the_transformer_reads_two_inputs_and_answers_both_questions():
    example = load("transformer_tagging")
    digits, positions, records, largest = example.make_sequences(np.random.default_rng(1), 50)
    for row, places, tags, top in zip(digits, positions, records, largest):
        real = row[row != 0]
        assert (row[len(real):] == 0).all() and 3 <= len(real) <= 12 and top == real.max() - 1
        np.testing.assert_array_equal(places, np.where(row != 0, np.arange(1, 13), 0))
        np.testing.assert_array_equal(tags[:len(real)], [digit > max(real[:i], default=0)
                                                         for i, digit in enumerate(real)])
    logs = example.main(train=1500, epochs=4, verbose=0)        # (the example: 4000 and 8, 99.0% and 99.5%)
    digits, _, records, largest = example.make_sequences(np.random.default_rng(2), 2000)
    commonest_tag = max(np.mean(records[digits != 0]), 1 - np.mean(records[digits != 0]))
    commonest_largest = np.mean(largest == 8)                            # 9 is the largest digit most often
    assert logs["record_accuracy"] > commonest_tag + 0.1 and logs["largest_accuracy"] > commonest_largest + 0.1


def test_the_siamese_network_shares_its_tower_and_tells_unseen_pairs_apart():
    example = load("siamese_digits")
    labels = np.repeat(np.arange(4), 5)
    images = np.arange(20, dtype=np.float32)                     # image i is the number i: its label is i // 5
    (first, second), same = example.make_pairs(np.random.default_rng(1), images, labels, 400)
    np.testing.assert_array_equal(first // 5 == second // 5, same == 1)
    assert 150 < same.sum() < 250
    model = example.siamese_model()
    assert len(model.node_layers) == len(model.layers) + 5         # the 5 tower layers run twice, stored once
    accuracy = example.main(train=2000, epochs=4, verbose=0)      # (the example: 10000 and 12, 96.3%)
    assert accuracy > 0.75                                         # half the pairs are alike: chance is 50%


def test_the_custom_layer_example_checks_its_gradients_trains_and_reloads():
    example = load("custom_layer")
    assert example.check_gradients().max_error < 1e-6
    accuracy, same = example.main(epochs=3, verbose=0)          # (the example: 15 epochs, 95%)
    assert accuracy > 0.6 and same                               # ten classes: chance is 10%
