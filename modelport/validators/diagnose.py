"""Why the reference itself cannot prove much, read layer by layer from the Keras model.

Two questions a verdict alone cannot answer:

- an output does not depend on the inputs: which layer makes it constant? The first layer
  whose output is the same for every sample while its input varies (a LayerNormalization
  over an axis of size 1 outputs its beta whatever the input; a softmax over one value is
  always 1). Then no input can demonstrate parity, and the report says so;
- an output moves by percents when the inputs and weights move by one float32 rounding
  (the measured noise floor is large): which layers amplify the rounding? Each layer's
  relative change divided by its inputs': saturating gates fed huge activations (a
  sigmoid of +-5000 turns an absolute rounding of 1e-4 into a relative change of 1) are
  the usual cause, on inputs outside the model's domain.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np

from modelport.core.text import one_line
from modelport.loading.domain import node_inputs, producer_of
from modelport.validators.compare import is_degenerate

__all__ = ["constant_layer", "amplifying_layers"]

log = logging.getLogger(__name__)


def _layer_outputs(source: Any, feeds: Mapping[str, np.ndarray]) -> list[tuple[Any, np.ndarray]]:
    """``(layer, output)`` of every top-level layer with one output tensor, in order."""
    model = source.model
    if source.framework == "keras3":
        import keras as k
    else:
        import tf_keras as k
    picked, tensors = [], []
    for layer in getattr(model, "layers", []) or []:
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            out = layer.output
        except Exception:  # a layer called more than once: no single output
            continue
        if isinstance(out, (list, tuple, dict)):
            continue
        picked.append(layer)
        tensors.append(out)
    if not tensors:
        return []
    probe = k.Model(inputs=model.inputs, outputs=tensors)
    values = probe.predict([np.asarray(feeds[n]) for n in source.input_names], verbose=0)
    values = values if isinstance(values, (list, tuple)) else [values]
    return list(zip(picked, [np.asarray(v) for v in values]))


def _producers(layer: Any) -> list[Any]:
    nodes = getattr(layer, "_inbound_nodes", []) or []
    return [producer_of(t) for t in node_inputs(nodes[0])] if nodes else []


def _size_one_axes(layer: Any, value: np.ndarray) -> bool:
    """A normalisation or softmax over axes whose total size is 1."""
    axis = getattr(layer, "axis", -1)
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    try:
        return value.ndim > 1 and int(np.prod([value.shape[a] for a in axes])) == 1
    except (IndexError, TypeError):
        return False


def _why_constant(layer: Any, value: np.ndarray) -> str:
    cls = type(layer).__name__
    act = getattr(getattr(layer, "activation", None), "__name__", "")
    if cls in ("LayerNormalization", "GroupNormalization", "UnitNormalization") \
            and _size_one_axes(layer, value):
        return (f"layer {layer.name!r} ({cls}) normalises over an axis of size 1, so its "
                "output is its beta whatever the input")
    if (cls == "Softmax" or act == "softmax") and value.ndim > 1 and value.shape[-1] == 1:
        return f"layer {layer.name!r} ({cls}) takes a softmax over one value, which is always 1"
    kernel = getattr(layer, "kernel", None)
    try:
        if kernel is not None and not np.any(np.asarray(kernel)):
            return f"layer {layer.name!r} ({cls}) has an all-zero kernel"
    except Exception:  # a kernel that cannot be read as an array
        log.debug("kernel of %s unreadable", layer.name, exc_info=True)
    return f"layer {layer.name!r} ({cls}) gives the same output for every sample"


def constant_layer(source: Any, feeds: Mapping[str, np.ndarray]) -> str | None:
    """Which layer makes the model's outputs constant, as a phrase; ``None`` when no
    single layer can be named (or the model cannot be read layer by layer)."""
    try:
        outputs = _layer_outputs(source, feeds)
    except Exception as e:  # a model Keras cannot cut into layers: no diagnosis
        log.debug("layer outputs unavailable: %s", one_line(e))
        return None
    varies = {id(layer): not is_degenerate(v) for layer, v in outputs}
    for layer, value in outputs:
        if varies[id(layer)] or value.dtype.kind != "f":
            continue
        # model inputs (InputLayer) vary; other producers as measured
        if any(varies.get(id(p), type(p).__name__ == "InputLayer") for p in _producers(layer)):
            return _why_constant(layer, value)
    return None


def amplifying_layers(source: Any, feeds: Mapping[str, np.ndarray],
                      moved: Mapping[str, np.ndarray], top: int = 3) -> list[str]:
    """The layers that amplify a small perturbation of the inputs (``feeds`` ->
    ``moved``) the most: ``"'block7a_se_expand' (Conv2D, sigmoid) x6.3, its input up to
    |5.3e3|"``, largest first, only those that amplify more than twofold."""
    try:
        a = _layer_outputs(source, feeds)
        b = _layer_outputs(source, moved)
    except Exception as e:
        log.debug("layer outputs unavailable: %s", one_line(e))
        return []
    rel: dict[int, float] = {}
    peak: dict[int, float] = {}
    for name, t in zip(source.input_names, source.model.inputs):
        x = np.asarray(feeds[name], np.float64)
        rel[id(producer_of(t))] = _relative(x, np.asarray(moved[name], np.float64))
        peak[id(producer_of(t))] = float(np.abs(x).max()) if x.size else 0.0
    for (layer, x), (_, y) in zip(a, b):
        rel[id(layer)] = _relative(x.astype(np.float64), y.astype(np.float64))
        finite = x[np.isfinite(x)]
        peak[id(layer)] = float(np.abs(finite).max()) if finite.size else 0.0
    found = []
    for layer, _ in a:
        producers = _producers(layer)
        known = [rel[id(p)] for p in producers if id(p) in rel]
        base = max(known) if known else 0.0
        if base <= 0 or rel[id(layer)] <= 2.0 * base:
            continue
        src = max([peak.get(id(p), 0.0) for p in producers] or [0.0])
        act = getattr(getattr(layer, "activation", None), "__name__", "")
        what = type(layer).__name__ + (f", {act}" if act and act != "linear" else "")
        gain = rel[id(layer)] / base
        found.append((gain, f"{layer.name!r} ({what}) x{gain:.3g}, its input up to "
                            f"|{src:.3g}|"))
    return [text for _, text in sorted(found, key=lambda f: -f[0])[:top]]


def _relative(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    norm = float(np.linalg.norm(x[ok])) if ok.any() else 0.0
    return float(np.linalg.norm((x - y)[ok])) / norm if norm else 0.0
