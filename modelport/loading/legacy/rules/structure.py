"""Rules that reshape the model's structure rather than one layer's arguments."""

from __future__ import annotations

from typing import Any

from modelport.core.errors import ModelFileError
from modelport.loading.config import iter_layers, layer_list
from modelport.loading.legacy.rules.base import Context, keras1, pre_keras3, rule

__all__: list[str] = []

_CONTAINERS = ("Sequential", "Model", "Functional")


def _containers(root: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [layer for _, layer in iter_layers(root) if layer.get("class_name") == kind]


@rule("sequential_list_config",
      "Keras <= 2.1.6 stored a Sequential's config as a bare list of layers; wrap it "
      "as {'name', 'layers'}", when=pre_keras3, model=True)
def sequential_list_config(root: dict[str, Any], ctx: Context) -> bool:
    changed = False
    for seq in _containers(root, "Sequential"):
        if isinstance(seq.get("config"), list):
            # a nested Sequential is referenced by its entry name in inbound_nodes
            seq["config"] = {"name": seq.get("name", "sequential"), "layers": seq["config"]}
            changed = True
    return changed


@rule("sequential_input_layer",
      "old Sequential files give the first layer a batch_input_shape; Keras 3 drops it or "
      "adds a second batch dimension, so it becomes an explicit InputLayer",
      when=pre_keras3, model=True)
def sequential_input_layer(root: dict[str, Any], ctx: Context) -> bool:
    changed = False
    for seq in _containers(root, "Sequential"):
        cfg = seq.get("config")
        layers = cfg.get("layers") if isinstance(cfg, dict) else None
        if not layers or not isinstance(layers[0], dict):
            continue
        first = layers[0]
        fcfg = first.get("config")
        if first.get("class_name") == "InputLayer" or not isinstance(fcfg, dict):
            continue
        shape = fcfg.get("batch_input_shape")
        if shape is None:
            continue
        dtype = fcfg.get("dtype") or fcfg.get("input_dtype") or "float32"
        # tf_keras names the implicit input "<first layer>_input": keep that name
        layers.insert(0, {"class_name": "InputLayer", "config": {
            "batch_input_shape": list(shape), "dtype": dtype, "sparse": False,
            "name": f"{fcfg.get('name', 'layer')}_input"}})
        # Embedding's input_dim is its vocabulary size, not a shape
        keys = ["batch_input_shape", "input_dtype"]
        if first.get("class_name") != "Embedding":
            keys += ["input_dim", "input_length"]
        for key in keys:
            fcfg.pop(key, None)
        changed = True
    return changed


@rule("keras1_node_refs",
      "Keras 1 inbound node references were [layer, node, tensor] triples; Keras 2 added "
      "a kwargs dict", when=keras1, model=True)
def keras1_node_refs(root: dict[str, Any], ctx: Context) -> bool:
    changed = False
    for _, layer in iter_layers(root):
        for node in layer.get("inbound_nodes") or []:
            if not isinstance(node, list):
                continue
            for ref in node:
                if isinstance(ref, list) and len(ref) == 3:
                    ref.append({})
                    changed = True
    return changed


_MERGE_MODES = {"sum": "Add", "mul": "Multiply", "ave": "Average", "max": "Maximum",
                "concat": "Concatenate", "dot": "Dot"}


@rule("legacy_merge_layer",
      "the Keras 1 Merge layer (kept as a legacy layer until Keras 2.2) became Add, "
      "Multiply, Average, Maximum, Concatenate and Dot", when=pre_keras3, classes=["Merge"])
def legacy_merge_layer(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = layer.get("config") or {}
    mode = cfg.get("mode", "sum")
    name = cfg.get("name", "merge")
    if "layers" in cfg and cfg["layers"]:
        raise ModelFileError(
            f"layer {name}: a Sequential Merge of branch models (Keras 1) has no Keras 2+ "
            "equivalent; rebuild it as a functional model and re-save it")
    if not isinstance(mode, str) or cfg.get("mode_type") not in (None, "raw") \
            or mode not in _MERGE_MODES:
        raise ModelFileError(
            f"layer {name}: Merge(mode={mode!r}) has no Keras 2+ layer with the same "
            "output; rebuild it with keras.layers (Dot(normalize=True) + Reshape for 'cos') "
            "and re-save the model")
    new: dict[str, Any] = {"name": name, "trainable": cfg.get("trainable", True)}
    if mode == "concat":
        new["axis"] = cfg.get("concat_axis", -1)
    if mode == "dot":
        new["axes"] = cfg.get("dot_axes", -1)
    layer["class_name"] = _MERGE_MODES[mode]
    layer["config"] = new
    return True



def _stack(node: Any) -> list[dict[str, Any]] | None:
    """The layer list of a Sequential entry in either the list or the dict form."""
    if not isinstance(node, dict) or node.get("class_name") != "Sequential":
        return None
    return layer_list(node)


def merge_branches(root: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """``[(branch name, branch layers)]`` when ``root`` is a Sequential that starts with a
    Keras 1 ``Merge`` of branch models; ``[]`` otherwise. Names are stable: the weights
    upgrade calls this on the stored config to regroup the weights the same way."""
    layers = _stack(root)
    first = layers[0] if layers else None
    cfg = first.get("config") if isinstance(first, dict) else None
    if not (isinstance(cfg, dict) and first.get("class_name") == "Merge" and cfg.get("layers")):
        return []
    merge = str(cfg.get("name", "merge"))
    out = []
    for i, branch in enumerate(cfg["layers"]):
        inner = _stack(branch)
        if not inner:
            raise ModelFileError(f"layer {merge}: branch {i} is not a Sequential model; rebuild "
                                 "the model as a functional model and re-save it")
        named = branch["config"].get("name") if isinstance(branch["config"], dict) else None
        out.append((str(named or f"{merge}_branch_{i}"), inner))
    return out


@rule("sequential_merge_branches",
      "a Keras 1 Sequential starting with Merge([branch models]) becomes a functional model: "
      "one input per branch, each branch a nested Sequential, then the rest of the stack",
      when=pre_keras3, model=True)
def sequential_merge_branches(root: dict[str, Any], ctx: Context) -> bool:
    branches = merge_branches(root)
    if not branches:
        return False
    stack = _stack(root) or []
    merge_cfg = {k: v for k, v in stack[0]["config"].items() if k != "layers"}
    merge_name = str(merge_cfg.get("name", "merge"))
    layers: list[dict[str, Any]] = []
    inputs, refs = [], []
    for name, inner in branches:
        first = inner[0].get("config") or {}
        shape = first.pop("batch_input_shape", None)
        if shape is None:
            raise ModelFileError(f"layer {merge_name}: branch {name} declares no input shape")
        dtype = first.pop("dtype", None) or first.pop("input_dtype", None) or "float32"
        input_name = f"{first.get('name', name)}_input"  # the name Keras 1 gave this input
        layers.append({"name": input_name, "class_name": "InputLayer", "inbound_nodes": [],
                       "config": {"name": input_name, "batch_input_shape": shape,
                                  "dtype": dtype, "sparse": False}})
        layers.append({"name": name, "class_name": "Sequential", "inbound_nodes": [
            [[input_name, 0, 0, {}]]], "config": {"name": name, "layers": inner}})
        inputs.append([input_name, 0, 0])
        # node 1: a nested Sequential's node 0 is its own input-to-output node, built
        # when it is first called (Keras 1 numbered container nodes the same way)
        refs.append([name, 1, 0, {}])
    layers.append({"name": merge_name, "class_name": "Merge", "config": merge_cfg,
                   "inbound_nodes": [refs]})
    previous = merge_name
    for layer in stack[1:]:
        name = str((layer.get("config") or {}).get("name", f"layer_{len(layers)}"))
        layers.append({**layer, "name": name, "inbound_nodes": [[[previous, 0, 0, {}]]]})
        previous = name
    root["class_name"] = "Model"
    root["config"] = {"name": "sequential_merged", "layers": layers, "input_layers": inputs,
                      "output_layers": [[previous, 0, 0]]}
    return True
