"""summary() and count_params(): the same counts as Keras, computed here from the formulas."""

import re

import pytest

import nnscratch
from nnscratch.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D, ReLU


# ------------------------------------------------------------------ Keras's counting rules
def conv_params(kh, kw, c_in, filters, bias=True):
    return kh * kw * c_in * filters + (filters if bias else 0)


def dense_params(n_in, units, bias=True):
    return n_in * units + (units if bias else 0)


def bn_params(channels):
    """gamma, beta (trainable) + moving mean, moving variance (non-trainable)."""
    return 4 * channels


def _summary_text(model):
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def _counts(text):
    found = {}
    for key in ("Total", "Trainable", "Non-trainable"):
        match = re.search(rf"^{key} params: ([\d,]+)", text, flags=re.MULTILINE)
        assert match, f"no '{key} params' line in\n{text}"
        found[key] = int(match.group(1).replace(",", ""))
    return found


# ------------------------------------------------------------------ the three known models
def basic_mlp():
    return nnscratch.Sequential([
        nnscratch.Input((28, 28, 1)), Flatten(), Dense(512, activation="relu"), Dense(10, activation="softmax"),
    ])


def simple_cnn():
    return nnscratch.Sequential([
        nnscratch.Input((28, 28, 1)),
        Conv2D(32, 3, activation="relu"), MaxPooling2D(),
        Conv2D(64, 3, activation="relu"), MaxPooling2D(),
        Conv2D(64, 3, activation="relu"),
        Flatten(), Dense(64, activation="relu"), Dense(10, activation="softmax"),
    ])


def deep_cnn():
    layers = [nnscratch.Input((28, 28, 1))]
    for filters in (32, 64, 128):
        layers += [Conv2D(filters, 3, padding="same"), BatchNormalization(), ReLU(),
                   Conv2D(filters, 3, padding="same"), BatchNormalization(), ReLU(),
                   MaxPooling2D(), Dropout(0.25)]
    layers += [Flatten(),
               Dense(512, activation="relu"), BatchNormalization(), Dropout(0.5),
               Dense(256, activation="relu"), BatchNormalization(), Dropout(0.5),
               Dense(10, activation="softmax")]
    return nnscratch.Sequential(layers)


def _expected_mlp():
    total = dense_params(28 * 28, 512) + dense_params(512, 10)
    return total, total


def _expected_simple_cnn():
    # 28 -conv-> 26 -pool-> 13 -conv-> 11 -pool-> 5 -conv-> 3
    total = (conv_params(3, 3, 1, 32) + conv_params(3, 3, 32, 64) + conv_params(3, 3, 64, 64)
             + dense_params(3 * 3 * 64, 64) + dense_params(64, 10))
    return total, total


def _expected_deep_cnn():
    total = non_trainable = 0
    c_in, size = 1, 28
    for filters in (32, 64, 128):
        total += conv_params(3, 3, c_in, filters) + bn_params(filters)
        total += conv_params(3, 3, filters, filters) + bn_params(filters)
        non_trainable += 2 * 2 * filters
        c_in, size = filters, size // 2           # 28 -> 14 -> 7 -> 3
    flat = size * size * c_in
    total += dense_params(flat, 512) + bn_params(512) + dense_params(512, 256) + bn_params(256)
    total += dense_params(256, 10)
    non_trainable += 2 * 512 + 2 * 256
    return total, total - non_trainable


@pytest.mark.parametrize("build, expected, published", [
    (basic_mlp, _expected_mlp, (407_050, 407_050)),
    (simple_cnn, _expected_simple_cnn, (93_322, 93_322)),
    (deep_cnn, _expected_deep_cnn, (1_015_530, 1_013_098)),
])
def test_counts_match_keras(build, expected, published):
    total, trainable = expected()
    assert (total, trainable) == published          # the formulas above reproduce Keras's published counts
    model = build()
    assert model.count_params() == total
    counts = _counts(_summary_text(model))
    assert counts == {"Total": total, "Trainable": trainable, "Non-trainable": total - trainable}


def test_summary_lists_layer_names_types_shapes_and_per_layer_counts():
    model = nnscratch.Sequential([
        nnscratch.Input((8, 8, 1)),
        Conv2D(16, 3, padding="same", activation="relu", name="features"),
        BatchNormalization(name="norm"),
        MaxPooling2D(name="pool"),
        Flatten(name="flat"),
        Dense(10, activation="softmax", name="classifier"),
    ], name="digits_net")
    text = _summary_text(model)
    assert 'Model: "digits_net"' in text
    rows = {
        "features (Conv2D)": ("(None, 8, 8, 16)", conv_params(3, 3, 1, 16)),
        "norm (BatchNormalization)": ("(None, 8, 8, 16)", bn_params(16)),
        "pool (MaxPooling2D)": ("(None, 4, 4, 16)", 0),
        "flat (Flatten)": ("(None, 256)", 0),
        "classifier (Dense)": ("(None, 10)", dense_params(256, 10)),
    }
    lines = text.splitlines()
    for label, (shape, count) in rows.items():
        line = next((ln for ln in lines if ln.startswith(label)), None)
        assert line is not None, f"{label} missing from\n{text}"
        assert shape in line
        assert line.rstrip().endswith(f"{count:,}")
    # the rows come in model order
    positions = [text.index(label) for label in rows]
    assert positions == sorted(positions)


def test_summary_totals_use_thousands_separators():
    text = _summary_text(deep_cnn())
    assert "Total params: 1,015,530" in text
    assert "Trainable params: 1,013,098" in text
    assert "Non-trainable params: 2,432" in text


def test_summary_prints_by_default(capsys):
    model = basic_mlp()
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 407,050" in out
    assert all(layer.name in out for layer in model.layers)


def test_summary_of_a_functional_model_lists_its_input_layer():
    inputs = nnscratch.Input((6,), name="features_in")
    outputs = Dense(3, name="out")(inputs)
    model = nnscratch.Model(inputs=inputs, outputs=outputs, name="tiny")
    text = _summary_text(model)
    assert "features_in (InputLayer)" in text and "out (Dense)" in text
    assert _counts(text)["Total"] == dense_params(6, 3)


def test_count_params_counts_buffers_and_frozen_weights():
    model = nnscratch.Sequential([nnscratch.Input((5,)), Dense(4, trainable=False), BatchNormalization(),
                                  Dense(2)])
    total = dense_params(5, 4) + bn_params(4) + dense_params(4, 2)
    assert model.count_params() == total
    counts = _counts(_summary_text(model))
    assert counts["Non-trainable"] == dense_params(5, 4) + 2 * 4


def test_summary_and_count_params_before_build_raise():
    model = nnscratch.Sequential([Dense(3)])
    with pytest.raises(ValueError, match="not built"):
        model.summary()
    with pytest.raises(ValueError, match="not built"):
        model.count_params()


def test_summary_memory_follows_floatx(float64):
    """Keras reports the weights' size in bytes: 8 per parameter in float64."""
    model = basic_mlp()                              # first layer (Flatten) has no weights
    text = _summary_text(model)
    size_mb = 407_050 * 8 / 1024 ** 2
    assert f"Total params: 407,050 ({size_mb:.2f} MB)" in text
