"""Batch normalisation over one axis of a batch (the channel/feature axis, the last by default)."""

import numpy as np

from nnscratch import constraints, initializers, kernels, regularizers, rng
from nnscratch.config import floatx
from nnscratch.layers.base import Layer, format_shape

__all__ = ["BatchNormalization"]

_CONSTANT_INITIALIZERS = (initializers.zeros, initializers.ones)   # they draw no random numbers


class BatchNormalization(Layer):
    r"""Normalise each channel by batch statistics, then scale and shift.

    Works on inputs of any rank: (N, features), (N, steps, C), (N, H, W, C),
    ... Statistics are taken over every axis but ``axis`` (the last by
    default: for images over N, H and W, per channel).

    Training, over the ``M`` values of one channel:

    .. math::
        \mu = \tfrac1M \sum x, \quad \sigma^2 = \tfrac1M \sum (x-\mu)^2, \quad
        \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad y = \gamma \hat x + \beta

    and the moving statistics (buffers, not parameters) follow
    ``moving = momentum * moving + (1 - momentum) * batch_statistic``.
    Inference uses the moving statistics instead of the batch's; they are
    constants then, so backward after an inference-mode forward is that of
    an affine map: ``dx = g * gamma / sqrt(moving_variance + eps)``.

    Backward in training mode, because :math:`\mu` and :math:`\sigma^2` depend on every ``x``:

    .. math::
        \frac{\partial L}{\partial \beta} = \sum g, \quad
        \frac{\partial L}{\partial \gamma} = \sum g \hat x, \quad
        \frac{\partial L}{\partial x} = \frac{\gamma}{M\sqrt{\sigma^2+\epsilon}}
        \Big(M g - \sum g - \hat x \sum g \hat x\Big)

    A ``Model`` whose BatchNormalization is directly followed by a ReLU calls
    ``forward(x, training, relu=True)`` and skips the ReLU layer: the kernels
    then apply the ReLU in the same sweep that writes ``y``, and its backward
    (mask ``gamma * xhat + beta > 0``, recomputed) in the sweeps of the batch-norm
    backward. The numbers are bit-identical to the two layers one after the
    other; the ReLU's two passes over the activations are saved.

    What training keeps for backward is the input ``x`` (the layer below's
    output, which exists anyway), the batch mean and :math:`1/\sqrt{\sigma^2+\epsilon}`;
    backward recomputes :math:`\hat x` from them with the forward pass's own
    operations (the same numbers), so forward writes one array, ``y``, not two.

    Parameters
    ----------
    axis : int
        The channel axis, Keras's convention (the batch axis counted): -1, the
        default, is the last (NHWC images); 1 is the first axis of a sample
        (channels-first data). Another axis than the last is moved last for
        the kernels and back (a copy each way). The batch axis (0) and
        several axes are refused.
    momentum : float
        Keras's default 0.99.
    epsilon : float
        Keras's default 1e-3.
    center, scale : bool
        With ``center=False`` there is no ``beta`` (it is 0), with
        ``scale=False`` no ``gamma`` (it is 1); the weights are then those
        that remain, in Keras's order (gamma, beta, moving_mean, moving_variance).
    beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer : str or callable
        Keras's defaults: zeros, ones, zeros, ones.
    beta_regularizer, gamma_regularizer : str, Regularizer or None
        Penalties on ``beta`` and ``gamma`` (:mod:`nnscratch.regularizers`).
    beta_constraint, gamma_constraint : str, Constraint or None
        Maps applied to ``beta`` and ``gamma`` after every optimizer step (:mod:`nnscratch.constraints`).
    """

    #: A mask (N, T) on sequences (N, T, C) passes through; in training the statistics count the unmasked steps.
    supports_masking = True
    uses_mask = True
    #: Keras's ``BatchNormalization`` also reads a mask (:meth:`masked_forward`).
    _KERAS_EPSILON = 1e-7    # keras.backend.epsilon(), which Keras adds to the number of unmasked steps

    @property
    def mask_refusal(self):
        """Masks are read for channels on the last axis only (Keras broadcasts the mask over that axis)."""
        return None if self.axis == -1 or self.channels_last and self.built else (
            f"a masked input needs the channels on the last axis (axis=-1), got axis={self.axis}")

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)) and len(axis) == 1:
            axis = axis[0]
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"BatchNormalization's axis must be one integer, got {axis!r} "
                            "(several axes are not supported)")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon!r}")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        for identifier in (beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer):
            initializers.get(identifier)  # fail early
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self._axis = None  # the axis of a batch, >= 1, once built
        self._x2d = None   # what backward needs; None until a forward pass of this layer
        self._masked = None  # what backward needs after a masked training forward (masked_forward)

    def build(self, input_shape):
        rank = len(input_shape) + 1  # with the batch axis
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(f"BatchNormalization layer {self.name!r}: axis={self.axis} is not an axis of a sample "
                             f"of inputs of shape {format_shape(tuple(input_shape))} (1 to {rank - 1}, or -1 to "
                             f"{1 - rank}; the batch axis 0 is not supported)")
        self._axis = self.axis % rank
        channels = input_shape[self._axis - 1]
        generator = None

        def initial(identifier):
            nonlocal generator
            init = initializers.get(identifier)
            if init in _CONSTANT_INITIALIZERS:    # draws nothing: the generators after it stay the same
                return init((channels,))
            generator = generator or rng.new_generator()
            return init((channels,), generator)

        # gamma = 1 without scale, beta = 0 without center: constants, not weights
        self._gamma_fixed, self._beta_fixed = np.ones(channels, floatx()), np.zeros(channels, floatx())
        if self.scale:
            self.gamma = self.new_parameter("gamma", initial(self.gamma_initializer), constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.new_parameter("beta", initial(self.beta_initializer), constraint=self.beta_constraint)
        self.buffers["moving_mean"] = np.asarray(initial(self.moving_mean_initializer), dtype=floatx())
        self.buffers["moving_variance"] = np.asarray(initial(self.moving_variance_initializer), dtype=floatx())
        super().build(input_shape)

    @property
    def channels_last(self) -> bool:
        """Whether the normalised axis is the last (what the fusions with Conv2D and MaxPooling2D need)."""
        return self._axis is None or self._axis == len(self.input_shape)

    def _gamma(self):
        return self.gamma.value if self.scale else self._gamma_fixed

    def _beta(self):
        return self.beta.value if self.center else self._beta_fixed

    def _rows(self, x):
        """``x`` as an (M, C) matrix, one column per channel (the normalised axis moved last if it is not)."""
        if not self.channels_last:
            x = np.ascontiguousarray(np.moveaxis(x, self._axis, -1))
        return x.reshape(-1, x.shape[-1])

    def _unrows(self, rows, shape):
        """The inverse of :meth:`_rows`: an (M, C) matrix back to a batch of ``shape``."""
        if self.channels_last:
            return rows.reshape(shape)
        a = self._axis
        moved = rows.reshape(shape[:a] + shape[a + 1:] + shape[a:a + 1])
        return np.ascontiguousarray(np.moveaxis(moved, -1, self._axis))

    def forward(self, x, training=False, relu=False, mask=None):
        """``y = gamma * xhat + beta``; with ``relu=True``, ``max(y, 0)`` (fused with a following ReLU).

        A ``mask`` (N, T) on sequences (N, T, C) makes training use the
        statistics of the unmasked steps (:meth:`masked_forward`); inference
        uses the moving statistics at every step, as without a mask (Keras).
        """
        if mask is not None and training:
            return self.masked_forward(x, mask, relu)
        self.check_input(x)
        self._masked = None
        x2d = self._rows(x)
        self._relu = bool(relu)
        if not training:
            # fixed statistics: y = gamma * (x - moving_mean) * inv_std + beta, an affine map
            self._x2d, self._training = x2d, False
            self._inv_std = self._moving_inv_std()
            return self._unrows(self._inference_output(x2d, relu), x.shape)
        # xhat is not stored: backward recomputes it from x2d (the layer below's
        # output, alive anyway) and the batch mean, with the same operations
        y, _, mean, var, inv_std = kernels.backend().batchnorm_forward_train(
            x2d, self._gamma(), self._beta(), self.epsilon, relu=relu, keep_xhat=False)
        self._keep_batch(x2d, mean, var, inv_std)
        return self._unrows(y, x.shape)

    def forward_pooled(self, x, window, relu=False):
        """Training forward of (N, H, W, C) images, then max pooling, without storing the normalised images.

        ``window`` is ``(kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)``
        (``MaxPooling2D.window()``). Returns ``(pooled, argmax)``, bit for bit
        what ``forward(x, True, relu)`` followed by the pooling gives. A
        ``Model`` calls it for a batch norm over the last axis whose output
        only a MaxPooling2D reads and hands both to that layer
        (``MaxPooling2D.keep_pooled``).
        """
        self.check_input(x)
        if not self.channels_last:
            raise ValueError(f"layer {self.name!r}: forward_pooled needs the channel axis last, not axis={self.axis}")
        self._relu = bool(relu)
        pooled, argmax, mean, var, inv_std = kernels.backend().batchnorm_maxpool_forward_train(
            x, self._gamma(), self._beta(), self.epsilon, self._relu, *window)
        self._keep_batch(x.reshape(-1, x.shape[-1]), mean, var, inv_std)
        return pooled, argmax

    def masked_forward(self, x, mask, relu=False):
        r"""Training forward with the statistics of the unmasked steps only, as Keras 3.

        With :math:`w_m \in \{0, 1\}` the mask of row :math:`m` (a step of a
        sequence) and :math:`D = \sum_m w_m + 10^{-7}` (Keras adds its epsilon):
        :math:`\mu = \sum_m w_m x_m / D`, :math:`\sigma^2 = \sum_m w_m (x_m - \mu)^2 / D`,
        then :math:`y = \gamma \hat x + \beta` at *every* step, masked or
        not, and the moving statistics follow these. Backward
        (:meth:`backward`; docs/backprop.md, section 5, derives it): with
        :math:`d = \gamma g`, :math:`A = \sum_m d_m`, :math:`B = \sum_m d_m \hat x_m`
        over all steps and :math:`c = s \mu (D - W) / D` (:math:`W = \sum w`),
        :math:`\partial L/\partial x_m = s\,(d_m - \tfrac{w_m}{D}(A + \hat x_m B - c B))`.
        Training keeps :math:`\hat x` (not ``x``) and the weights.
        """
        self.check_input(x)
        if x.ndim != 3 or not self.channels_last:
            raise ValueError(f"layer {self.name!r}: a mask needs sequences (N, T, C) with the channels last, got "
                             f"inputs of shape {x.shape} and axis={self.axis}")
        w = self.checked_mask(mask, x).reshape(-1, 1).astype(x.dtype)
        x2d = x.reshape(-1, x.shape[-1])
        valid = float(w.sum())
        total = x.dtype.type(valid + self._KERAS_EPSILON)
        mean = (w * x2d).sum(axis=0) / total
        centered = x2d - mean
        var = (w * centered * centered).sum(axis=0) / total
        inv_std = 1.0 / np.sqrt(var + x.dtype.type(self.epsilon))
        xhat = centered * inv_std
        y = xhat * self._gamma() + self._beta()
        self._keep_batch(None, mean, var, inv_std)
        self._relu = bool(relu)
        self._masked = (xhat, w, total, valid)
        return (np.maximum(y, 0) if relu else y).reshape(x.shape)

    def _masked_backward(self, grad_output):
        """Gradients of the last :meth:`masked_forward` (its formulas)."""
        xhat, w, total, valid = self._masked
        gamma = self._gamma()
        g = grad_output.reshape(xhat.shape)
        if self._relu:        # the ReLU's backward first, its mask from the output recomputed
            g = g * (xhat * gamma + self._beta() > 0)
        if self.scale:
            self.gamma.grad[...] = (g * xhat).sum(axis=0)
        if self.center:
            self.beta.grad[...] = g.sum(axis=0)
        d = g * gamma
        a, b = d.sum(axis=0), (d * xhat).sum(axis=0)
        c = self._inv_std * self._mean * ((total - valid) / total)
        return (self._inv_std * (d - w / total * (a + xhat * b - c * b))).reshape(grad_output.shape)

    def _keep_batch(self, x2d, mean, var, inv_std):
        """Update the moving statistics; keep what backward needs (the input, not ``xhat``)."""
        for name, batch_value in (("moving_mean", mean), ("moving_variance", var)):
            moving = self.buffers[name]
            moving *= self.momentum
            moving += (1.0 - self.momentum) * batch_value
        self._x2d, self._mean, self._inv_std, self._training = x2d, mean, inv_std, True
        self._masked = None      # (masked_forward sets it after this)

    def backward(self, grad_output):
        """Gradients of the last forward; through its ReLU too if it was ``forward(..., relu=True)``."""
        if getattr(self, "_masked", None) is not None:
            return self._masked_backward(grad_output)
        if self._x2d is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without a forward pass of this layer "
                               "(in inference a Model may apply it inside the Conv2D before it)")
        grad2d = self._rows(grad_output)
        gamma, beta = self._gamma(), self._beta()
        if self._training:
            dx, dgamma, dbeta = kernels.backend().batchnorm_backward_from_input(
                grad2d, self._x2d, self._mean, gamma, self._inv_std, beta=beta, relu=self._relu)
        else:
            # after an inference-mode forward the statistics are constants:
            # dx = g * gamma * inv_std, dgamma = sum(g * xhat), dbeta = sum(g)
            xhat = (self._x2d - self.buffers["moving_mean"]) * self._inv_std
            if self._relu:  # the ReLU's backward first, its mask from the recomputed output
                y = self._inference_output(self._x2d, relu=True)
                grad2d = kernels.backend().activation_backward(grad2d, y, "relu")
            dx = grad2d * (gamma * self._inv_std)
            dgamma, dbeta = (grad2d * xhat).sum(axis=0), grad2d.sum(axis=0)
        if self.scale:
            self.gamma.grad[...] = dgamma
        if self.center:
            self.beta.grad[...] = dbeta
        return self._unrows(dx, grad_output.shape)

    def inference_affine(self):
        """``(scale, shift)`` of inference: ``y = x * scale + shift``, ``scale = gamma / sqrt(moving_variance +
        eps)``, ``shift = beta - moving_mean * scale``. A Model passes them to the Conv2D before this layer,
        which then applies them in its own sweep over the output (``Conv2D.forward(..., affine=...)``)."""
        scale = self._gamma() * self._moving_inv_std()
        return scale, self._beta() - self.buffers["moving_mean"] * scale

    def _moving_inv_std(self):
        return 1.0 / np.sqrt(self.buffers["moving_variance"] + self.epsilon)

    def applied_elsewhere(self):
        """Forget the last forward pass: an inference step in which the layer before applied this one."""
        self._x2d, self._training, self._masked = None, False, None

    def _inference_output(self, x2d, relu):
        """The affine map of inference, ``x * scale + (beta - moving_mean * scale)``, then the ReLU if fused."""
        scale, shift = self.inference_affine()
        return kernels.backend().batchnorm_inference(x2d, scale, shift, relu=relu)

    def weight_regularizers(self):
        pairs = (("gamma", self.gamma_regularizer if self.scale else None),
                 ("beta", self.beta_regularizer if self.center else None))
        return {name: regularizer for name, regularizer in pairs if regularizer is not None}

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "beta_initializer": self.beta_initializer,
                "gamma_initializer": self.gamma_initializer,
                "moving_mean_initializer": self.moving_mean_initializer,
                "moving_variance_initializer": self.moving_variance_initializer,
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint)}
