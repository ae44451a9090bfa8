"""select_k_best_pixels: constant pixels out, then SelectKBest(f_classif)."""

import numpy as np
import pytest
from sklearn.feature_selection import f_classif

from nnscratch.datasets import mnist
from nnscratch.features import PixelSelection, select_k_best_pixels

try:  # tests/ as a package, or as a plain folder on sys.path
    from tests import data_helpers as helpers
except ImportError:
    import data_helpers as helpers


def _toy(n=300, seed=0):
    """6x6 images: a constant border, a few pixels that carry the class, the rest noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.zeros((n, 6, 6))
    x[:, 1:5, 1:5] = rng.normal(size=(n, 4, 4))
    x[:, 2, 2] += 5 * y  # strongly informative
    x[:, 3, 4] -= 3 * y  # informative
    x[:, 0, 0] = 7.0  # constant, but not zero
    return x, y


def test_picks_informative_pixels_and_zeroes_constant_ones():
    x, y = _toy()
    selection = select_k_best_pixels(x, y, k=2)
    assert isinstance(selection, PixelSelection)
    assert selection.indices.tolist() == [2 * 6 + 2, 3 * 6 + 4]
    assert selection.n_nonconstant == 16
    assert selection.scores_map.shape == (6, 6)
    border = np.ones((6, 6), bool)
    border[1:5, 1:5] = False
    assert (selection.scores_map[border] == 0).all() and (selection.scores_map[~border] > 0).all()


def test_scores_are_f_classif_of_the_varying_pixels():
    x, y = _toy()
    selection = select_k_best_pixels(x.reshape(len(x), -1), y, k=5)  # flat input works too
    flat = x.reshape(len(x), -1)
    varying = np.flatnonzero(flat.std(axis=0) > 0)
    np.testing.assert_allclose(selection.scores_map.ravel()[varying], f_classif(flat[:, varying], y)[0])
    top = varying[np.argsort(f_classif(flat[:, varying], y)[0])[-5:]]
    assert selection.indices.tolist() == sorted(top.tolist())


def test_transform_keeps_selected_pixels():
    x, y = _toy()
    selection = select_k_best_pixels(x, y, k=3)
    np.testing.assert_array_equal(selection.transform(x), x.reshape(len(x), -1)[:, selection.indices])


@pytest.mark.parametrize("k", [0, 17, 2.5, True])
def test_bad_k(k):
    x, y = _toy()
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 16\]"):
        select_k_best_pixels(x, y, k=k)


def test_bad_shapes():
    x, y = _toy()
    with pytest.raises(ValueError, match=r"got shape \(300, 35\)"):
        select_k_best_pixels(x.reshape(300, -1)[:, :35], y)
    with pytest.raises(ValueError, match=r"y must have shape \(300,\)"):
        select_k_best_pixels(x, y[:-1], k=2)


def test_real_mnist_717_nonconstant_pixels(tmp_path, monkeypatch):
    folder = helpers.require_shared("mnist")
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path / "cache"))
    (x_train, y_train), _ = mnist.load_data(path=folder, mirrors=[])
    selection = select_k_best_pixels(x_train[:54000], y_train[:54000], k=196)
    assert selection.n_nonconstant == 717
    assert selection.indices.shape == (196,) and (np.diff(selection.indices) > 0).all()
    assert selection.scores_map.shape == (28, 28) and (selection.scores_map == 0).sum() == 784 - 717
    chosen = selection.scores_map.ravel()[selection.indices]
    assert chosen.min() >= np.sort(selection.scores_map.ravel())[-196]
