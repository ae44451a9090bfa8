"""A scikit-learn classifier around nnscratch models.

:class:`NNClassifier` wraps a function that builds a compiled model, so that
scikit-learn's model selection works with nnscratch::

    from sklearn.model_selection import KFold, cross_validate
    from nnscratch import zoo
    from nnscratch.sklearn import NNClassifier

    clf = NNClassifier(zoo.uci_cnn, epochs=100, batch_size=128, seed=42)
    scores = cross_validate(clf, x, y, cv=KFold(5, shuffle=True, random_state=42), n_jobs=2)

Parameters of the build function are routed with a ``build__`` prefix, as
scikeras routes ``model__``: ``NNClassifier(zoo.basic_mlp, build__units=128)``
calls ``zoo.basic_mlp(units=128)``, and ``GridSearchCV(clf, {"build__units":
[128, 256]})`` searches over it.

The estimator follows scikit-learn's rules: ``__init__`` only stores its
arguments, everything learnt ends in ``_`` (``model_``, ``classes_``,
``history_``), and ``clone`` gives an unfitted copy with the same parameters.
For ``joblib`` (``n_jobs > 1``) the build function must be picklable: a
module-level function such as :func:`nnscratch.zoo.uci_cnn`, not a lambda.
"""

import copy
import threading
from contextlib import contextmanager, nullcontext

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from nnscratch.config import floatx
from nnscratch.preprocessing.arrays import to_categorical
from nnscratch.rng import set_random_seed

__all__ = ["NNClassifier", "build_model", "limit_threads"]

BUILD_PREFIX = "build__"

# set_random_seed + build must not interleave between threads (a threaded
# joblib or Dask worker): the library's root seed is process-global.
_BUILD_LOCK = threading.Lock()


def build_model(build_fn, seed=None, **build_params):
    """Call ``build_fn(**build_params)``, after ``set_random_seed(seed)`` when a seed is given.

    The two steps run under a process-wide lock, so models built at the same
    time in several threads each get the initial weights of their seed.
    Note that a seed resets the library's global seed, as
    :func:`nnscratch.set_random_seed` does.
    """
    if seed is None:
        return build_fn(**build_params)
    with _BUILD_LOCK:
        set_random_seed(seed)
        return build_fn(**build_params)


@contextmanager
def limit_threads(threads):
    """Limit BLAS (threadpoolctl) and Numba threads to ``threads`` inside the block.

    ``None`` changes nothing. Meant for parallel workers, where one thread per
    job avoids oversubscribing the cores.
    """
    if threads is None:
        yield
        return
    import numba
    from threadpoolctl import threadpool_limits

    threads = int(threads)
    if threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    previous = numba.get_num_threads()
    with threadpool_limits(limits=threads, user_api="blas"):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            yield
        finally:
            numba.set_num_threads(previous)


class NNClassifier(ClassifierMixin, BaseEstimator):
    """A scikit-learn classifier that trains an nnscratch model.

    Parameters
    ----------
    build_fn : callable
        Returns a compiled model whose last layer has one unit per class
        (e.g. :func:`nnscratch.zoo.uci_cnn`). Called with the ``build__*``
        parameters (prefix removed) at every :meth:`fit`.
    epochs, batch_size, verbose, validation_split
        Passed to ``model.fit``.
    seed : int or None
        With a seed, :meth:`fit` calls ``set_random_seed(seed)`` before building
        the model (initial weights) and ``fit(seed=seed)`` (shuffling, dropout):
        the same seed gives the same fitted model, in any process or thread.
    callbacks : list of Callback or None
        Deep-copied at each :meth:`fit`, so the objects given are never changed.
    scale : float or None
        If given, inputs are divided by it (``scale=16`` maps optdigits' 0..16
        pixel counts to [0, 1]; ``scale=255`` for 8-bit images).
    threads : int or None
        Limit BLAS and Numba threads during :meth:`fit` and prediction
        (``threads=1`` for ``n_jobs > 1``); ``None`` leaves them as they are.
    predict_batch_size : int or None
        Batch size of ``model.predict``; default ``batch_size``.
    **build_params
        ``build__<name>=value`` arguments of ``build_fn``.

    Attributes
    ----------
    model_ : Model
        The trained model.
    classes_ : ndarray
        The sorted distinct labels seen in :meth:`fit` (``LabelEncoder``
        semantics); model output ``j`` is the probability of ``classes_[j]``.
    history_ : dict
        ``model.fit(...).history``.
    n_features_in_ : int
        Number of input values per sample.

    Notes
    -----
    ``X`` may have the model's input shape, or be flattened, e.g. ``(N, 64)``
    for a model on ``(8, 8, 1)`` images: samples are reshaped to the model's
    input shape whenever the sizes agree. With a categorical loss the encoded
    labels are one-hot encoded, with ``sparse_categorical_crossentropy`` they
    are passed as integers.
    """

    def __init__(self, build_fn=None, *, epochs=1, batch_size=32, verbose=0, seed=None,
                 validation_split=0.0, callbacks=None, scale=None, threads=None,
                 predict_batch_size=None, **build_params):
        self.build_fn = build_fn
        self.epochs = epochs
        self.batch_size = batch_size
        self.verbose = verbose
        self.seed = seed
        self.validation_split = validation_split
        self.callbacks = callbacks
        self.scale = scale
        self.threads = threads
        self.predict_batch_size = predict_batch_size
        for key, value in build_params.items():
            if not key.startswith(BUILD_PREFIX) or key == BUILD_PREFIX:
                raise TypeError(f"NNClassifier got an unexpected keyword argument {key!r}; parameters "
                                f"of build_fn are given as '{BUILD_PREFIX}<name>'")
            setattr(self, key, value)

    # ------------------------------------------------------------ parameters
    def _build_param_names(self):
        return sorted(key for key in vars(self) if key.startswith(BUILD_PREFIX))

    def get_params(self, deep=True):
        """The constructor's parameters and the ``build__*`` parameters."""
        params = super().get_params(deep=deep)
        params.update({key: getattr(self, key) for key in self._build_param_names()})
        return params

    def set_params(self, **params):
        """Set parameters; ``build__<name>`` ones may be new."""
        build = {key: params.pop(key) for key in list(params) if key.startswith(BUILD_PREFIX)}
        for key, value in build.items():
            if key == BUILD_PREFIX:
                raise ValueError(f"invalid parameter {key!r}")
            setattr(self, key, value)
        return super().set_params(**params) if params else self

    @property
    def build_params(self) -> dict:
        """The keyword arguments ``build_fn`` receives."""
        return {key[len(BUILD_PREFIX):]: getattr(self, key) for key in self._build_param_names()}

    # -------------------------------------------------------------- helpers
    def _threads(self):
        return limit_threads(self.threads) if self.threads is not None else nullcontext()

    def _prepare_x(self, X, input_shape):
        X = np.asarray(X)
        if X.ndim < 2:
            raise ValueError(f"X must hold one sample per row (at least 2-D), got shape {X.shape}")
        X = X.astype(floatx(), copy=False)
        if self.scale is not None:
            X = X / np.asarray(self.scale, dtype=X.dtype)
        expected = tuple(input_shape)
        if X.shape[1:] != expected:
            if int(np.prod(X.shape[1:])) != int(np.prod(expected)):
                raise ValueError(f"X has samples of shape {X.shape[1:]}, which cannot be reshaped to "
                                 f"the model's input shape {expected}")
            X = X.reshape((len(X),) + expected)
        return X

    def _targets(self, encoded, n_classes):
        loss = self.model_.loss.name
        if loss == "sparse_categorical_crossentropy":
            return encoded
        if loss == "categorical_crossentropy":
            return to_categorical(encoded, n_classes)
        raise ValueError(f"NNClassifier needs a model compiled with categorical_crossentropy or "
                         f"sparse_categorical_crossentropy, got {loss!r}")

    # ------------------------------------------------------------------ API
    def fit(self, X, y):
        """Build a fresh model and train it on ``X`` and the labels ``y``."""
        if not callable(self.build_fn):
            raise TypeError(f"build_fn must be a callable returning a compiled model, got {self.build_fn!r}")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"y must be a 1-D array of class labels, got shape {y.shape}")
        if len(y) != len(X):
            raise ValueError(f"X and y have different lengths: {len(X)} and {len(y)}")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        with self._threads():
            model = build_model(self.build_fn, self.seed, **self.build_params)
            if getattr(model, "loss", None) is None:
                raise ValueError("build_fn must return a compiled model (call model.compile(...))")
            units = model.output_shape[-1]
            if units != len(self.classes_):
                raise ValueError(f"y has {len(self.classes_)} classes {self.classes_.tolist()[:20]} but the "
                                 f"model has {units} output units; they must be equal")
            self.model_ = model
            X = self._prepare_x(X, model.input_shape[1:])
            self.n_features_in_ = int(np.prod(X.shape[1:]))
            history = model.fit(X, self._targets(encoded.astype(np.int64), units), epochs=self.epochs,
                                batch_size=self.batch_size, verbose=self.verbose, seed=self.seed,
                                validation_split=self.validation_split,
                                callbacks=copy.deepcopy(self.callbacks))
        self.history_ = history.history
        return self

    def predict_proba(self, X):
        """Class probabilities, shape ``(N, len(classes_))``, columns in the order of ``classes_``."""
        check_is_fitted(self, "model_")
        X = self._prepare_x(X, self.model_.input_shape[1:])
        with self._threads():
            return self.model_.predict(X, batch_size=self.predict_batch_size or self.batch_size)

    def predict(self, X):
        """The most probable class of each sample (labels from ``classes_``)."""
        check_is_fitted(self, "model_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
