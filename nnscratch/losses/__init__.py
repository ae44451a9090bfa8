"""Loss functions: value, gradient with respect to the prediction, and target checks.

Every loss averages per-sample values over the batch, so its gradient carries
a factor ``1/N``. Cross-entropy after a softmax layer, and binary
cross-entropy after a sigmoid layer, take a shortcut (as Keras does): the
model hands the loss the layer's *logits* ``z`` (``fused_activation`` names
the layer's activation) and gets back

.. math:: \\frac{\\partial L}{\\partial z} = \\frac{1}{N}(p - t)
          \\quad\\text{(divided by } K \\text{ too for the binary one, a mean over } K \\text{ outputs)},

computed from ``log p = z - logsumexp(z)`` (softmax) or
``max(z, 0) - z t + log(1 + exp(-|z|))`` (sigmoid), which stay finite for
any logits: no clipping, and a saturated output still learns.

With ``from_logits=True`` (as Keras) the model's output itself is the logits
``z`` (the last layer has no activation) and the loss applies the softmax or
sigmoid inside, with the same stable formulas. ``label_smoothing`` replaces
the targets by ``t (1 - s) + s / K`` (categorical, ``K`` classes) or
``t (1 - s) + s / 2`` (binary) inside the loss; the metrics still see ``t``.

The losses live in the modules of this package: :mod:`~nnscratch.losses.base`
(:class:`Loss`, ``reduction``), :mod:`~nnscratch.losses.crossentropy`,
:mod:`~nnscratch.losses.regression`, :mod:`~nnscratch.losses.probabilistic`
(KL divergence, Poisson), :mod:`~nnscratch.losses.hinge` and
:mod:`~nnscratch.losses.focal`; all are imported from here.
"""

from nnscratch.losses.base import DEFAULT_REDUCTION, EPSILON, REDUCTIONS, Loss
from nnscratch.losses.crossentropy import (
    AutoCrossentropy, BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy,
)
from nnscratch.losses.focal import BinaryFocalCrossentropy, CategoricalFocalCrossentropy
from nnscratch.losses.generalized import CategoricalGeneralizedCrossEntropy
from nnscratch.losses.overlap import Dice, Tversky
from nnscratch.losses.hinge import CategoricalHinge, Hinge, SquaredHinge
from nnscratch.losses.probabilistic import KLDivergence, Poisson
from nnscratch.losses.regression import (
    CosineSimilarity, Huber, LogCosh, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError,
    MeanSquaredLogarithmicError,
)

__all__ = [
    "Loss", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy",
    "MeanSquaredError", "MeanAbsoluteError", "Huber", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "binary_crossentropy", "mean_squared_error", "mean_absolute_error",
    "huber", "serialize", "get",
    # added with the package
    "KLDivergence", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Poisson", "Hinge",
    "SquaredHinge", "CategoricalHinge", "CosineSimilarity", "LogCosh", "CategoricalFocalCrossentropy",
    "BinaryFocalCrossentropy", "AutoCrossentropy", "kl_divergence", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "poisson", "hinge", "squared_hinge", "categorical_hinge",
    "cosine_similarity", "log_cosh", "categorical_focal_crossentropy", "binary_focal_crossentropy",
    "EPSILON", "REDUCTIONS", "DEFAULT_REDUCTION",
    "CategoricalGeneralizedCrossEntropy", "categorical_generalized_cross_entropy", "Dice", "Tversky",
]

categorical_crossentropy = CategoricalCrossentropy()
sparse_categorical_crossentropy = SparseCategoricalCrossentropy()
binary_crossentropy = BinaryCrossentropy()
mean_squared_error = MeanSquaredError()
mean_absolute_error = MeanAbsoluteError()
huber = Huber()
kl_divergence = KLDivergence()
mean_absolute_percentage_error = MeanAbsolutePercentageError()
mean_squared_logarithmic_error = MeanSquaredLogarithmicError()
poisson = Poisson()
hinge = Hinge()
squared_hinge = SquaredHinge()
categorical_hinge = CategoricalHinge()
cosine_similarity = CosineSimilarity()
log_cosh = LogCosh()
categorical_focal_crossentropy = CategoricalFocalCrossentropy()
binary_focal_crossentropy = BinaryFocalCrossentropy()
categorical_generalized_cross_entropy = CategoricalGeneralizedCrossEntropy()

_CLASSES = (CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy, MeanSquaredError,
            MeanAbsoluteError, Huber, KLDivergence, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
            Poisson, Hinge, SquaredHinge, CategoricalHinge, CosineSimilarity, LogCosh, CategoricalFocalCrossentropy,
            BinaryFocalCrossentropy, AutoCrossentropy, CategoricalGeneralizedCrossEntropy, Dice, Tversky)

#: The names ``get`` accepts, as Keras 3's ``keras.losses.get``: function names, class names, short aliases
#: (and ``"crossentropy"``/``"ce"``, which Keras's ``compile`` resolves from the shapes).
_BY_NAME = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "huber": Huber,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError,
    "poisson": Poisson,
    "hinge": Hinge,
    "squared_hinge": SquaredHinge,
    "categorical_hinge": CategoricalHinge,
    "cosine_similarity": CosineSimilarity,
    "log_cosh": LogCosh,
    "categorical_focal_crossentropy": CategoricalFocalCrossentropy,
    "binary_focal_crossentropy": BinaryFocalCrossentropy,
    "categorical_generalized_cross_entropy": CategoricalGeneralizedCrossEntropy,
    "crossentropy": AutoCrossentropy,
    "ce": AutoCrossentropy,
    **{cls.__name__: cls for cls in _CLASSES if cls is not AutoCrossentropy},
}
_BY_LOWER_NAME = {name.lower(): cls for name, cls in _BY_NAME.items()}
_BY_CONFIG_NAME = {cls.name: cls for cls in _CLASSES}   # the "name" of a get_config dict
_BY_CLASS_NAME = {cls.__name__: cls for cls in _CLASSES}


def serialize(loss: Loss) -> dict:
    """Return ``{"class_name": ..., "config": ...}`` (Keras's form), which :func:`get` accepts."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def _from_dict(identifier: dict) -> Loss:
    if "class_name" in identifier:
        cls = _BY_CLASS_NAME.get(identifier["class_name"])
        config = identifier.get("config") or {}
    else:
        cls, config = _BY_CONFIG_NAME.get(identifier.get("name")), identifier
    if cls is None:
        raise ValueError(f"unknown loss config {identifier!r}; expected {{'class_name': one of "
                         f"{sorted(_BY_CLASS_NAME)}, 'config': {{...}}}} or a get_config() dict whose 'name' is one "
                         f"of {sorted(_BY_CONFIG_NAME)}")
    return cls.from_config(config)


def get(identifier) -> Loss:
    """Return a Loss for a name, a Loss class or instance, or a config dict.

    Names are Keras 3's (any case): the function names
    (``"categorical_crossentropy"``, ``"kl_divergence"``, ``"log_cosh"``, ...),
    the aliases ``"mse"``, ``"mae"``, ``"bce"``, ``"kld"``, ``"mape"``,
    ``"msle"``, the class names (``"MeanSquaredError"``) and
    ``"crossentropy"``/``"ce"`` (the cross-entropy the shapes call for,
    :class:`AutoCrossentropy`); each gives the loss with default arguments. A
    dict is ``{"class_name": "Huber", "config": {"delta": 2.0}}``
    (:func:`serialize`) or a :meth:`Loss.get_config` dict (what a saved model
    keeps). A plain function is refused: nnscratch needs the loss's gradient,
    so write a :class:`Loss` subclass with ``per_position`` and ``gradient``.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()                                    # loss=MeanSquaredError, as Keras accepts
    if isinstance(identifier, str) and identifier.lower() in _BY_LOWER_NAME:
        return _BY_LOWER_NAME[identifier.lower()]()
    if isinstance(identifier, dict):
        return _from_dict(identifier)
    if callable(identifier) and not isinstance(identifier, str):
        raise TypeError(f"a loss function such as {getattr(identifier, '__name__', identifier)!r} cannot be used: "
                        "nnscratch needs its gradient too. Subclass nnscratch.losses.Loss and define "
                        "per_position(y_true, y_pred) (one loss a position) and gradient(y_true, y_pred)")
    raise ValueError(f"unknown loss {identifier!r}; expected one of {sorted(_BY_NAME)} or a Loss instance")
