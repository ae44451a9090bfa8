r"""Muon: momentum orthogonalised by Newton-Schulz for the 2-D weights, AdamW for the rest (Keras 3's ``Muon``)."""

import re

import numpy as np

from nnscratch.kernels.optimizer_reference import flush_subnormals
from nnscratch.optimizers.base import Optimizer, check_hyperparameter

__all__ = ["Muon", "newton_schulz5"]


def newton_schulz5(x, steps=5, a=3.4445, b=-4.7750, c=2.0315):
    r"""An approximation of :math:`U V^\top` for :math:`x = U \Sigma V^\top` (its singular values pushed towards 1).

    Scaled to Frobenius norm 1 (so every singular value is at most 1), then
    ``steps`` times :math:`X \leftarrow a X + (b A + c A^2) X` with
    :math:`A = X X^\top`, a quintic polynomial in the singular values chosen
    (by Keller Jordan) to raise small ones fast; the result has singular values
    roughly in [0.7, 1.2]. A tall matrix is transposed first, so that
    :math:`A` is the smaller square.
    """
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = x / (np.linalg.norm(x) + 1e-7)
    for _ in range(steps):
        square = x @ x.T
        x = a * x + (b * square + c * square @ square) @ x
    return x.T if tall else x


class Muon(Optimizer):
    r"""Muon with Keras 3.15's update rules and defaults.

    A weight with two axes (a ``Dense`` kernel, a recurrent kernel), unless
    excluded, takes the **Muon** step: with momentum :math:`\mu`, its
    accumulated gradient :math:`m \leftarrow \mu m + g` and, with
    ``nesterov``, :math:`u = g + \mu m` (else :math:`u = m`),

    .. math:: w \leftarrow w - \eta\, \rho \sqrt{\max(r, c)}\ \mathrm{NS}_5(u)

    where :math:`\mathrm{NS}_5` (:func:`newton_schulz5`) orthogonalises the
    update (every direction of the :math:`r \times c` matrix moves about
    equally) and :math:`\rho` is ``rms_rate`` (Moonlight's scaling, so that
    Adam's learning rate and decay suit it; ``None``: no scaling). Every
    other weight (biases, convolution kernels, batch norm's, the
    ``Embedding``'s table while ``exclude_embeddings``, and those whose path
    ``"layer/weight"`` matches a regular expression of ``exclude_layers``)
    takes an **AdamW** step with ``adam_beta_1``, ``adam_beta_2``,
    ``epsilon`` and the learning rate times ``adam_lr_ratio``:
    :math:`w \leftarrow w - \hat\eta\, m / (\sqrt v + \epsilon)`,
    :math:`\hat\eta = \eta \sqrt{1 - \beta_2^t} / (1 - \beta_1^t)`. Before the
    steps, the weights decay, :math:`w \leftarrow w - \eta \lambda w`, by
    ``weight_decay`` for the Muon weights and ``adam_weight_decay`` for the
    others (both 0.004 by default, as Keras's).

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule, default 0.001
    adam_beta_1, adam_beta_2, epsilon : the AdamW steps' (0.9, 0.999, 1e-7)
    adam_weight_decay, weight_decay : float >= 0 or None, default 0.004
    exclude_layers : list of str, optional
        Regular expressions on a weight's path that send it to AdamW.
    exclude_embeddings : bool, default True
        Send the weights whose path contains "embedding" to AdamW.
    muon_a, muon_b, muon_c : the Newton-Schulz coefficients (3.4445, -4.7750, 2.0315)
    adam_lr_ratio : float, default 1
    momentum : float in [0, 1), default 0.95
    ns_steps : int, default 5
    nesterov : bool, default True
    rms_rate : float or None, default 0.2
    clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency,
    gradient_accumulation_steps, name
        See :class:`~nnscratch.optimizers.base.Optimizer`.
    """

    default_name = "muon"

    def __init__(self, learning_rate=0.001, adam_beta_1=0.9, adam_beta_2=0.999, adam_weight_decay=0.004,
                 epsilon=1e-7, weight_decay=0.004, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, gradient_accumulation_steps=None,
                 name=None, exclude_layers=None, exclude_embeddings=True, muon_a=3.4445, muon_b=-4.7750,
                 muon_c=2.0315, adam_lr_ratio=1, momentum=0.95, ns_steps=5, nesterov=True, rms_rate=0.2):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        self.adam_beta_1 = check_hyperparameter("adam_beta_1", adam_beta_1, 0.0, 1.0, high_inclusive=False)
        self.adam_beta_2 = check_hyperparameter("adam_beta_2", adam_beta_2, 0.0, 1.0, high_inclusive=False)
        self.epsilon = check_hyperparameter("epsilon", epsilon)
        self.adam_weight_decay = None if adam_weight_decay is None else check_hyperparameter(
            "adam_weight_decay", adam_weight_decay)
        self.muon_a, self.muon_b, self.muon_c = float(muon_a), float(muon_b), float(muon_c)
        self.adam_lr_ratio = check_hyperparameter("adam_lr_ratio", adam_lr_ratio)
        self.momentum = check_hyperparameter("momentum", momentum, 0.0, 1.0, high_inclusive=False)
        if isinstance(ns_steps, bool) or not isinstance(ns_steps, (int, np.integer)) or ns_steps < 1:
            raise ValueError(f"ns_steps must be a positive integer, got {ns_steps!r}")
        self.ns_steps, self.nesterov = int(ns_steps), bool(nesterov)
        self.rms_rate = None if rms_rate is None else check_hyperparameter("rms_rate", rms_rate)
        if isinstance(exclude_layers, str) or not all(isinstance(k, str) for k in exclude_layers or []):
            raise TypeError(f"exclude_layers must be a list of regular expressions, got {exclude_layers!r}")
        self.exclude_layers, self.exclude_embeddings = list(exclude_layers or []), bool(exclude_embeddings)

    def uses_adamw(self, param) -> bool:
        """Whether ``param`` takes the AdamW step (not two axes, an embedding, or excluded by path)."""
        return (param.value.ndim != 2 or (self.exclude_embeddings and "embedding" in param.path.lower())
                or any(re.search(pattern, param.path) for pattern in self.exclude_layers))

    def slot_names(self) -> tuple:
        return ("momentum", "velocity")

    def slot_shape(self, name, param) -> tuple:
        """A Muon weight has no velocity (an empty array), as Keras's builds none."""
        return param.value.shape if name == "momentum" or self.uses_adamw(param) else (0,)

    def apply_weight_decay(self, params) -> None:
        """Keras's Muon: ``adam_weight_decay`` for the AdamW weights, ``weight_decay`` for the Muon ones."""
        for p in params:
            decay = self.adam_weight_decay if self.uses_adamw(p) else self.weight_decay
            if decay is not None and self._use_weight_decay(p):
                p.value -= p.value * (self.learning_rate * decay)

    def update_step(self, param, grad, state) -> None:
        if self.uses_adamw(param):
            self._adamw_step(param, grad, state["momentum"], state["velocity"])
        else:
            self._muon_step(param, grad, state["momentum"])

    def _muon_step(self, param, grad, m):
        m *= self.momentum
        m += grad                                       # m = mu m + g
        flush_subnormals(m)
        direction = grad + self.momentum * m if self.nesterov else m
        update = newton_schulz5(direction, self.ns_steps, self.muon_a, self.muon_b, self.muon_c)   # (its dtype)
        if self.rms_rate is not None:
            update *= np.sqrt(max(param.value.shape)) * self.rms_rate
        param.value -= (self.learning_rate * update).astype(param.value.dtype)

    def _adamw_step(self, param, grad, m, v):
        b1, b2, t = self.adam_beta_1, self.adam_beta_2, self.iterations + 1
        rate = self.learning_rate * self.adam_lr_ratio * np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
        m += (grad - m) * (1.0 - b1)
        v += (np.square(grad) - v) * (1.0 - b2)
        flush_subnormals(m)
        flush_subnormals(v)
        param.value -= (m * rate) / (np.sqrt(v) + self.epsilon)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(adam_beta_1=self.adam_beta_1, adam_beta_2=self.adam_beta_2, epsilon=self.epsilon,
                      exclude_layers=list(self.exclude_layers), muon_a=self.muon_a, muon_b=self.muon_b,
                      muon_c=self.muon_c, adam_lr_ratio=self.adam_lr_ratio, momentum=self.momentum,
                      ns_steps=self.ns_steps, nesterov=self.nesterov, exclude_embeddings=self.exclude_embeddings,
                      adam_weight_decay=self.adam_weight_decay, rms_rate=self.rms_rate)
        return config
