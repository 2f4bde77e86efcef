"""Data layout: which inputs are channels_first, and running channels_first layers on CPU.

TensorFlow's CPU kernels for Conv and Pooling only accept NHWC. A channels_first Keras model
(Theano-era files, or ``data_format="channels_first"``) therefore cannot even run as the
reference on CPU. We wrap each such layer so it transposes to channels_last, runs the same
kernel, and transposes back: the model keeps its NCHW interface and its weights (Keras conv
kernels are stored in the same HWIO order for both layouts), and every artifact traced from
it runs on CPU runtimes. ``tests/test_layout.py`` checks the wrapped model against XLA, which
does implement NCHW on CPU.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from modelport.core.records import TensorInfo

__all__ = ["patch_channels_first", "describe_layout"]

log = logging.getLogger(__name__)

_NEEDS_NHWC = ("Conv", "Pooling", "UpSampling", "LocallyConnected")


def _walk_layers(model: Any):
    stack = list(getattr(model, "layers", []) or [])
    seen: set[int] = set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        yield layer
        stack.extend(getattr(layer, "layers", []) or [])
        for attr in ("layer", "forward_layer", "backward_layer"):
            inner = getattr(layer, attr, None)
            if inner is not None and hasattr(inner, "call"):
                stack.append(inner)


def _needs_wrap(layer: Any) -> bool:
    name = type(layer).__name__
    return (getattr(layer, "data_format", None) == "channels_first"
            and any(k in name for k in _NEEDS_NHWC) and not name.startswith("Global"))


def _wrap(layer: Any) -> None:
    import tensorflow as tf

    original = layer.call

    @functools.wraps(original)
    def call(inputs, *args, **kwargs):
        rank = len(inputs.shape)
        to_last = [0, *range(2, rank), 1]
        to_first = [0, rank - 1, *range(1, rank - 1)]
        saved = (layer.data_format, getattr(layer, "_tf_data_format", None))
        layer.data_format = "channels_last"
        if saved[1] is not None:
            layer._tf_data_format = {"NCHW": "NHWC", "NCW": "NWC", "NCDHW": "NDHWC"}.get(
                saved[1], saved[1])
        try:
            out = original(tf.transpose(inputs, to_last), *args, **kwargs)
        finally:
            layer.data_format = saved[0]
            if saved[1] is not None:
                layer._tf_data_format = saved[1]
        if len(out.shape) == rank:
            out = tf.transpose(out, to_first)
        return out

    # tf_keras builds its conv op with the layout baked in; make it rebuild per call
    if hasattr(layer, "_convolution_op"):
        try:
            del layer._convolution_op
        except AttributeError:
            pass
    object.__setattr__(layer, "call", call)


def patch_channels_first(model: Any) -> str:
    """Wrap every channels_first Conv/Pooling layer; returns the model's data format."""
    formats = set()
    wrapped = 0
    for layer in _walk_layers(model):
        fmt = getattr(layer, "data_format", None)
        kind = type(layer).__name__
        if fmt in ("channels_first", "channels_last") and any(
            k in kind for k in _NEEDS_NHWC + ("BatchNormalization", "Flatten")
        ) and kind != "Flatten":
            formats.add(fmt)
        if _needs_wrap(layer):
            _wrap(layer)
            wrapped += 1
    if wrapped:
        log.info("running %d channels_first layers through NHWC kernels", wrapped)
    if "channels_first" in formats:
        return "channels_first"
    if "channels_last" in formats:
        return "channels_last"
    return "none"


def describe_layout(inputs: list[TensorInfo], data_format: str) -> dict[str, str]:
    """Per input: "NCHW"/"NHWC" (rank 4), "NCW"/"NWC" (rank 3), "NCDHW"/"NDHWC", or "none"."""
    names = {3: ("NWC", "NCW"), 4: ("NHWC", "NCHW"), 5: ("NDHWC", "NCDHW")}
    out = {}
    for t in inputs:
        rank = len(t.shape or [])
        if data_format == "none" or rank not in names or not t.dtype.startswith("float"):
            out[t.name] = "none"
        else:
            out[t.name] = names[rank][data_format == "channels_first"]
    return out
