"""The model's input and output records: Keras names, shapes, dtypes, Embedding inputs."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from modelport.core.records import TensorInfo
from modelport.core.errors import UserInputError

__all__ = ["io_records", "history_name", "embedding_inputs", "unique_names"]

log = logging.getLogger(__name__)


def history_name(t: Any) -> str:
    hist = getattr(t, "_keras_history", None)
    if hist is not None:
        layer = hist[0] if isinstance(hist, tuple) else getattr(hist, "layer", None)
        if layer is not None and getattr(layer, "name", None):
            return layer.name
    return str(getattr(t, "name", "")).split(":")[0].split("/")[0]


def unique_names(names: list[str]) -> list[str]:
    """Suffix repeats ``_1``, ``_2``...: the artifacts' names for repeated Keras names."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            n = f"{n}_{seen[n]}"
        seen.setdefault(n, 0)
        out.append(n)
    return out


def _dtype_name(dt: Any) -> str:
    name = getattr(dt, "name", dt)
    return str(np.dtype(str(name))) if name else "float32"


def io_records(model: Any, framework: str) -> tuple[list[TensorInfo], list[TensorInfo]]:
    ins = list(model.inputs)
    in_names = unique_names([history_name(t) for t in ins])
    out_tensors = model.outputs
    struct = getattr(model, "_outputs_struct", None)  # Keras 3 functional: as declared
    if isinstance(struct, dict):
        # a dict-output model is fetched by its keys, not its layer names
        out_names, out_tensors = list(struct), list(struct.values())
    elif isinstance(out_tensors, dict):
        out_names, out_tensors = list(out_tensors), list(out_tensors.values())
    else:
        out_tensors = list(out_tensors)
        declared = list(getattr(model, "output_names", []) or [])
        out_names = declared if len(declared) == len(out_tensors) else [
            history_name(t) for t in out_tensors]
    out_names = unique_names(out_names)

    def rec(name: str, t: Any) -> TensorInfo:
        shape = [None if d is None else int(d) for d in tuple(t.shape)]
        return TensorInfo(name, shape, _dtype_name(t.dtype))

    clash = set(in_names) & set(out_names)
    if clash:
        raise UserInputError(f"input and output share the name(s) {sorted(clash)}; rename them")
    return ([rec(n, t) for n, t in zip(in_names, ins)],
            [rec(n, t) for n, t in zip(out_names, out_tensors)])


def embedding_inputs(model: Any) -> dict[str, int]:
    """Inputs that feed an Embedding layer directly, with its vocabulary size."""
    vocab: dict[str, int] = {}
    try:
        in_layers = {id(t): history_name(t) for t in model.inputs}
        for layer in getattr(model, "layers", []):
            if type(layer).__name__ != "Embedding":
                continue
            node_inputs = []
            for node in getattr(layer, "_inbound_nodes", []) or []:
                # never truth-test a tensor: tf_keras KerasTensors refuse bool()
                tensors = getattr(node, "input_tensors", None)
                if tensors is None:
                    tensors = getattr(node, "keras_inputs", [])
                node_inputs.extend(tensors if isinstance(tensors, (list, tuple)) else [tensors])
            for t in node_inputs:
                name = in_layers.get(id(t))
                if name is None:
                    hist = history_name(t)
                    name = hist if hist in in_layers.values() else None
                if name is not None:
                    dim = int(layer.input_dim)
                    vocab[name] = min(vocab.get(name, dim), dim)
    except Exception:  # best effort: the validator then draws small non-negative ids
        log.debug("embedding discovery failed", exc_info=True)
    return vocab
