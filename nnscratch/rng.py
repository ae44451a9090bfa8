"""The library's own random number generators.

nnscratch never touches NumPy's global random state. Everything random
(weight initialisation, dropout masks, shuffling) draws from
:class:`numpy.random.Generator` objects spawned from one root
:class:`numpy.random.SeedSequence`. :func:`set_random_seed` resets that root,
so the same seed followed by the same program gives bit-identical results.
"""

import numpy as np

__all__ = ["set_random_seed", "new_generator", "generator_from_seed"]

_root = np.random.SeedSequence()


def set_random_seed(seed: int) -> None:
    """Seed everything the library draws (like ``keras.utils.set_random_seed``).

    Parameters
    ----------
    seed : int
        A non-negative integer. Generators handed out afterwards follow a
        deterministic sequence that depends only on this seed.
    """
    global _root
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative integer, got {seed!r}")
    _root = np.random.SeedSequence(int(seed))


def new_generator() -> np.random.Generator:
    """Return a fresh Generator, the next child of the library's root seed."""
    return np.random.default_rng(_root.spawn(1)[0])


def generator_from_seed(seed, *key: int) -> np.random.Generator:
    """Return a Generator for an explicit ``seed``, or :func:`new_generator` if it is None.

    ``key`` distinguishes independent streams drawn from one user seed
    (e.g. shuffling vs dropout in one ``fit`` call).
    """
    if seed is None:
        return new_generator()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative integer or None, got {seed!r}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), *key]))
