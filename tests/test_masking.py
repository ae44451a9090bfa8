"""Masks (nnscratch.models.masking): Embedding(mask_zero=True) and Masking make them; the recurrent layers,
Bidirectional and GlobalAveragePooling1D read them; other layers pass them on, drop them or refuse them.

The recurrent layers are checked against Keras's rule written out step by step
with the same layer *without* a mask: the output at a step is the state after
the unmasked steps read so far. (Against Keras 3.15 itself, outside the suite:
Embedding or Masking, then SimpleRNN, LSTM, GRU or GRU(reset_after=False),
alone, with return_sequences and GlobalAveragePooling1D, Bidirectional, and
go_backwards followed by another layer: predictions within 1.8e-7, the
weights after an SGD step within 1.8e-7.)
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import check_layer, numerical_gradient
from nnscratch.layers import (GRU, LSTM, BatchNormalization, Bidirectional, Dense, Dropout, Embedding, Flatten,
                              GlobalAveragePooling1D, Masking, SimpleRNN, Softmax, TimeDistributed)
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import STEP, TOLERANCE, float64_floatx, masked_sequences
    from tests.strategies import padded_indices
except ImportError:
    from grad_strategies import STEP, TOLERANCE, float64_floatx, masked_sequences
    from strategies import padded_indices

RECURRENT = {
    "SimpleRNN": lambda units, **options: SimpleRNN(units, **options),
    "LSTM": lambda units, **options: LSTM(units, **options),
    "GRU": lambda units, **options: GRU(units, **options),
    "GRU_reset_before": lambda units, **options: GRU(units, reset_after=False, **options),
}
options = st.fixed_dictionaries({"return_sequences": st.booleans(), "go_backwards": st.booleans(),
                                 "zero_output_for_mask": st.booleans()})


def built(make, shape, seed):
    """``make()`` built in float64 for one sample of ``shape`` (N, T, F), with random weights."""
    with float64_floatx():
        layer = make()
        layer.build(shape[1:])
    rng = np.random.default_rng(seed)
    layer.set_weights([0.7 * rng.standard_normal(p.shape) for p in layer.params.values()])
    return layer


def keras_rule(layer, x, mask):
    """What Keras outputs, from the layer run without a mask on the unmasked steps read up to each step."""
    reading, read_mask = (x[:, ::-1], mask[:, ::-1]) if layer.go_backwards else (x, mask)
    config = {**layer.get_config(), "go_backwards": False, "return_sequences": False, "zero_output_for_mask": False}
    out = np.zeros((*x.shape[:2], layer.units))
    for n in range(len(x)):
        for t in range(x.shape[1]):
            kept = reading[n, :t + 1][read_mask[n, :t + 1]]
            if len(kept) and (read_mask[n, t] or not layer.zero_output_for_mask):
                plain = built(lambda: type(layer).from_config({**config, "name": None}), (1, *kept.shape), 0)
                plain.set_weights(layer.get_weights())
                out[n, t] = plain.forward(kept[None])[0]
    return out if layer.return_sequences else out[:, -1]


@settings(max_examples=20, deadline=None)
@given(case=masked_sequences(), kind=st.sampled_from(sorted(RECURRENT)), options=options,
       backend=st.sampled_from(["numpy", "numba"]))
def test_a_masked_step_leaves_the_state_as_it_was(case, kind, options, backend):
    nnscratch.set_backend(backend)
    shape, mask, seed = case
    layer = built(lambda: RECURRENT[kind](3, **options), shape, seed)
    x = np.random.default_rng(seed).standard_normal(shape)
    np.testing.assert_allclose(layer.forward(x, mask=mask), keras_rule(layer, x, mask), rtol=1e-10, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(case=masked_sequences(), kind=st.sampled_from(sorted(RECURRENT)), options=options)
def test_gradients_through_masked_steps(case, kind, options):
    shape, mask, seed = case
    layer = built(lambda: RECURRENT[kind](2, **options), shape, seed)
    x = np.random.default_rng(seed + 1).standard_normal(shape)
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP, mask=mask)
    assert report.max_error < TOLERANCE, f"\n{report}"
    layer.forward(x, training=True, mask=mask)
    grad_x = layer.backward(np.ones((shape[0], shape[1], 2) if options["return_sequences"] else (shape[0], 2)))
    assert np.all(grad_x[~mask] == 0)   # nothing reads a masked step's input


@settings(max_examples=15, deadline=None)
@given(case=masked_sequences(), kind=st.sampled_from(sorted(RECURRENT)), return_sequences=st.booleans(),
       merge_mode=st.sampled_from(["concat", "sum", "mul"]))
def test_bidirectional_reads_the_mask_both_ways(case, kind, return_sequences, merge_mode):
    shape, mask, seed = case
    layer = built(lambda: Bidirectional(RECURRENT[kind](2, return_sequences=return_sequences),
                                        merge_mode=merge_mode), shape, seed)
    x = np.random.default_rng(seed + 2).standard_normal(shape)
    forward = keras_rule(layer.forward_layer, x, mask)
    backward = keras_rule(layer.backward_layer, x, mask)
    if return_sequences:           # Keras: a masked step outputs zeros both ways, so that the two line up
        assert np.all(forward[~mask] == 0) and np.all(backward[:, ::-1][~mask] == 0)
        backward = backward[:, ::-1]
    merged = {"concat": np.concatenate([forward, backward], axis=-1), "sum": forward + backward,
              "mul": forward * backward}[merge_mode]
    np.testing.assert_allclose(layer.forward(x, mask=mask), merged, rtol=1e-10, atol=1e-12)
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP, mask=mask)
    assert report.max_error < TOLERANCE, f"\n{report}"


@settings(max_examples=20, deadline=None)
@given(case=masked_sequences(), keepdims=st.booleans())
def test_global_average_pooling_averages_the_unmasked_steps(case, keepdims):
    shape, mask, seed = case
    mask[:, 0] |= ~mask.any(axis=1)          # a step in every row (a row with none: below)
    layer = built(lambda: GlobalAveragePooling1D(keepdims=keepdims), shape, seed)
    x = np.random.default_rng(seed).standard_normal(shape)
    expected = np.stack([x[n][mask[n]].mean(axis=0) for n in range(shape[0])])
    y = layer.forward(x, mask=mask)
    np.testing.assert_allclose(y.reshape(expected.shape), expected, rtol=1e-12)
    assert y.shape == ((shape[0], 1, shape[2]) if keepdims else (shape[0], shape[2]))
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP, mask=mask)
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_global_average_pooling_of_a_row_with_every_step_masked_is_nan_as_in_keras():
    layer = GlobalAveragePooling1D()
    layer.build((3, 2))
    x = np.ones((2, 3, 2), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no division warning either
        y = layer.forward(x, mask=np.array([[True, False, False], [False, False, False]]))
    assert np.all(y[0] == 1) and np.all(np.isnan(y[1]))


def test_masking_zeroes_the_steps_whose_features_all_equal_the_value():
    layer = Masking(mask_value=-1.0)
    layer.build((3, 2))
    x = np.array([[[-1, -1], [-1, 2], [3, 4]], [[5, 6], [-1, -1], [-1, -1]]], np.float32)
    mask = layer.compute_mask(x, None)
    np.testing.assert_array_equal(mask, [[False, True, True], [True, False, False]])
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(y, x * mask[..., None])
    grad = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    np.testing.assert_array_equal(layer.backward(grad), grad * mask[..., None])
    assert Masking.from_config(layer.get_config()).mask_value == -1.0


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_padded_model_predicts_as_on_each_unpadded_sequence_and_never_trains_the_padding_row(backend, tmp_path):
    nnscratch.set_backend(backend)
    rng = np.random.default_rng(3)
    x, y = padded_indices(rng), rng.standard_normal((12, 2)).astype(np.float32)
    model = nnscratch.Sequential([nnscratch.Input((6,)), Embedding(9, 4, mask_zero=True),
                                  LSTM(5, return_sequences=True), Dropout(0.2), GRU(3), Dense(2)])
    embedding, first, _, second, dense = model.layers
    outputs = model.predict(x, verbose=0)
    for row, output in zip(x, outputs):
        words = row[row != 0]
        alone = nnscratch.Sequential([nnscratch.Input((len(words),)), Embedding(9, 4),
                                      LSTM(5, return_sequences=True), GRU(3), Dense(2)])
        alone.set_weights(model.get_weights())
        np.testing.assert_allclose(alone.predict(words[None], verbose=0)[0], output, rtol=1e-5, atol=1e-6)
    before = embedding.embeddings.value.copy()
    model.compile(nnscratch.optimizers.SGD(0.1), "mse")
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    changed = np.any(embedding.embeddings.value != before, axis=1)
    assert not changed[0] and changed[np.unique(x[x != 0])].all()   # row 0 is read only at masked steps
    model.save(tmp_path / "padded.npz")
    loaded = load_model(tmp_path / "padded.npz")
    assert loaded.layers[0].mask_zero and loaded.layers[0].get_config() == embedding.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_masking_before_a_recurrent_layer_equals_the_layer_given_the_mask():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 6, 3)).astype(np.float32)
    x[0, 4:] = 0
    x[2, :2] = 0
    x[3] = 0
    inputs = nnscratch.Input((6, 3))
    lstm = LSTM(4, return_sequences=True)
    model = nnscratch.Model(inputs, TimeDistributed(Dense(2))(lstm(Masking()(inputs))))   # a functional chain
    assert model.output_masked
    expected = lstm.forward(x, mask=np.any(x != 0, axis=-1))
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               expected @ model.layers[-1].layer.kernel.value + model.layers[-1].layer.bias.value,
                               rtol=1e-5, atol=1e-6)


def test_layers_that_read_a_mask_the_way_keras_does_and_nnscratch_does_not_are_refused_at_build():
    for refused, match in ((BatchNormalization(axis=1), "channels on the last axis"), (Softmax(), "Activation")):
        with pytest.raises(ValueError, match=match):
            nnscratch.Sequential([nnscratch.Input((4,)), Embedding(5, 3, mask_zero=True),
                                  LSTM(2, return_sequences=True), refused])
    nnscratch.Sequential([nnscratch.Input((4,)), Embedding(5, 3, mask_zero=True), LSTM(2), BatchNormalization()])


@settings(max_examples=25, deadline=None)
@given(case=masked_sequences(), center=st.booleans(), scale=st.booleans())
def test_batch_normalization_gradients_with_the_statistics_of_the_unmasked_steps(case, center, scale):
    shape, mask, seed = case
    rng = np.random.default_rng(seed)
    with float64_floatx():
        layer = BatchNormalization(epsilon=0.5, center=center, scale=scale)   # (0.5: see test_layer_normalization)
        layer.build(shape[1:])
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in layer.get_weights()])
    x = rng.standard_normal(shape)
    report = check_layer(layer, x=x, seed=seed % 1000, h=STEP, mask=mask)
    assert report.max_error < TOLERANCE, f"\n{report}"


def test_masked_batch_normalization_uses_the_unmasked_steps_statistics_everywhere_as_keras():
    rng = np.random.default_rng(10)
    x = (2 * rng.standard_normal((3, 5, 4)) + 1).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=bool)
    layer = BatchNormalization(momentum=0.0)                  # the moving statistics become the batch's
    layer.build((5, 4))
    y = layer.forward(x, training=True, mask=mask)
    valid = x[mask]                                           # the 8 unmasked steps, (8, 4)
    mean, var = valid.sum(axis=0) / (8 + 1e-7), ((valid - valid.mean(axis=0)) ** 2).sum(axis=0) / (8 + 1e-7)
    np.testing.assert_allclose(layer.buffers["moving_mean"], mean, rtol=1e-5)
    np.testing.assert_allclose(layer.buffers["moving_variance"], var, rtol=1e-5)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)   # masked steps too
    np.testing.assert_array_equal(layer.forward(x, training=False, mask=mask), layer.forward(x, training=False))


def masked_bn_relu_tagger(graph):
    """Embedding -> LSTM -> BatchNormalization -> ReLU -> Dense, as a chain or with a GRU branch added."""
    inputs = nnscratch.Input((6,))
    embedded = Embedding(9, 4, mask_zero=True)(inputs)
    h = nnscratch.layers.ReLU()(BatchNormalization()(LSTM(5, return_sequences=True)(embedded)))
    if graph:
        h = nnscratch.layers.Add()([h, GRU(5, return_sequences=True)(embedded)])
    return nnscratch.Model(inputs, Dense(3, activation="softmax")(h))


@pytest.mark.parametrize("graph", [False, True], ids=["chain", "graph"])
@pytest.mark.parametrize("fuse", [True, False], ids=["bn_relu_fused", "unfused"])
def test_a_masked_batch_norm_with_its_relu_fused_trains_as_the_two_layers(fuse, graph):
    rng = np.random.default_rng(11)
    x, y = padded_indices(rng), rng.integers(0, 3, (12, 6))
    models = []
    for fused in (fuse, False):
        model = masked_bn_relu_tagger(graph)
        model.fuse_batchnorm_relu = fused
        model.set_weights(models[0].get_weights() if models else model.get_weights())
        models.append(model)
    for model in models:
        model.compile(nnscratch.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    assert models[0].output_masked and (graph or models[0].steps()[2][1] == fuse)   # BN's step takes the ReLU
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_layer_that_drops_the_mask_warns_as_keras_once_when_the_model_is_built():
    with pytest.warns(UserWarning, match="Layer 'drops' \\(of type Flatten\\) was passed an input with a mask"):
        model = nnscratch.Sequential([nnscratch.Input((4,)), Embedding(5, 3, mask_zero=True),
                                      LSTM(2, return_sequences=True), Flatten(name="drops"), Dense(1)])
    assert not model.output_masked
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(np.array([[1, 2, 0, 0]]), verbose=0)
        nnscratch.Sequential([nnscratch.Input((4,)), Embedding(5, 3), LSTM(2, return_sequences=True), Flatten()])


def test_fit_evaluate_and_predict_take_a_masked_output():
    model = nnscratch.Sequential([nnscratch.Input((4,)), Embedding(5, 3, mask_zero=True),
                                  LSTM(2, return_sequences=True), Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.array([[1, 2, 0, 0]]), np.zeros((1, 4, 1))
    assert model.predict(x, verbose=0).shape == (1, 4, 1)
    assert model.output_mask.tolist() == [[True, True, False, False]]
    model.fit(x, y, verbose=0)
    assert np.isfinite(model.evaluate(x, y, verbose=0))   # the loss of the two valid steps (tests/test_masked_loss.py)


def keras_merge_mask(kind, inputs, masks, axis=-1):
    """Keras 3.15's ``compute_mask`` of the merge layers, written out (``base_merge.py``, ``concatenate.py``)."""
    if kind == "dot" or all(m is None for m in masks):
        return None
    if kind == "elementwise":
        if any(m is None for m in masks):
            return None
        out = masks[0]
        for m in masks[1:]:
            out = out | m
        return out
    spread = [np.ones(x.shape, bool) if m is None else (m[..., None] | np.zeros(x.shape, bool))
              for x, m in zip(inputs, masks)]
    return np.concatenate(spread, axis=axis).any(axis=-1)


def test_merge_layers_join_masks_by_keras_rules():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((2, 3, 5, 4))
    ma, mb = rng.random((2, 3, 5)) < 0.5
    for layer, kind, axis in ((nnscratch.layers.Add(), "elementwise", -1),
                              (nnscratch.layers.Maximum(), "elementwise", -1),
                              (nnscratch.layers.Multiply(), "elementwise", -1),
                              (nnscratch.layers.Concatenate(), "concatenate", -1),
                              (nnscratch.layers.Concatenate(axis=1), "concatenate", 1),
                              (nnscratch.layers.Dot(axes=2), "dot", -1)):
        for masks in ([ma, mb], [ma, None], [None, None]):
            got = layer.compute_mask([a, b], masks)
            expected = keras_merge_mask(kind, [a, b], masks, axis)
            assert (got is None) == (expected is None), (layer, masks)
            if expected is not None:
                np.testing.assert_array_equal(got, expected)
            assert layer.output_masked([m is not None for m in masks]) == (expected is not None)


def keras_extremum(op, inputs, masks):
    """Keras 3.15's ``Merge._apply_merge_op_and_or_mask`` (Maximum, Minimum), written out."""
    output = output_mask = None
    for x, m in zip(inputs, masks):
        m = None if m is None else np.broadcast_to(m[..., None], x.shape)
        if output is None:
            output, output_mask = x, m
            continue
        if m is not None:
            x = np.where(m, x, output)
        if output_mask is not None:
            output = np.where(output_mask, output, x)
        output_mask = output_mask | m if m is not None and output_mask is not None else None
        output = op(output, x)
    return output


def keras_multiply(inputs, masks):
    """Keras 3.15's ``Multiply._merge_function`` with masks, written out."""
    every = all(m is not None for m in masks)
    output = output_mask = None
    for x, m in zip(inputs, masks):
        if m is not None:
            m = np.broadcast_to(m[..., None], x.shape)
            x = np.where(m, x, 1.0)
            if every:
                output_mask = m if output_mask is None else output_mask | m
        output = x if output is None else output * x
    return np.where(output_mask, output, 0.0) if every else output


@pytest.mark.parametrize("kind, merge", [(nnscratch.layers.Maximum, lambda xs, ms: keras_extremum(np.maximum, xs, ms)),
                                         (nnscratch.layers.Minimum, lambda xs, ms: keras_extremum(np.minimum, xs, ms)),
                                         (nnscratch.layers.Multiply, keras_multiply)],
                         ids=["maximum", "minimum", "multiply"])
def test_the_merges_that_read_masks_compute_and_differentiate_as_keras(kind, merge):
    rng = np.random.default_rng(9)
    inputs = list(rng.standard_normal((3, 4, 5, 2)))
    valid = rng.random((3, 4, 5)) < 0.5
    valid[:, 0, 0] = False                                   # a step where no input is valid
    for masks in ([valid[0], valid[1], valid[2]], [valid[0], None, valid[2]], [None, valid[1], None]):
        layer = kind()
        layer.build([x.shape[1:] for x in inputs])
        y = layer.forward(inputs, training=True, mask=masks)
        np.testing.assert_allclose(y, merge(inputs, masks), rtol=1e-15)
        g = rng.standard_normal(y.shape)
        for x, grad in zip(inputs, layer.backward(g)):       # (no ties for the maximum and minimum here)
            numeric = numerical_gradient(lambda: float(np.sum(g * layer.forward(inputs, mask=masks))), x, 1e-6)
            np.testing.assert_allclose(grad, numeric, atol=1e-8)


def branching_tagger(merge, steps=6, mask_zero=True):
    """Embedding -> (LSTM, GRU) -> ``merge`` -> Dense: a tagger that branches, ``merge`` a merge layer's class."""
    inputs = nnscratch.Input((steps,))
    embedded = Embedding(9, 4, mask_zero=mask_zero)(inputs)
    joined = merge()([LSTM(3, return_sequences=True)(embedded), GRU(3, return_sequences=True)(embedded)])
    return nnscratch.Model(inputs, Dense(2)(joined))


@pytest.mark.parametrize("merge", [nnscratch.layers.Add, nnscratch.layers.Concatenate], ids=["add", "concatenate"])
def test_a_branching_model_carries_the_mask_through_its_merge_and_trains_on_the_valid_steps(merge, tmp_path):
    rng = np.random.default_rng(7)
    x = padded_indices(rng)
    model = branching_tagger(merge)
    assert model.graph is not None and model.output_masked
    outputs = model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.output_mask, x != 0)
    for row, output in zip(x, outputs):      # each row's valid steps as that sequence alone
        words = row[row != 0]
        alone = branching_tagger(merge, steps=len(words), mask_zero=False)
        alone.set_weights(model.get_weights())
        np.testing.assert_allclose(output[:len(words)], alone.predict(words[None], verbose=0)[0],
                                   rtol=1e-5, atol=1e-6)
    y = rng.standard_normal((12, 6, 2))
    model.compile(nnscratch.optimizers.SGD(0.1), "mse")
    loss = model.evaluate(x, y, batch_size=12, verbose=0)
    mask = x != 0
    assert loss == pytest.approx(((outputs - y) ** 2).mean(axis=-1)[mask].mean(), rel=1e-5)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "branching.npz")
    loaded = load_model(tmp_path / "branching.npz")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.evaluate(x, y, batch_size=12, verbose=0) == model.evaluate(x, y, batch_size=12, verbose=0)


def test_a_merge_with_an_unmasked_input_or_a_dot_product_ends_or_widens_the_mask_as_in_keras():
    inputs = nnscratch.Input((6,))
    embedded = Embedding(9, 4, mask_zero=True)(inputs)
    plain = Dense(4)(Embedding(9, 4)(inputs))
    assert not nnscratch.Model(inputs, nnscratch.layers.Add()([embedded, plain])).output_masked
    widened = nnscratch.Model(inputs, nnscratch.layers.Concatenate()([embedded, plain]))
    widened.predict(padded_indices(np.random.default_rng(8)), verbose=0)
    assert widened.output_masked and widened.output_mask.all()      # the unmasked input counts everywhere
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                # Dot ends the mask without a warning
        assert not nnscratch.Model(inputs, nnscratch.layers.Dot(axes=2)([embedded, plain])).output_masked


def test_bad_masks_and_mask_arguments_are_refused():
    layer = LSTM(2)
    layer.build((3, 2))
    x = np.zeros((2, 3, 2), np.float32)
    for mask in (np.ones((2, 3)), np.ones((2, 4), bool)):
        with pytest.raises(ValueError, match=r"a mask must be booleans of shape \(2, 3\)"):
            layer.forward(x, mask=mask)
    with pytest.raises(ValueError, match="takes sequences of indices"):
        Embedding(5, 3, mask_zero=True).build((4, 2))
    with pytest.raises(TypeError, match="mask_value must be a number"):
        Masking("0")
    with pytest.raises(TypeError, match="reads no mask"):
        check_layer(Dense(2), input_shape=(2, 3), mask=np.ones((2, 3), bool))
