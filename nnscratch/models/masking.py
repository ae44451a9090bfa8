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
* ``BatchNormalization`` reads it in training (the statistics of the unmasked
  steps) and passes it on; ``Softmax``, which Keras makes read it (a large
  negative number at the masked entries), refuses it here;
* at a merge, the masks join by Keras's rules (the OR of the masks for
  ``Add`` and the other elementwise merges when every input carries one;
  ``Concatenate`` spreads and joins them; ``Dot`` ends them).

Whether a layer's input carries a mask depends on the layers only, never on
the data, so :func:`check_layer` finds it once, as the model is built, and
raises or warns then. The values of the masks are computed in each forward
pass (``Layer.compute_mask``, :meth:`Model.forward_steps
<nnscratch.models.model.Model.forward_steps>`).
"""

import warnings

__all__ = ["check_layer", "mask_flow", "graph_mask_flow"]


def check_layer(layer, input_masked) -> bool:
    """Whether ``layer``'s output carries a mask, given whether its input does (a merge layer: a flag an input).

    Raises a ValueError where a masked input reaches a layer that refuses it
    (``mask_refusal``); warns, as Keras, where a layer drops a mask.
    """
    output_masked = layer.output_masked(input_masked)
    if layer.takes_list:
        input_masked = any(input_masked)
    if input_masked and layer.mask_refusal is not None:
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) gets a masked input (from "
                         f"Embedding(mask_zero=True) or Masking): {layer.mask_refusal}")
    if input_masked and not (layer.supports_masking or layer.makes_mask):
        warnings.warn(f"Layer '{layer.name}' (of type {type(layer).__name__}) was passed an input with a mask "
                      "attached to it. However, this layer does not support masking and will therefore destroy "
                      "the mask information. Downstream layers will not see the mask.", stacklevel=4)
    return output_masked


def mask_flow(layers) -> bool:
    """Check a chain of layers, first to last (:func:`check_layer`); return whether its output carries a mask."""
    masked = False
    for layer in layers:
        masked = check_layer(layer, masked)
    return masked


def graph_mask_flow(layers, sources, outputs=None):
    """:func:`mask_flow` of a model that branches and merges: each layer's inputs are the outputs of ``sources``.

    ``sources[i]`` lists the layers whose outputs ``layers[i]`` reads
    (negative indices for the model's inputs, which carry no mask), as
    :class:`~nnscratch.models.graph.Graph` keeps them. A merge layer gets
    one flag an input: the elementwise merges carry a mask when each input
    does, ``Concatenate`` when some input does, ``Dot`` never (Keras's rules).
    Whether the last layer's output carries a mask, or, given ``outputs``
    (layer indices), a list with each one's.
    """
    masked = {}
    for i, (layer, source) in enumerate(zip(layers, sources)):
        given = [s >= 0 and masked[s] for s in source]
        masked[i] = check_layer(layer, given if layer.takes_list else given[0])
    return masked[len(layers) - 1] if outputs is None else [masked[i] for i in outputs]
