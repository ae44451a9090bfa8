"""Models: the layer chain, the training loop, saving."""

from nnscratch.models.model import Model
from nnscratch.models.saving import load_model
from nnscratch.models.sequential import Sequential

__all__ = ["Model", "Sequential", "load_model"]
