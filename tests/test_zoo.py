"""The study's models (nnscratch.zoo): parameter counts as the study's Keras summaries, shapes, compile settings."""

import numpy as np
import pytest

from nnscratch import zoo
from nnscratch.optimizers import Adam


def _trainable(model):
    return sum(layer.count_trainable_params() for layer in model.layers)


# (builder, total params as Keras reports them, trainable, input shape)
TABLE = {
    "basic_mlp_128": (lambda: zoo.basic_mlp(128), 101_770, 101_770, (28, 28, 1)),
    "basic_mlp_256": (lambda: zoo.basic_mlp(256), 203_530, 203_530, (28, 28, 1)),
    "basic_mlp_512": (lambda: zoo.basic_mlp(512), 407_050, 407_050, (28, 28, 1)),
    "optimized_mlp": (lambda: zoo.optimized_mlp(196), 84_618, 84_618, (196,)),
    "deep_cnn": (zoo.deep_cnn, 1_015_530, 1_013_098, (28, 28, 1)),
    "simple_cnn_three_conv": (lambda: zoo.simple_cnn("three-conv"), 93_322, 93_322, (28, 28, 1)),
    "simple_cnn_two_conv": (lambda: zoo.simple_cnn("two-conv"), 121_930, 121_930, (28, 28, 1)),
    "uci_cnn": (zoo.uci_cnn, 102_794, 102_794, (8, 8, 1)),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_parameter_counts_match_the_study(name):
    build, total, trainable, _ = TABLE[name]
    model = build()
    assert model.count_params() == total
    assert _trainable(model) == trainable


def test_deep_cnn_summary_reports_trainable_and_non_trainable():
    lines = []
    zoo.deep_cnn().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 1,015,530" in text
    assert "Trainable params: 1,013,098" in text
    assert "Non-trainable params: 2,432" in text  # batch-norm moving means and variances


@pytest.mark.parametrize("name", sorted(TABLE))
def test_forward_shapes_and_softmax_outputs(name):
    build, _, _, input_shape = TABLE[name]
    model = build()
    assert model.input_shape == (None, *input_shape)
    assert model.output_shape[-1] == 10
    x = np.random.default_rng(0).random((3, *input_shape), dtype=np.float32)
    out = model.predict(x, batch_size=2)
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_compiled_with_adam_1e3(name):
    model = TABLE[name][0]()
    assert isinstance(model.optimizer, Adam)
    assert model.optimizer.learning_rate == pytest.approx(1e-3)
    expected_loss = "sparse_categorical_crossentropy" if name == "simple_cnn_two_conv" else "categorical_crossentropy"
    assert model.loss.name == expected_loss
    assert [m.name for m in model.metrics] == ["accuracy"]
    assert model.optimizer.clipnorm == (1.0 if name == "deep_cnn" else None)


def test_one_training_step_on_each_image_model_runs():
    rng = np.random.default_rng(1)
    for build in (zoo.uci_cnn, lambda: zoo.simple_cnn("two-conv")):
        model = build()
        shape = model.input_shape[1:]
        x = rng.random((4, *shape), dtype=np.float32)
        labels = rng.integers(0, 10, 4)
        y = labels if model.loss.name.startswith("sparse") else np.eye(10, dtype=np.float32)[labels]
        loss = model.train_on_batch(x, y)[0]
        assert np.isfinite(loss)


def test_simple_cnn_rejects_unknown_variant():
    with pytest.raises(ValueError, match="variant"):
        zoo.simple_cnn("four-conv")
