"""Pixel selection for the "optimized" MNIST model: the k most class-informative pixels.

Pixels that never change over the training images carry no information (and
make the ANOVA F-test divide by zero), so they are removed first; the rest are
ranked by scikit-learn's ``SelectKBest(f_classif)``.
"""

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PixelSelection", "select_k_best_pixels"]


@dataclass(frozen=True)
class PixelSelection:
    """The result of :func:`select_k_best_pixels`.

    Attributes
    ----------
    indices : ndarray of int, shape (k,)
        The selected pixels as sorted flat indices into ``H * W`` (784 for MNIST).
    scores_map : ndarray of float64, shape (H, W)
        The ANOVA F-score of every pixel, 0 for constant pixels.
    n_nonconstant : int
        How many pixels vary over the images given.
    """

    indices: np.ndarray
    scores_map: np.ndarray
    n_nonconstant: int

    def transform(self, x):
        """Keep the selected pixels: ``(N, H, W)`` or ``(N, H*W)`` images -> ``(N, k)``."""
        x = np.asarray(x)
        return x.reshape(len(x), -1)[:, self.indices]


def _as_flat_images(x):
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim == 3:
        return x.reshape(len(x), -1), x.shape[1:]
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side == x.shape[1]:
            return x, (side, side)
    raise ValueError(f"x must be images of shape (N, H, W) or square images flattened to "
                     f"(N, H*W) such as (N, 784), got shape {x.shape}")


def select_k_best_pixels(x, y, k=196):
    """Drop constant pixels, then keep the ``k`` with the highest ANOVA F-score.

    Parameters
    ----------
    x : array_like, shape (N, 28, 28) or (N, 784)
        Training images (any square size works).
    y : array_like, shape (N,)
        Class labels.
    k : int
        How many pixels to keep, at most the number of non-constant pixels.

    Returns
    -------
    PixelSelection
        ``indices`` (sorted), ``scores_map`` and ``n_nonconstant``.
    """
    from sklearn.feature_selection import SelectKBest, f_classif

    flat, image_shape = _as_flat_images(x)
    y = np.asarray(y)
    if y.shape != (len(flat),):
        raise ValueError(f"y must have shape ({len(flat)},) to match x, got {y.shape}")
    varying = np.flatnonzero(flat.min(axis=0) != flat.max(axis=0))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(varying):
        raise ValueError(f"k must be an integer in [1, {len(varying)}] (the non-constant "
                         f"pixels), got {k!r}")
    selector = SelectKBest(f_classif, k=int(k)).fit(flat[:, varying], y)
    scores = np.zeros(flat.shape[1])
    scores[varying] = selector.scores_
    indices = np.sort(varying[selector.get_support(indices=True)])
    return PixelSelection(indices=indices, scores_map=scores.reshape(image_shape),
                          n_nonconstant=len(varying))
