"""Optimizer-update kernels, NumPy reference twin (written to be read).

One kernel, :func:`adam_update`, does Adam's in-place update of one weight
array and its two moment arrays. Its Numba twin with the same name and
signature lives in :mod:`nnscratch.kernels.optimizer_fast`, and the two give
**bit-identical** results: both round every operation to the dtype of the
weights, in the same order, so switching backend never changes a trained model.

Each line below is one pass over the arrays (NumPy cannot do better without
temporaries); the Numba twin does all of them in a single pass, which is what
makes it faster -- the arithmetic is the same.
"""

import numpy as np

__all__ = ["check_adam_inputs", "adam_update", "flush_subnormals"]


def flush_subnormals(array):
    """Set the subnormal numbers of ``array`` (0 < |x| < the dtype's smallest normal) to 0, in place.

    An optimizer's moments decay geometrically where the gradient stays 0 (a
    dead ReLU unit, an input pixel that is black in every image): after some
    hundred steps they become subnormal, and there they stay, since
    ``m + (0 - m)(1 - beta)`` rounds back to ``m`` for the smallest ones. Every
    arithmetic operation on a subnormal number takes a slow path on many CPUs
    (about a hundred times slower on Intel's; it made the basic MLP's Adam step
    15x slower). The CPU's flush-to-zero mode would do the same for every
    operation, but it is a per-thread setting NumPy does not expose. Flushing
    changes no weight: a step ``alpha m / (sqrt(v) + eps)`` with such an ``m``
    is below half a unit in the last place of any weight larger than about
    1e-25 (float32), and ``sqrt(v)`` of such a ``v`` is lost against ``eps``.
    NaN and infinity are kept.
    """
    array[np.abs(array) < np.finfo(array.dtype).tiny] = 0


def check_adam_inputs(value, grad, m, v, v_hat):
    """Check that all arrays share one float dtype and one shape (shared by both twins)."""
    arrays = {"grad": grad, "m": m, "v": v}
    if v_hat is not None:
        arrays["v_hat"] = v_hat
    if not isinstance(value, np.ndarray) or value.dtype not in (np.float32, np.float64):
        raise TypeError(f"value must be a float32 or float64 array, got {getattr(value, 'dtype', type(value))}")
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray) or array.dtype != value.dtype or array.shape != value.shape:
            raise ValueError(
                f"{name} must be a {value.dtype} array of shape {value.shape}, got "
                f"{getattr(array, 'dtype', type(array).__name__)} {getattr(array, 'shape', '')}")
    for name, array in {"value": value, "m": m, "v": v, **({"v_hat": v_hat} if v_hat is not None else {})}.items():
        if not array.flags.c_contiguous or not array.flags.writeable:
            raise ValueError(f"{name} is updated in place and must be a writeable C-contiguous array")


def adam_update(value, grad, m, v, v_hat, alpha, beta_1, beta_2, epsilon):
    r"""One Adam step on one weight array, in place.

    .. math::

        m &\leftarrow m + (1 - \beta_1)(g - m) \\
        v &\leftarrow v + (1 - \beta_2)(g^2 - v) \\
        m, v &\leftarrow 0 \text{ where } |m|, |v| < \text{the smallest normal float} \\
        \hat v &\leftarrow \max(\hat v, v) \quad \text{(AMSGrad only)} \\
        w &\leftarrow w - \alpha \, \frac{m}{\sqrt{v} + \epsilon}

    (:math:`m + (1-\beta_1)(g - m)` equals :math:`\beta_1 m + (1-\beta_1) g`;
    with AMSGrad the denominator uses :math:`\hat v`.)

    Parameters
    ----------
    value, grad, m, v : ndarray, one shape, one dtype (float32 or float64)
        The weights, their gradient and the two moments; ``value``, ``m`` and
        ``v`` are updated in place.
    v_hat : ndarray or None
        The running maximum of ``v`` (AMSGrad), updated in place; None for plain Adam.
    alpha : float
        The step size with both bias corrections folded in (see ``Adam``).
    beta_1, beta_2, epsilon : float
        The scalars are rounded to the arrays' dtype before use.
    """
    check_adam_inputs(value, grad, m, v, v_hat)
    tmp = np.empty_like(grad)  # the one scratch array of this step
    # m <- m + (1 - b1)(g - m)
    np.subtract(grad, m, out=tmp)
    tmp *= 1.0 - beta_1
    m += tmp
    # v <- v + (1 - b2)(g^2 - v)
    np.square(grad, out=tmp)
    tmp -= v
    tmp *= 1.0 - beta_2
    v += tmp
    flush_subnormals(m)  # moments that decayed below the smallest normal float become 0
    flush_subnormals(v)
    if v_hat is not None:
        v = np.maximum(v_hat, v, out=v_hat)
    # w <- w - alpha m / (sqrt(v) + eps)
    np.sqrt(v, out=tmp)
    tmp += epsilon
    np.divide(m, tmp, out=tmp)
    tmp *= alpha
    value -= tmp
