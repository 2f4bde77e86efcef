"""Recurrent layers traced without fused kernels: unrolled over their time steps, or as a
plain loop.

tf_keras's LSTM and GRU trace into functions marked ``api_implements`` so that a runtime
may swap in a fused kernel. The TFLite converter does so for LSTM, and its fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` keeps the hidden and cell state in *variable tensors* that
survive between invocations: every call after the first starts from the previous call's
final state, where Keras starts each sequence from zeros. Tracing the layers as plain
ops avoids that kernel. Not a format itself: the TFLite module's routes use it.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

__all__ = ["all_layers", "recurrent_layers", "plain_recurrent", "is_stateful"]

_MISSING = object()


def all_layers(model: Any) -> list[Any]:
    """Every layer inside ``model``, wrappers' inner layers included (tf_keras and
    Keras 3 both provide ``_flatten_layers``)."""
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is None:
        return []
    return list(flatten(include_self=False, recursive=True))


def recurrent_layers(model: Any) -> list[Any]:
    """The RNN layers of ``model`` (those with a ``cell`` and an ``unroll`` switch),
    including the ones inside ``Bidirectional`` and ``TimeDistributed``."""
    return [layer for layer in all_layers(model)
            if hasattr(layer, "cell") and hasattr(layer, "unroll")]


def is_stateful(model: Any) -> bool:
    """Whether any layer keeps state between calls on purpose (``stateful=True``)."""
    return any(getattr(layer, "stateful", False) is True for layer in all_layers(model))


@contextlib.contextmanager
def plain_recurrent(model: Any, unroll: bool) -> Iterator[list[str]]:
    """While inside, tracing ``model`` lowers its RNN layers to plain ops: unrolled over
    their (known) time steps when ``unroll``, else a ``while`` loop; never the fused
    kernel path. Yields the names of the layers switched; restores them on exit.

    Only traces made inside the block are affected: the caller must trace a fresh
    function there (the model's own compiled functions are not touched).
    """
    layers = recurrent_layers(model)
    saved = [(layer, layer.unroll, layer.__dict__.get("_could_use_gpu_kernel", _MISSING))
             for layer in layers]
    try:
        for layer in layers:
            layer.unroll = unroll
            if "_could_use_gpu_kernel" in layer.__dict__:
                # tf_keras: False selects the generic backend.rnn path, which has no
                # api_implements function for a converter to fuse
                layer._could_use_gpu_kernel = False
        yield [layer.name for layer in layers]
    finally:
        for layer, was_unrolled, gpu in saved:
            layer.unroll = was_unrolled
            if gpu is not _MISSING:
                layer._could_use_gpu_kernel = gpu
