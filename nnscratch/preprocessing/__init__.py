"""Getting data ready for a model: labels, scaling, splits and image augmentation.

* :func:`to_categorical`, :func:`scale_images`, :func:`train_val_split`
  (in :mod:`nnscratch.preprocessing.arrays`);
* :class:`ImageDataGenerator` -- random rotations, zooms and shifts, like
  Keras's, and its batch Sequence ``flow(x, y)``
  (in :mod:`nnscratch.preprocessing.image` and :mod:`nnscratch.preprocessing.flow`).
"""

from nnscratch.preprocessing.arrays import (
    SPLIT_METHODS,
    scale_images,
    to_categorical,
    train_val_split,
)
from nnscratch.preprocessing.flow import NumpyArrayIterator
from nnscratch.preprocessing.image import (
    ImageDataGenerator,
    affine_matrices,
    apply_affine_transform,
)

__all__ = [
    "to_categorical",
    "scale_images",
    "train_val_split",
    "SPLIT_METHODS",
    "ImageDataGenerator",
    "NumpyArrayIterator",
    "affine_matrices",
    "apply_affine_transform",
]
