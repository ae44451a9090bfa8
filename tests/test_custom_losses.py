"""A loss of your own (docs/custom_layers.md): per_position and gradient, trained with, saved and loaded with
custom_objects, and the error when the class is missing."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.gradcheck import numerical_gradient, relative_error
from nnscratch.layers import Dense
from nnscratch.losses import Loss
from nnscratch.models.saving import load_model

try:
    from tests.grad_strategies import TOLERANCE, batch_sizes, rng_seeds
except ImportError:  # tests/ itself is on sys.path
    from grad_strategies import TOLERANCE, batch_sizes, rng_seeds


class MeanPowerError(Loss):
    """``mean |p - t|^power`` over the last axis; its gradient ``power |e|^(power-1) sign(e) / size``."""

    name = "mean_power_error"

    def __init__(self, power=4.0, **kwargs):
        super().__init__(**kwargs)
        self.power = float(power)

    def arguments(self):
        return {"power": self.power}

    def per_position(self, y_true, y_pred):
        return (np.abs(y_pred - y_true) ** self.power).mean(axis=-1)

    def gradient(self, y_true, y_pred):
        error = y_pred - y_true
        return self.power * np.abs(error) ** (self.power - 1) * np.sign(error) / y_pred.size


@given(n=batch_sizes(), k=st.integers(1, 4), power=st.sampled_from([2.0, 3.0, 4.0]), seed=rng_seeds())
def test_its_gradient_is_the_slope_of_the_batch_mean(n, k, power, seed):
    rng = np.random.default_rng(seed)
    t, p = rng.standard_normal((2, n, k))
    loss = MeanPowerError(power)
    numeric = numerical_gradient(lambda: loss(t, p), p, h=1e-6)
    assert relative_error(loss.gradient(t, p), numeric).max(initial=0) < TOLERANCE


def test_a_model_trains_with_it_saves_and_loads_it_back(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    nnscratch.set_random_seed(2)
    model = nnscratch.Sequential([nnscratch.Input((3,)), Dense(1)])
    model.compile(nnscratch.optimizers.SGD(0.02), MeanPowerError(power=3.0))
    history = model.fit(x, y, epochs=10, batch_size=16, verbose=0, seed=1).history
    assert history["loss"][-1] < 0.2 * history["loss"][0]
    model.save(tmp_path / "power.npz")
    loaded = load_model(tmp_path / "power.npz", custom_objects={"MeanPowerError": MeanPowerError})
    assert isinstance(loaded.loss, MeanPowerError) and loaded.loss.power == 3.0
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-12)
    with pytest.raises(ValueError, match="a loss of your own needs load_model"):
        load_model(tmp_path / "power.npz")
    assert load_model(tmp_path / "power.npz", compile=False).loss is None
