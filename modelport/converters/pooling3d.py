"""3-D pooling traced as 2-D pooling plus a pass over depth, for runtimes without 3-D
pooling kernels (TFLite builtins have none).

Max and average pooling over a (depth, height, width) window separate exactly: pooling
height and width first, then depth, gives the same numbers, padding included, because
``SAME`` padding is decided per dimension (and average pooling counts only real elements,
so a window's count is the product of its per-dimension counts). The first pass pools
``[N*D, H, W, C]``; the second pools ``[N, D, H'*W', C]`` with a ``(depth, 1)`` window.
Not a format itself: the TFLite module's routes use it.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from modelport.converters.recurrent import all_layers

__all__ = ["pooling_layers", "pooling_as_2d"]

_KINDS = {"MaxPooling3D": "max", "MaxPool3D": "max", "AveragePooling3D": "avg",
          "AvgPool3D": "avg"}


def pooling_layers(model: Any) -> list[Any]:
    """The 3-D max/average pooling layers of ``model`` (wrapped ones included)."""
    return [layer for layer in all_layers(model) if type(layer).__name__ in _KINDS]


def _triple(value: Any) -> tuple[int, int, int]:
    values = tuple(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
    return values * 3 if len(values) == 1 else values  # type: ignore[return-value]


def _pool(x: Any, kind: str, pool: tuple[int, int, int], strides: tuple[int, int, int],
          padding: str) -> Any:
    """``x`` ``[N, D, H, W, C]`` with static H, W, C (the batch and depth may be unknown)."""
    import tensorflow as tf

    fn = tf.nn.max_pool2d if kind == "max" else tf.nn.avg_pool2d
    _, _, h, w, c = x.shape.as_list()
    n = tf.shape(x)[0]
    y = fn(tf.reshape(x, [-1, h, w, c]), pool[1:], strides[1:], padding)
    h2, w2 = y.shape[1], y.shape[2]
    if pool[0] != 1 or strides[0] != 1:  # a (1, ., .) window leaves depth as it is
        y = fn(tf.reshape(y, tf.stack([n, -1, h2 * w2, c])), (pool[0], 1), (strides[0], 1),
               padding)
    return tf.reshape(y, tf.stack([n, -1, h2, w2, c]))


def _call(layer: Any, kind: str) -> Any:
    import tensorflow as tf

    pool = _triple(layer.pool_size)
    strides = _triple(layer.strides if layer.strides is not None else layer.pool_size)
    padding = str(layer.padding).upper()
    first = getattr(layer, "data_format", "channels_last") == "channels_first"

    def call(inputs: Any, *args: Any, **kwargs: Any) -> Any:
        x = tf.transpose(inputs, [0, 2, 3, 4, 1]) if first else inputs
        y = _pool(x, kind, pool, strides, padding)
        return tf.transpose(y, [0, 4, 1, 2, 3]) if first else y

    return call


@contextlib.contextmanager
def pooling_as_2d(model: Any) -> Iterator[list[str]]:
    """While inside, tracing ``model`` computes its 3-D pooling layers as 2-D pooling and a
    depth pass. Layers whose height, width or channels are not static stay as they are. Yields the names of the layers switched; restores them on exit. Only traces made
    inside the block are affected: the caller traces a fresh function there."""
    switched = []
    for layer in pooling_layers(model):
        shape = getattr(layer, "input", None)
        shape = getattr(shape, "shape", None)
        spatial = list(shape)[2:] if shape is not None and len(shape) == 5 else [None]
        first = getattr(layer, "data_format", "channels_last") == "channels_first"
        if first and shape is not None and len(shape) == 5:
            spatial = [shape[1], *list(shape)[3:]]  # (C, D, H, W): C, H, W must be known
        if any(d is None for d in spatial):
            continue
        switched.append((layer, layer.__dict__.get("call")))
        object.__setattr__(layer, "call", _call(layer, _KINDS[type(layer).__name__]))
    try:
        yield [layer.name for layer, _ in switched]
    finally:
        for layer, own in switched:
            if own is None:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", own)
