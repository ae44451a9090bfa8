"""Spatial dropout: drop whole feature maps (channels) of a sample, not single values."""

from nnscratch.layers.base import format_shape
from nnscratch.layers.dropout import Dropout

__all__ = ["SpatialDropout1D", "SpatialDropout2D"]


class _SpatialDropout(Dropout):
    r"""Dropout whose mask has one draw a sample and channel, broadcast over the steps or the pixels.

    Neighbouring steps of a sequence, or pixels of a feature map, are strongly
    correlated, so zeroing single values regularises little: the lost value is
    read off its neighbours. Dropping a whole channel does. Forward (training):
    :math:`y_{n,\dots,c} = x_{n,\dots,c}\, m_{n,c} / (1 - r)` with
    :math:`m_{n,c} \sim \text{Bernoulli}(1 - r)`; backward multiplies by the
    same mask. Inference is the identity. This is :class:`Dropout` with
    ``noise_shape = (None, 1, ..., 1, None)``.
    """

    #: The rank of a sample (channels last) this layer takes.
    sample_rank = None

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, noise_shape=(None,) + (1,) * (self.sample_rank - 1) + (None,), seed=seed, **kwargs)

    def build(self, input_shape):
        if len(input_shape) != self.sample_rank:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} expects samples of {self.sample_rank} axes "
                             f"(channels last), got inputs of shape {format_shape(tuple(input_shape))}")
        super().build(input_shape)

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")
        return config


class SpatialDropout1D(_SpatialDropout):
    """Keras's ``SpatialDropout1D(rate, seed=None)``: inputs (N, T, C), one draw a sample and channel."""

    sample_rank = 2


class SpatialDropout2D(_SpatialDropout):
    """Keras's ``SpatialDropout2D(rate, data_format=None, seed=None)``: inputs (N, H, W, C), channels last."""

    sample_rank = 3

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        if data_format not in (None, "channels_last"):
            raise ValueError(f"SpatialDropout2D: only data_format='channels_last' (NHWC) is supported, got "
                             f"{data_format!r}")
        super().__init__(rate, seed=seed, **kwargs)

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last"}
