"""Write a layer of your own, check its gradients, train it, save and load it (~15 s, offline).

    python examples/custom_layer.py

The layer is a Swish with a learnable slope (Ramachandran et al., 2017),
one beta a feature:

    y = x * sigmoid(beta * x)

A layer subclasses ``nnscratch.layers.Layer`` and gives four things
(docs/custom_layers.md walks through them):

* ``build(input_shape)``: create the weights with ``new_parameter``;
* ``forward(x, training)``: compute ``y``, keeping what backward needs when training;
* ``backward(grad)``: from dL/dy, write each weight's ``.grad`` and return dL/dx;
* ``get_config()``: the constructor's arguments, so that a saved model can make it again.

With s = sigmoid(beta x), the derivatives are (s' = s (1 - s))

    dy/dx    = s + beta x s (1 - s)
    dy/dbeta = x^2 s (1 - s)

and ``nnscratch.gradcheck.check_layer`` compares them with central
differences before the layer is trusted in a model.
"""

import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import nnscratch
from nnscratch.gradcheck import check_layer
from nnscratch.layers import Dense, Layer


class LearnableSwish(Layer):
    """``y = x * sigmoid(beta * x)`` with a trainable ``beta`` for each feature (the last axis)."""

    def __init__(self, beta_initial=1.0, **kwargs):
        super().__init__(**kwargs)
        self.beta_initial = float(beta_initial)
        self._cache = None

    def build(self, input_shape):
        self.beta = self.new_parameter("beta", np.full(input_shape[-1:], self.beta_initial))
        super().build(input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        s = 1.0 / (1.0 + np.exp(-self.beta.value * x))
        self._cache = (x, s) if training else None        # backward needs the input and the sigmoid
        return x * s

    def backward(self, grad_output):
        x, s = self._cache
        slope = s * (1.0 - s)                              # the sigmoid's derivative
        # beta is shared by every sample (and position): its gradient sums over them
        self.beta.grad[...] = (grad_output * x * x * slope).reshape(-1, x.shape[-1]).sum(axis=0)
        return grad_output * (s + self.beta.value * x * slope)

    def get_config(self):
        return {**super().get_config(), "beta_initial": self.beta_initial}


def check_gradients():
    """Check the layer's backward pass in float64 against central differences (a random projection as the loss)."""
    nnscratch.set_floatx("float64")
    try:
        layer = LearnableSwish(beta_initial=0.7)
        x = np.random.default_rng(0).standard_normal((4, 5))
        report = check_layer(layer, x=x)
    finally:
        nnscratch.set_floatx("float32")
    print(report)
    return report


def main(epochs=15, verbose=1):
    """Check the gradients, then train a digits classifier with the layer, save it and load it back."""
    report = check_gradients()
    assert report.passed(), "the hand-written backward pass disagrees with the numerical gradient"
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(digits.data / 16.0, digits.target, test_size=0.2,
                                                        random_state=0, stratify=digits.target)
    nnscratch.set_random_seed(0)
    model = nnscratch.Sequential([nnscratch.Input((64,)), Dense(32), LearnableSwish(name="swish"),
                                  Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, seed=0, verbose=verbose)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "swish.npz"
        model.save(path)
        loaded = nnscratch.load_model(path, custom_objects={"LearnableSwish": LearnableSwish})
    same = np.array_equal(loaded.predict(x_test, verbose=0), model.predict(x_test, verbose=0))
    betas = model.get_layer("swish").beta.value
    print(f"test accuracy {accuracy:.2%}; the 32 learned betas range from {betas.min():.2f} to {betas.max():.2f}; "
          f"the loaded model predicts the same: {same}")
    return accuracy, same


if __name__ == "__main__":
    main()
