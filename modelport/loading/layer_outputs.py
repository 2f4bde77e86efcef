"""Every layer output of a loaded Keras model, and their values on given feeds.

A functional model's call nodes are walked in topological order (Keras 3 and tf_keras
alike keep them in ``_nodes_by_depth``); each output tensor of each call is one
``LayerOutput``. A nested functional model (a shared tower called on two inputs) is
expanded into its own layers, once per call, so its inner layers are listed as
``tower/dense`` and ``tower#2/dense``. The values come from Keras sub-models over the
symbolic tensors (``Model(inputs, [every output])``), never from the traced graph: they
are the reference each artifact's intermediate tensors are compared with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from modelport.loading.domain import node_inputs

__all__ = ["LayerOutput", "layer_outputs", "layer_values", "keys_by_depth"]

log = logging.getLogger(__name__)


@dataclass
class LayerOutput:
    """One output tensor of one call of one layer.

    ``key`` names it uniquely: the layer's name, prefixed by the nested models it sits in
    (``tower/dense``), ``#N`` for the N-th call of a shared layer or model, ``:K`` for its
    K-th output (K > 0).
    """

    key: str
    layer: str  # the Keras layer's own name
    class_name: str
    scope: tuple[str, ...]  # enclosing model names and the layer name: graph name scopes
    shape: list[int | None] | None
    dtype: str
    inputs: list[str] = field(default_factory=list)  # keys (or model input names) it reads
    model_output: str | None = None  # the model output name it is, if any
    order: int = 0  # position in topological order
    call: Any = field(default=None, repr=False, compare=False)  # (model, node, index)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "layer": self.layer, "class_name": self.class_name,
                "shape": self.shape, "dtype": self.dtype, "inputs": list(self.inputs),
                "model_output": self.model_output}


def _flat(x: Any) -> list[Any]:
    if isinstance(x, dict):
        return [t for k in sorted(x) for t in _flat(x[k])]
    if isinstance(x, (list, tuple)):
        return [t for item in x for t in _flat(item)]
    return [] if x is None else [x]


def _functional(model: Any) -> Any:
    """The functional graph of a model (a Keras 3 Sequential keeps one inside), or None."""
    inner = getattr(model, "_functional", None)
    if inner is not None and hasattr(inner, "_nodes_by_depth"):
        return inner
    return model if hasattr(model, "_nodes_by_depth") and getattr(model, "inputs", None) \
        else None


def _layer_of(node: Any) -> Any:
    return getattr(node, "operation", None) or getattr(node, "layer", None)


def _history(t: Any) -> tuple[int, int, int] | None:
    h = getattr(t, "_keras_history", None)
    if not isinstance(h, tuple) or len(h) < 3:
        return None
    return id(h[0]), int(h[1]), int(h[2])


def _nodes(fn: Any) -> list[Any]:
    """Call nodes of a functional graph, inputs first, without the input layers'."""
    found = []
    for depth in sorted(fn._nodes_by_depth, reverse=True):
        for node in fn._nodes_by_depth[depth]:
            if getattr(node, "is_input", False) or type(_layer_of(node)).__name__ == "InputLayer":
                continue
            found.append(node)
    return found


def _shape(t: Any) -> list[int | None] | None:
    shape = getattr(t, "shape", None)
    if shape is None:
        return None
    try:
        return [None if d is None else int(d) for d in tuple(shape)]
    except (TypeError, ValueError):
        return None


def _dtype(t: Any) -> str:
    d = getattr(t, "dtype", "")
    return str(getattr(d, "name", d))


@dataclass
class _Walk:
    entries: list[LayerOutput]
    # symbolic tensor (by history) -> the key of the entry (or the model input name)
    names: dict[tuple[int, int, int], str]


def _walk(model: Any, prefix: str, scope: tuple[str, ...], feeds_names: list[str],
          walk: _Walk, outputs: Mapping[tuple[int, int, int], str]) -> None:
    fn = _functional(model)
    calls: dict[int, int] = {}
    for node in _nodes(fn):
        layer = _layer_of(node)
        calls[id(layer)] = calls.get(id(layer), 0) + 1
        call = calls[id(layer)]
        base = prefix + layer.name + (f"#{call}" if call > 1 else "")
        ins = [walk.names.get(_history(t) or (0, 0, 0), "?") for t in node_inputs(node)]
        inner = _functional(layer) if layer is not model else None
        if inner is not None and getattr(inner, "inputs", None):
            # the nested model's inputs take the names of what this call reads
            for t, name in zip(_flat(inner.inputs), ins):
                h = _history(t)
                if h is not None:
                    walk.names[h] = name
            _walk(inner, base + "/", scope + (layer.name,), feeds_names, walk, {})
            for t_in, t_out in zip(_flat(inner.outputs), _flat(node.outputs)):
                h_in, h_out = _history(t_in), _history(t_out)
                if h_in is not None and h_out is not None and h_in in walk.names:
                    walk.names[h_out] = walk.names[h_in]
                    entry = next((e for e in walk.entries if e.key == walk.names[h_in]), None)
                    if entry is not None and h_out in outputs:
                        entry.model_output = outputs[h_out]
            continue
        for k, t in enumerate(_flat(node.outputs)):
            key = base + (f":{k}" if k else "")
            h = _history(t)
            entry = LayerOutput(key, layer.name, type(layer).__name__, scope + (layer.name,),
                                _shape(t), _dtype(t), ins, outputs.get(h) if h else None,
                                len(walk.entries), (model, node, k))
            walk.entries.append(entry)
            if h is not None:
                walk.names[h] = key


def layer_outputs(source: Any) -> list[LayerOutput]:
    """Every layer output of ``source.model`` (a ``SourceModel``), in topological order;
    empty when the model is not functional (a subclassed model has no graph to walk)."""
    model = source.model
    fn = _functional(model)
    if fn is None:
        return []
    walk = _Walk([], {})
    for t, name in zip(_flat(fn.inputs), source.input_names):
        h = _history(t)
        if h is not None:
            walk.names[h] = name
    outputs = {}
    for t, name in zip(_flat(fn.outputs), source.output_names):
        h = _history(t)
        if h is not None:
            outputs[h] = name
    _walk(model, "", (), source.input_names, walk, outputs)
    return walk.entries


def keys_by_depth(entries: list[LayerOutput]) -> dict[str, int]:
    """Each entry's depth: its longest path from a model input, in layers."""
    depth: dict[str, int] = {}
    for e in entries:
        depth[e.key] = 1 + max([depth.get(i, 0) for i in e.inputs] or [0])
    return depth


def _framework(source: Any) -> Any:
    if source.framework == "keras3":
        import keras
    else:
        import tf_keras as keras
    return keras


_PROBES: dict[tuple[int, ...], Any] = {}  # sub-models by (graph, tensors), weakly reused


def _run(keras: Any, inputs: list[Any], tensors: list[Any],
         feeds: list[np.ndarray]) -> list[np.ndarray]:
    # building a sub-model over hundreds of tensors costs as much as running it: the
    # noise-floor runs reuse the first one (keyed by the tensors' identities, which the
    # model keeps alive)
    key = tuple(id(t) for t in inputs + tensors)
    probe = _PROBES.get(key)
    if probe is None:
        _PROBES.clear()
        probe = _PROBES[key] = keras.Model(inputs=inputs, outputs=tensors)
    values = probe(list(feeds), training=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    return [np.asarray(v) for v in values]


def layer_values(source: Any, feeds: Mapping[str, np.ndarray],
                 entries: list[LayerOutput]) -> dict[str, np.ndarray]:
    """The value of every entry on ``feeds`` (arrays by model input name), by key: one
    Keras sub-model per (nested) functional graph, each run once on the whole batch."""
    keras = _framework(source)
    values: dict[str, np.ndarray] = {n: np.asarray(feeds[n]) for n in source.input_names}
    groups: dict[tuple[int, str], list[LayerOutput]] = {}
    for e in entries:  # one group per call of each (nested) graph
        groups.setdefault((id(e.call[0]), e.key.rpartition("/")[0]), []).append(e)
    outer = _functional(source.model)
    pending = list(groups.values())
    while pending:  # a nested call's feeds are values of the graph around it
        ready = []
        for group in pending:
            model = _functional(group[0].call[0])
            ins = source.input_names if model is outer else _nested_inputs(entries, group[0])
            if all(n in values for n in ins):
                ready.append((group, model, ins))
        if not ready:
            log.debug("no values for %s", [g[0].key for g in pending])
            break
        for group, model, ins in ready:
            pending.remove(group)
            tensors = [_flat(e.call[1].outputs)[e.call[2]] for e in group]
            got = _run(keras, _flat(model.inputs), tensors, [values[n] for n in ins])
            values.update({e.key: v for e, v in zip(group, got)})
    return {e.key: values[e.key] for e in entries if e.key in values}


def _nested_inputs(entries: list[LayerOutput], first: LayerOutput) -> list[str]:
    """What the first layers of a nested graph's call read (its inputs' names), in the
    nested model's input order."""
    model = first.call[0]
    fn = _functional(model)
    prefix = first.key.rsplit("/", 1)[0] + "/"
    names: dict[int, str] = {}
    for e in entries:
        if e.call[0] is not model or not e.key.startswith(prefix):
            continue
        for t, name in zip(node_inputs(e.call[1]), e.inputs):
            h = _history(t)
            if h is not None:
                names.setdefault(h[0], name)
    out = []
    for t in _flat(fn.inputs):
        h = _history(t)
        out.append(names.get(h[0], "?") if h else "?")
    return out
