"""Describe a ``.h5``/``.keras`` model from its stored config alone.

Nothing is built, no framework is imported and no Lambda bytecode runs: ``inspect`` must
work on untrusted files, without TensorFlow, and before the user has found the custom
objects a model needs (finding them is often why they run ``inspect``). The input and output
names reported are the ones ``modelport.loading.source`` gives the artifacts: input layer names, and
output layer names made unique. Output shapes come from the config only where a layer's
rule is certain (Dense, shape-preserving layers); otherwise they are unknown (``None``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

from modelport.core.errors import ModelFileError
from modelport.core.records import Description, NodeInfo, TensorInfo
from modelport.loading.config import (
    is_keras_module, iter_layers, layer_name, node_refs, top_layers,
)
from modelport.loading.lambdas import find_lambdas
from modelport.loading.modelfile import read_model_file
from modelport.loading.objectcheck import LEGACY_ONLY
from modelport.loading.raw import RawModel
from modelport.loading.registry_names import LAYER_CLASSES
from modelport.loading.tensors import unique_names  # the rule the artifacts' names follow

__all__ = ["describe", "is_builtin"]

# layers whose output shape equals their (single) input shape
_SAME_SHAPE = {"Activation", "Softmax", "ReLU", "LeakyReLU", "ELU", "PReLU", "ThresholdedReLU",
               "Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "BatchNormalization",
               "LayerNormalization", "UnitNormalization", "GroupNormalization", "Rescaling",
               "Identity", "Masking", "ActivityRegularization", "SpatialDropout1D",
               "SpatialDropout2D", "SpatialDropout3D", "RMSNormalization"}


def is_builtin(layer: dict[str, Any], upgraded_class: Any = None) -> bool:
    """Whether a layer entry names a class that ships with Keras (else a custom object).

    A Keras 3 ``.keras`` entry says where its class comes from (``module``); any other is
    judged by the class names the Keras registries resolve (``registry_names``, written
    from them, since this runs without TensorFlow), under its own name or the one an
    upgrade rule gives it (``upgraded_class``: Keras 1 ``Convolution2D``, ``CuDNNLSTM``).
    """
    module = layer.get("module")
    registered = layer.get("registered_name")
    if isinstance(module, str) and module:
        if not is_keras_module(module):
            return False
        return not (isinstance(registered, str) and ">" in registered)
    cls = str(layer.get("class_name", ""))
    return cls in LAYER_CLASSES or cls in LEGACY_ONLY or upgraded_class in LAYER_CLASSES


def _legacy_plan(raw: Any) -> dict[str, Any]:
    """Era, upgrade rules that apply, Lambda recovery and blockers, before anything is built."""
    from modelport.loading.legacy.upgrade import plan

    try:
        return plan(raw).to_dict()
    except Exception as e:  # a damaged config: say so instead of failing the listing
        return {"blockers": [f"config cannot be analysed ({type(e).__name__}: {e})"]}


def describe(path: str | Path, nodes: bool = True) -> Description:
    """Layers, custom classes, Lambdas, I/O names, shapes and dtypes of a Keras model file.

    Raises:
        ModelFileError: the file is missing, damaged or not a Keras model file.
    """
    raw = read_model_file(path)
    details: dict[str, Any] = {
        "keras_version": raw.keras_version or "unknown", "backend": raw.backend or "unknown",
        "keras_major": raw.major, "weights_only": raw.weights_only,
        "legacy": _legacy_plan(raw),
    }
    if raw.config is None:
        details["weight_layers"] = _weight_layer_names(raw)
        return Description(raw.kind, str(path), [], [], [], details)
    config = raw.config
    top = top_layers(config)
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    inputs = _inputs(inner, top)
    outputs = _outputs(inner, top)
    walked = list(iter_layers(config))
    root = walked[0][0] + "/" if walked else ""  # the model itself; its name prefixes paths
    all_layers = walked[1:]
    names = {layer_name(layer) for _, layer in all_layers}
    layer_nodes = [NodeInfo(p[len(root):] if p.startswith(root) else p,
                            str(layer.get("class_name")), _inbound(layer, names))
                   for p, layer in all_layers]
    if config.get("class_name") == "Sequential":
        # a Sequential stores no inbound nodes: each top-level layer feeds the next
        by_path = {n.name: n for n in layer_nodes}
        chain = [by_path.get(layer_name(l)) for l in top]
        for prev, node in zip(chain, chain[1:]):
            if prev is not None and node is not None and not node.inputs:
                node.inputs = [prev.name]
    details.update({
        "model_class": config.get("class_name"), "model_name": inner.get("name", ""),
        "layer_count": len(all_layers), "data_format": _data_format(l for _, l in all_layers),
        "custom_classes": _custom(all_layers, _upgraded_classes(raw)),
        # no Python version here: bytecode of 3.11 and 3.12 parses alike, so a guess would mislead
        "lambdas": [{"layer": i.layer_name, "function": i.function_name or None,
                     "stored_as": i.kind, "uses": list(i.facts.names) if i.facts else []}
                    for i in find_lambdas(config)],
    })
    return Description(raw.kind, str(path), inputs, outputs, layer_nodes if nodes else [], details)


# ----------------------------------------------------------------------------- helpers


def _refs(spec: Any) -> list[str]:
    """Layer names from ``input_layers``/``output_layers``: ``[name, node, index]`` items,
    a single such item (Keras 3, one tensor), or a dict of them (Keras 3, dict outputs;
    flattened in sorted-key order as Keras flattens the outputs)."""
    return [r.layer for r in node_refs(spec)]


def _dtype(value: Any) -> str:
    if isinstance(value, dict):  # Keras 3 DTypePolicy
        value = (value.get("config") or {}).get("name", "")
    text = str(value or "float32")
    return text.split("_", 1)[1] if text.startswith("mixed_") else text


def _shape(cfg: dict[str, Any]) -> list[int | None] | None:
    for key in ("batch_shape", "batch_input_shape"):
        if isinstance(cfg.get(key), list):
            return [None if d is None else int(d) for d in cfg[key]]
    return None


def _inputs(inner: dict[str, Any], top: list[dict[str, Any]]) -> list[TensorInfo]:
    by_name = {layer_name(l): l for l in top}
    if "input_layers" in inner:
        out = []
        for name in unique_names(_refs(inner["input_layers"])):
            cfg = (by_name.get(name) or {}).get("config") or {}
            dtype = cfg.get("dtype") or cfg.get("input_dtype")  # Keras 1: input_dtype
            out.append(TensorInfo(name, _shape(cfg), _dtype(dtype)))
        return out
    if not top:
        return []
    first = top[0]
    cfg = first.get("config") or {}
    if first.get("class_name") == "InputLayer":
        return [TensorInfo(layer_name(first), _shape(cfg), _dtype(cfg.get("dtype")))]
    # a Sequential without an InputLayer entry: Keras names the input "<first layer>_input"
    shape = _shape(cfg)
    if shape is None and isinstance(inner.get("build_input_shape"), list):
        shape = [None if d is None else int(d) for d in inner["build_input_shape"]]
    return [TensorInfo(f"{layer_name(first)}_input", shape, _dtype(cfg.get("dtype")))]


def _outputs(inner: dict[str, Any], top: list[dict[str, Any]]) -> list[TensorInfo]:
    by_name = {layer_name(l): l for l in top}
    if "output_layers" in inner:
        names = _refs(inner["output_layers"])
    else:
        names = [layer_name(top[-1])] if top else []
    out = []
    for unique, name in zip(unique_names(names), names):
        layer = by_name.get(name) or {}
        cfg = layer.get("config") or {}
        out.append(TensorInfo(unique, _output_shape(layer), _dtype(cfg.get("dtype"))))
    return out


def _output_shape(layer: dict[str, Any]) -> list[int | None] | None:
    cls = layer.get("class_name")
    cfg = layer.get("config") or {}
    if cls == "InputLayer":
        return _shape(cfg)
    build = layer.get("build_config") or {}
    shape = build.get("input_shape")  # Keras 3 records the shape each layer was built for
    if not isinstance(shape, list) or not shape or isinstance(shape[0], list):
        return None
    if cls in _SAME_SHAPE:
        return list(shape)
    if cls == "Dense" and isinstance(cfg.get("units"), int):
        return list(shape[:-1]) + [cfg["units"]]
    return None


def _inbound(layer: dict[str, Any], names: set[str]) -> list[str]:
    """Names of the layers feeding ``layer``, in order, from any era's ``inbound_nodes``.

    Only names of layers in the model count, so constants in kwargs are not mistaken for
    layers.
    """
    found: list[str] = []
    for ref in node_refs(layer.get("inbound_nodes") or []):
        if ref.layer in names and ref.layer not in found:
            found.append(ref.layer)
    return found


def _data_format(layers: Iterable[dict[str, Any]]) -> str:
    """As ``modelport.loading.channels_first`` decides it: channels_first wins if any layer uses it."""
    seen = set()
    for layer in layers:
        cfg = layer.get("config")
        if not isinstance(cfg, dict) or layer.get("class_name") == "Flatten":
            continue
        fmt = cfg.get("data_format") or {"th": "channels_first", "tf": "channels_last"}.get(
            str(cfg.get("dim_ordering")))
        if fmt in ("channels_first", "channels_last"):
            seen.add(fmt)
    for fmt in ("channels_first", "channels_last"):
        if fmt in seen:
            return fmt
    return "none"


def _upgraded_classes(raw: RawModel) -> dict[str, Any]:
    """Each layer's class name after the upgrade rules (old names of Keras's own layers)."""
    from modelport.loading.legacy.upgrade import upgrade_config

    config = copy.deepcopy(raw.config)
    try:
        upgrade_config(raw, config)
    except ModelFileError:
        return {}
    return {layer_name(l): l.get("class_name") for _, l in iter_layers(config)}


def _custom(layers: list[tuple[str, dict[str, Any]]],
            upgraded: dict[str, Any]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for _, layer in layers:
        if is_builtin(layer, upgraded.get(layer_name(layer))):
            continue
        cls = str(layer.get("class_name"))
        entry = found.setdefault(cls, {"class": cls,
                                       "registered_name": layer.get("registered_name"),
                                       "module": layer.get("module"), "layers": []})
        entry["layers"].append(layer_name(layer))
    return list(found.values())


def _weight_layer_names(raw: RawModel) -> list[str]:
    import h5py

    from modelport.loading.hdf5 import read_names

    with h5py.File(raw.path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        return read_names(group.attrs, "layer_names")
