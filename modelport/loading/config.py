"""Walk a Keras model config (any era) without building it: the one traversal every check,
rule and description uses, plus the small readers built on it (layers, names, node
references, which modules are Keras's own)."""

from __future__ import annotations

from typing import Any, Callable, Iterator, NamedTuple

__all__ = ["KERAS_MODULE_ROOTS", "NOT_BUILT", "walk", "iter_layers", "layer_name", "layer_list",
           "top_layers", "referenced_names", "NodeRef", "node_refs", "is_keras_module"]

# packages whose classes and functions a config may name as Keras's own
KERAS_MODULE_ROOTS = ("keras", "tf_keras", "tensorflow", "keras_nlp", "keras_hub", "keras_cv")
# keys of a model config that no loader reads with compile=False (Keras 3 drops the
# compile config before deserializing): never checked, never required
NOT_BUILT = ("compile_config",)
# keys under which a layer config holds other layers
_STRUCTURE = ("layers", "layer", "forward_layer", "backward_layer", "cell", "cells")


def is_keras_module(module: Any) -> bool:
    """Whether a config's ``module`` string belongs to Keras/TensorFlow."""
    return isinstance(module, str) and module.split(".")[0] in KERAS_MODULE_ROOTS


def _is_object(node: Any) -> bool:
    return isinstance(node, dict) and "class_name" in node and "config" in node


def layer_name(layer: Any, default: str = "") -> str:
    """A layer entry's name (the entry's own ``name``, else its config's)."""
    if not isinstance(layer, dict):
        return default
    cfg = layer.get("config")
    name = layer.get("name") or (cfg.get("name") if isinstance(cfg, dict) else None)
    return str(name) if name else default


def walk(node: Any, path: str = "", *, layers_only: bool = False,
         skip: tuple[str, ...] = (), sort_keys: bool = False,
         prune: Callable[[Any], bool] | None = None) -> Iterator[tuple[str, Any]]:
    """Depth first over a config: every dict and list, each with the path of the layers
    that enclose it (a layer's own path ends with its name).

    Args:
        node: a config, or any part of one.
        path: the path of ``node``'s enclosing layer.
        layers_only: follow only what holds layers (``layers``, ``layer``, ``cell``...,
            and the list form of old Sequential configs), not layer arguments.
        skip: keys whose values are not entered.
        sort_keys: enter dict values in sorted-key order (Keras' order for dict outputs).
        prune: called on each yielded node; ``True`` means do not enter it.
    """
    if isinstance(node, dict):
        here = path
        if _is_object(node):
            name = layer_name(node)
            here = f"{path}/{name}" if path and name else path or name or str(node["class_name"])
        yield here, node
        if prune is not None and prune(node):
            return
        if layers_only:
            body = node.get("config") if _is_object(node) else node
            if isinstance(body, list):
                yield from walk(body, here, layers_only=True)
            elif isinstance(body, dict):
                for key in _STRUCTURE:
                    if key in body:
                        yield from walk(body[key], here, layers_only=True)
            return
        for key in sorted(node, key=str) if sort_keys else list(node):
            if key not in skip:
                yield from walk(node[key], here, skip=skip, sort_keys=sort_keys, prune=prune)
    elif isinstance(node, list):
        if not layers_only:
            yield path, node
            if prune is not None and prune(node):
                return
        for item in node:
            yield from walk(item, path, layers_only=layers_only, skip=skip,
                            sort_keys=sort_keys, prune=prune)


def iter_layers(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """``(path, layer)`` for every ``{"class_name", "config"}`` layer, nested models and
    wrapped layers (TimeDistributed, Bidirectional) included; the model itself first."""
    for where, item in walk(node, path, layers_only=True):
        if _is_object(item):
            yield where, item


def layer_list(entry: Any) -> list[Any] | None:
    """The (mutable) list of layers of a model entry, in the dict or the Keras <= 2.1.6
    list form; ``None`` when it has none."""
    if not isinstance(entry, dict):
        return None
    cfg = entry.get("config")
    layers = cfg.get("layers") if isinstance(cfg, dict) else cfg
    return layers if isinstance(layers, list) else None


def top_layers(config: Any) -> list[dict[str, Any]]:
    """The model's own layer entries (not those of nested models)."""
    return [l for l in layer_list(config) or [] if isinstance(l, dict)]


def referenced_names(config: Any) -> set[str]:
    """Every ``class_name`` and ``registered_name`` string anywhere in the config."""
    found: set[str] = set()
    for _, node in walk(config):
        if isinstance(node, dict):
            found.update(v for k in ("class_name", "registered_name")
                         if isinstance(v := node.get(k), str))
    return found


class NodeRef(NamedTuple):
    """A reference to a tensor: the ``node``-th call of ``layer``, its ``tensor``-th output.
    ``node`` is as stored (a damaged file may hold anything there)."""

    layer: str
    node: Any
    tensor: Any


def _ref(x: Any) -> NodeRef | None:
    if isinstance(x, dict):  # Keras 3: {"keras_history": [layer, node, tensor]}
        hist = x.get("keras_history")
        if isinstance(hist, list) and len(hist) >= 2 and isinstance(hist[0], str):
            return NodeRef(hist[0], hist[1], hist[2] if len(hist) > 2 else 0)
        return None
    # Keras 1/2: [layer, node, tensor] or [layer, node, tensor, call kwargs]
    if isinstance(x, list) and len(x) >= 3 and isinstance(x[0], str) and all(
            isinstance(i, int) and not isinstance(i, bool) for i in x[1:3]):
        return NodeRef(x[0], x[1], x[2])
    return None


def node_refs(node: Any) -> list[NodeRef]:
    """Every tensor reference in ``inbound_nodes``, ``input_layers`` or ``output_layers``
    of any era, in order (dict entries by sorted key, as Keras flattens dict outputs),
    including references passed as call arguments (``tf.add(x, y)`` in tf.keras)."""
    refs: list[NodeRef] = []
    for _, x in walk(node, sort_keys=True, prune=lambda x: _ref(x) is not None):
        ref = _ref(x)
        if ref is not None:
            refs.append(ref)
            if isinstance(x, list):
                refs += node_refs(x[3:])
    return refs
