"""Batch normalisation over the last (channel/feature) axis."""

import numpy as np

from nnscratch import kernels
from nnscratch.config import floatx
from nnscratch.layers.base import Layer, format_shape

__all__ = ["BatchNormalization"]


class BatchNormalization(Layer):
    r"""Normalise each channel by batch statistics, then scale and shift.

    Works on (N, features) and (N, H, W, C) inputs; statistics are taken over
    every axis but the last (for images: over N, H and W, per channel).

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
    momentum : float
        Keras's default 0.99.
    epsilon : float
        Keras's default 1e-3.
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon!r}")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self._x2d = None  # what backward needs; None until a forward pass of this layer

    def build(self, input_shape):
        if len(input_shape) not in (1, 3):
            raise ValueError(
                f"BatchNormalization layer {self.name!r} expects (None, features) or "
                f"(None, height, width, channels) inputs, got {format_shape(input_shape)}"
            )
        channels = input_shape[-1]
        self.gamma = self.new_parameter("gamma", np.ones(channels))
        self.beta = self.new_parameter("beta", np.zeros(channels))
        self.buffers["moving_mean"] = np.zeros(channels, dtype=floatx())
        self.buffers["moving_variance"] = np.ones(channels, dtype=floatx())
        super().build(input_shape)

    def forward(self, x, training=False, relu=False):
        """``y = gamma * xhat + beta``; with ``relu=True``, ``max(y, 0)`` (fused with a following ReLU)."""
        self.check_input(x)
        channels = x.shape[-1]
        x2d = x.reshape(-1, channels)
        self._relu = bool(relu)
        if not training:
            # fixed statistics: y = gamma * (x - moving_mean) * inv_std + beta, an affine map
            self._x2d, self._training = x2d, False
            self._inv_std = self._moving_inv_std()
            return self._inference_output(x2d, relu).reshape(x.shape)
        # xhat is not stored: backward recomputes it from x2d (the layer below's
        # output, alive anyway) and the batch mean, with the same operations
        y, _, mean, var, inv_std = kernels.backend().batchnorm_forward_train(
            x2d, self.gamma.value, self.beta.value, self.epsilon, relu=relu, keep_xhat=False)
        self._keep_batch(x2d, mean, var, inv_std)
        return y.reshape(x.shape)

    def forward_pooled(self, x, window, relu=False):
        """Training forward of (N, H, W, C) images, then max pooling, without storing the normalised images.

        ``window`` is ``(kh, kw, sh, sw, pad_top, pad_left, out_h, out_w)``
        (``MaxPooling2D.window()``). Returns ``(pooled, argmax)``, bit for bit
        what ``forward(x, True, relu)`` followed by the pooling gives. A
        ``Model`` calls it for a batch norm whose output only a MaxPooling2D
        reads and hands both to that layer (``MaxPooling2D.keep_pooled``).
        """
        self.check_input(x)
        self._relu = bool(relu)
        pooled, argmax, mean, var, inv_std = kernels.backend().batchnorm_maxpool_forward_train(
            x, self.gamma.value, self.beta.value, self.epsilon, self._relu, *window)
        self._keep_batch(x.reshape(-1, x.shape[-1]), mean, var, inv_std)
        return pooled, argmax

    def _keep_batch(self, x2d, mean, var, inv_std):
        """Update the moving statistics; keep what backward needs (the input, not ``xhat``)."""
        for name, batch_value in (("moving_mean", mean), ("moving_variance", var)):
            moving = self.buffers[name]
            moving *= self.momentum
            moving += (1.0 - self.momentum) * batch_value
        self._x2d, self._mean, self._inv_std, self._training = x2d, mean, inv_std, True

    def backward(self, grad_output):
        """Gradients of the last forward; through its ReLU too if it was ``forward(..., relu=True)``."""
        if self._x2d is None:
            raise RuntimeError(f"layer {self.name!r}: backward called without a forward pass of this layer "
                               "(in inference a Model may apply it inside the Conv2D before it)")
        shape = grad_output.shape
        grad2d = grad_output.reshape(-1, shape[-1])
        gamma, beta = self.gamma.value, self.beta.value
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
        self.gamma.grad[...] = dgamma
        self.beta.grad[...] = dbeta
        return dx.reshape(shape)

    def inference_affine(self):
        """``(scale, shift)`` of inference: ``y = x * scale + shift``, ``scale = gamma / sqrt(moving_variance +
        eps)``, ``shift = beta - moving_mean * scale``. A Model passes them to the Conv2D before this layer,
        which then applies them in its own sweep over the output (``Conv2D.forward(..., affine=...)``)."""
        scale = self.gamma.value * self._moving_inv_std()
        return scale, self.beta.value - self.buffers["moving_mean"] * scale

    def _moving_inv_std(self):
        return 1.0 / np.sqrt(self.buffers["moving_variance"] + self.epsilon)

    def applied_elsewhere(self):
        """Forget the last forward pass: an inference step in which the layer before applied this one."""
        self._x2d, self._training = None, False

    def _inference_output(self, x2d, relu):
        """The affine map of inference, ``x * scale + (beta - moving_mean * scale)``, then the ReLU if fused."""
        scale, shift = self.inference_affine()
        return kernels.backend().batchnorm_inference(x2d, scale, shift, relu=relu)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}
