"""Global settings: the float type used for weights and activations.

Training runs in float32 (fast, what Keras uses); gradient checks switch to
float64 so that central differences are accurate to ~1e-10.
"""

import numpy as np

__all__ = ["floatx", "set_floatx", "cast_to_floatx"]

_ALLOWED = ("float32", "float64")
_floatx = "float32"


def floatx() -> str:
    """Return the default float type as a string, ``"float32"`` unless changed."""
    return _floatx


def set_floatx(value: str) -> None:
    """Set the float type of new weights and of data fed to models.

    Parameters
    ----------
    value : {"float32", "float64"}
    """
    global _floatx
    if not isinstance(value, str) or value not in _ALLOWED:
        raise ValueError(f"floatx must be one of {_ALLOWED}, got {value!r}")
    _floatx = value


def cast_to_floatx(x) -> np.ndarray:
    """Return ``x`` as a NumPy array of the current float type (no copy if it already is)."""
    return np.asarray(x, dtype=_floatx)
