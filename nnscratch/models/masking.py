"""Masks through a model: which layers' inputs carry one, checked when the model is built.

A *mask* (N, T) of booleans marks the steps of a batch of sequences that
count: padding added to make sequences of one length does not. It starts at
``Embedding(mask_zero=True)`` (index 0 is padding) or ``Masking(mask_value)``
(a step whose features all equal ``mask_value``) and goes along with the
data, as Keras's does:

* a layer with ``supports_masking`` (Dense, Dropout, the activations,
  TimeDistributed, ...) passes it on unchanged;
* the recurrent layers read it (a masked step leaves the state as it was)
  and pass it on only with ``return_sequences``; ``GlobalAveragePooling1D``
  averages the unmasked steps and ends it;
* any other layer (Flatten, Conv1D, ...) drops it, with Keras's warning;
* ``BatchNormalization`` and ``Softmax``, which Keras makes read it (batch
  statistics and sums over the unmasked entries only), refuse it here.

Whether a layer's input carries a mask depends on the layers only, never on
the data, so :func:`check_layer` finds it once, as the model is built, and
raises or warns then. The values of the masks are computed in each forward
pass (``Layer.compute_mask``, :meth:`Model.forward_steps
<nnscratch.models.model.Model.forward_steps>`).
"""

import warnings

__all__ = ["check_layer", "mask_flow", "check_graph_has_no_masks"]


def check_layer(layer, input_masked: bool) -> bool:
    """Whether ``layer``'s output carries a mask, given whether its input does.

    Raises a ValueError where a masked input reaches a layer that refuses it
    (``mask_refusal``); warns, as Keras, where a layer drops a mask.
    """
    if input_masked and layer.mask_refusal is not None:
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) gets a masked input (from "
                         f"Embedding(mask_zero=True) or Masking): {layer.mask_refusal}")
    if input_masked and not (layer.supports_masking or layer.makes_mask):
        warnings.warn(f"Layer '{layer.name}' (of type {type(layer).__name__}) was passed an input with a mask "
                      "attached to it. However, this layer does not support masking and will therefore destroy "
                      "the mask information. Downstream layers will not see the mask.", stacklevel=4)
    return layer.output_masked(input_masked)


def mask_flow(layers) -> bool:
    """Check a chain of layers, first to last (:func:`check_layer`); return whether its output carries a mask."""
    masked = False
    for layer in layers:
        masked = check_layer(layer, masked)
    return masked


def check_graph_has_no_masks(layers) -> None:
    """Raise a ValueError if a layer of a branching model makes a mask (masks follow chains only)."""
    for layer in layers:
        if layer.makes_mask:
            raise ValueError(f"layer {layer.name!r} makes a mask, in a model that branches or merges; masks are "
                             "supported in chains of layers (a Sequential, or a functional model without branches)")
