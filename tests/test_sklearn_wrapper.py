"""nnscratch.sklearn.NNClassifier: a scikit-learn estimator around nnscratch models."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

import nnscratch
from nnscratch import zoo
from nnscratch.callbacks import EarlyStopping
from nnscratch.layers import Dense, Flatten
from nnscratch.sklearn import NNClassifier, build_model, limit_threads


def tiny_mlp(units=16, n_classes=10, loss="categorical_crossentropy"):
    """A small model for 8x8 digits (module level: picklable)."""
    inputs = nnscratch.Input((8, 8, 1))
    x = Flatten()(inputs)
    x = Dense(units, activation="relu")(x)
    outputs = Dense(n_classes, activation="softmax")(x)
    model = nnscratch.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.images.astype(np.float32)[..., None], data.target


def test_init_stores_params_and_get_params_lists_them():
    clf = NNClassifier(tiny_mlp, epochs=3, batch_size=16, seed=7, build__units=8)
    params = clf.get_params()
    assert params["build_fn"] is tiny_mlp
    assert params["epochs"] == 3 and params["batch_size"] == 16 and params["seed"] == 7
    assert params["build__units"] == 8
    assert clf.build_params == {"units": 8}
    assert not hasattr(clf, "model_")


def test_unknown_keyword_is_rejected():
    with pytest.raises(TypeError, match="build__"):
        NNClassifier(tiny_mlp, units=8)


def test_set_params_routes_build_params_and_validates_others():
    clf = NNClassifier(tiny_mlp)
    assert clf.set_params(epochs=2, build__units=32) is clf
    assert clf.epochs == 2 and clf.build_params == {"units": 32}
    with pytest.raises(ValueError):
        clf.set_params(no_such_param=1)


def test_clone_gives_an_unfitted_copy_with_equal_params(digits):
    x, y = digits
    callbacks = [EarlyStopping(monitor="loss", patience=1)]
    clf = NNClassifier(tiny_mlp, epochs=1, seed=0, callbacks=callbacks, build__units=8).fit(x[:100], y[:100])
    copy = clone(clf)
    assert not hasattr(copy, "model_")
    assert copy.build_fn is tiny_mlp and copy.build_params == {"units": 8} and copy.seed == 0
    assert copy.callbacks is not callbacks and isinstance(copy.callbacks[0], EarlyStopping)
    assert callbacks[0].model is None  # fit used a copy, the given callbacks are untouched
    assert "build__units=8" in repr(copy)


def test_fit_predict_proba_rows_sum_to_one(digits):
    x, y = digits
    clf = NNClassifier(tiny_mlp, epochs=2, batch_size=32, seed=1, scale=16).fit(x[:400], y[:400])
    proba = clf.predict_proba(x[400:500])
    assert proba.shape == (100, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(clf.predict(x[400:500])) <= set(range(10))
    assert 0.0 <= clf.score(x[400:500], y[400:500]) <= 1.0
    assert clf.n_features_in_ == 64
    assert len(clf.history_["loss"]) == 2


def test_flat_inputs_are_reshaped_to_the_model_input(digits):
    x, y = digits
    flat = x.reshape(len(x), -1)
    a = NNClassifier(tiny_mlp, seed=3).fit(flat[:200], y[:200]).predict_proba(flat[200:260])
    b = NNClassifier(tiny_mlp, seed=3).fit(x[:200], y[:200]).predict_proba(x[200:260])
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="cannot be reshaped"):
        NNClassifier(tiny_mlp).fit(np.zeros((10, 7)), np.arange(10))


def test_non_contiguous_and_string_labels_keep_their_classes(digits):
    x, _ = digits
    x = x[:90]
    y = np.repeat([3, 7, 42], 30)
    clf = NNClassifier(tiny_mlp, epochs=1, seed=0, build__n_classes=3).fit(x, y)
    np.testing.assert_array_equal(clf.classes_, [3, 7, 42])
    assert set(clf.predict(x)) <= {3, 7, 42}
    assert clf.predict_proba(x).shape == (90, 3)
    names = np.array(["cat", "dog", "emu"])[np.repeat([0, 1, 2], 30)]
    clf = NNClassifier(tiny_mlp, epochs=1, seed=0, build__n_classes=3).fit(x, names)
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    assert set(clf.predict(x)) <= {"cat", "dog", "emu"}


def test_sparse_loss_gets_integer_labels(digits):
    x, y = digits
    clf = NNClassifier(tiny_mlp, epochs=1, seed=0, build__loss="sparse_categorical_crossentropy")
    assert clf.fit(x[:128], y[:128]).predict(x[:10]).shape == (10,)


def test_mismatched_output_units_raise(digits):
    x, y = digits
    with pytest.raises(ValueError, match="3 classes .* 10 output units"):
        NNClassifier(tiny_mlp).fit(x[:90], np.repeat([0, 1, 2], 30))


def test_predict_before_fit_raises(digits):
    with pytest.raises(NotFittedError):
        NNClassifier(tiny_mlp).predict(digits[0][:2])


def test_same_seed_same_model_and_pickle_roundtrip(digits):
    x, y = digits
    a = NNClassifier(tiny_mlp, epochs=2, seed=5).fit(x[:300], y[:300])
    b = NNClassifier(tiny_mlp, epochs=2, seed=5).fit(x[:300], y[:300])
    c = NNClassifier(tiny_mlp, epochs=2, seed=6).fit(x[:300], y[:300])
    np.testing.assert_array_equal(a.predict_proba(x[300:400]), b.predict_proba(x[300:400]))
    assert not np.array_equal(a.predict_proba(x[300:400]), c.predict_proba(x[300:400]))
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.predict_proba(x[300:400]), a.predict_proba(x[300:400]))


def test_cross_validate_with_kfold_on_sklearn_digits(digits):
    x, y = digits
    clf = NNClassifier(tiny_mlp, epochs=2, batch_size=32, seed=0, scale=16, build__units=32)
    cv = KFold(3, shuffle=True, random_state=0)
    first = cross_validate(clf, x, y, cv=cv, scoring=["accuracy", "f1_macro"])
    again = cross_validate(clf, x, y, cv=cv, scoring=["accuracy", "f1_macro"])
    assert first["test_accuracy"].shape == (3,)
    assert first["test_accuracy"].mean() > 0.5  # learns something in 2 epochs
    np.testing.assert_array_equal(first["test_accuracy"], again["test_accuracy"])


def test_cross_validate_in_parallel_processes_matches_sequential(digits):
    x, y = digits
    x, y = x[:600], y[:600]
    clf = NNClassifier(zoo.uci_cnn, epochs=1, batch_size=64, seed=0, scale=16, threads=1)
    cv = KFold(2, shuffle=True, random_state=1)
    sequential = cross_validate(clf, x, y, cv=cv)["test_score"]
    parallel = cross_validate(clf, x, y, cv=cv, n_jobs=2)["test_score"]
    np.testing.assert_array_equal(sequential, parallel)


def test_grid_search_over_a_build_param(digits):
    x, y = digits
    clf = NNClassifier(tiny_mlp, epochs=1, batch_size=32, seed=0, scale=16)
    search = GridSearchCV(clf, {"build__units": [4, 32]}, cv=2).fit(x[:600], y[:600])
    assert search.best_params_["build__units"] in (4, 32)
    assert list(search.cv_results_["param_build__units"]) == [4, 32]
    assert search.best_estimator_.model_.layers[1].units == search.best_params_["build__units"]
    assert search.predict(x[600:610]).shape == (10,)


def test_build_model_seeds_initial_weights():
    a = build_model(tiny_mlp, 11, units=4).get_weights()
    b = build_model(tiny_mlp, 11, units=4).get_weights()
    c = build_model(tiny_mlp, 12, units=4).get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a[0], c[0])


def test_limit_threads_restores_numba_threads():
    import numba

    before = numba.get_num_threads()
    with limit_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with pytest.raises(ValueError):
        with limit_threads(0):
            pass
