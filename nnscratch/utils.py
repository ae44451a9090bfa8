"""Small helpers with Keras names (``nnscratch.utils.to_categorical``)."""

from nnscratch.preprocessing.arrays import to_categorical
from nnscratch.rng import set_random_seed

__all__ = ["to_categorical", "set_random_seed"]
