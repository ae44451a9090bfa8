"""A MaxPooling2D takes the backward of the ReLU before it: kernels and model, bit for bit the two steps."""

import numpy as np
import pytest

import nnscratch
from nnscratch import zoo
from nnscratch.kernels import fast, reference
from nnscratch.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D

TWINS = [reference, fast]


@pytest.mark.parametrize("twin", TWINS, ids=["reference", "fast"])
@pytest.mark.parametrize("geometry, hw", [((2, 2, 2, 2, 0, 0), (7, 8)), ((3, 3, 3, 3, 1, 1), (8, 8)),
                                          ((2, 2, 1, 1, 0, 0), (5, 6))], ids=["tiling", "padded", "overlapping"])
def test_pooling_backward_through_relu_is_relu_backward_after_it(twin, geometry, hw):
    rng = np.random.default_rng(sum(hw))
    kh, kw, sh, sw, pt, pl = geometry
    h = np.maximum(rng.standard_normal((2, *hw, 4)), 0).astype(np.float32)  # ReLU outputs: many tied zeros
    out = ((hw[0] + 2 * pt - kh) // sh + 1, (hw[1] + 2 * pl - kw) // sw + 1)
    y, argmax = twin.maxpool2d_forward(h, *geometry, *out)
    g = rng.standard_normal(y.shape).astype(np.float32)
    g[0, 0, 0, :2] = -0.0
    # the twin's own two steps (overlapping windows add up in another order in each twin)
    expected = twin.activation_backward(twin.maxpool2d_backward(g, argmax, h.shape, *geometry), h, "relu")
    fused = twin.maxpool2d_backward(g, argmax, h.shape, *geometry, relu_output=y)
    assert fused.tobytes() == expected.tobytes()


def _model(fuse):
    nnscratch.set_random_seed(4)
    model = nnscratch.Sequential([
        nnscratch.Input((9, 9, 1)),
        Conv2D(4, 3, activation="relu"), MaxPooling2D(),           # fused
        Conv2D(3, 2), Activation("relu"), MaxPooling2D(),          # Activation("relu") + pool: fused
        Flatten(), Dense(3, activation="softmax"),
    ])
    model.fuse_relu_maxpool = fuse
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def test_model_finds_the_pairs():
    assert _model(True).poolings_through_relu() == {1, 4}
    assert _model(False).poolings_through_relu() == set()
    assert zoo.deep_cnn().poolings_through_relu() == set()  # its ReLUs are fused into batch norms


def test_training_is_bit_identical_with_and_without_the_fusion(monkeypatch):
    calls = []
    original = MaxPooling2D.backward

    def spy(self, grad, relu=False):
        calls.append(relu)
        return original(self, grad, relu=relu)

    monkeypatch.setattr(MaxPooling2D, "backward", spy)
    rng = np.random.default_rng(0)
    x = rng.random((16, 9, 9, 1), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)]
    weights = []
    for fuse in (True, False):
        model = _model(fuse)
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=1)
        weights.append(model.get_weights())
        assert set(calls) == {fuse}
        calls.clear()
    assert all(a.tobytes() == b.tobytes() for a, b in zip(*weights))
