"""Structural checks on a functional model config before a loader sees it.

tf_keras rebuilds a functional model by re-queueing nodes whose inputs do not exist yet; a
config that refers to a missing layer, a node that is never created, or a cycle makes it
loop forever (found by tests/test_fuzz.py). We check the node graph first.
"""

from __future__ import annotations

from typing import Any, Iterator

from modelport.core.errors import ModelFileError
from modelport.loading.config import iter_layers, layer_name, node_refs

__all__ = ["check_graph"]

_FUNCTIONAL = {"Functional", "Model"}


def _refs(node: Any) -> Iterator[tuple[str, int]]:
    """``(layer_name, node_index)`` pairs a node config consumes, in any Keras format."""
    for ref in node_refs(node):
        yield ref.layer, _index(ref.node)


def _index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelFileError(f"model config: node index {value!r} is not an integer; the "
                             "file is damaged")
    return value


def _check_functional(cfg: dict[str, Any], where: str) -> None:
    layers = cfg.get("layers")
    if not isinstance(layers, list):
        raise ModelFileError(f"model config {where}: 'layers' is not a list; the file is damaged")
    nodes: dict[str, int] = {}
    deps: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for layer in layers:
        if not isinstance(layer, dict):
            raise ModelFileError(f"model config {where}: a layer entry is not an object")
        name = layer_name(layer) or None
        if not isinstance(name, str):
            raise ModelFileError(f"model config {where}: a layer has no name; the file is damaged")
        if name in nodes:
            raise ModelFileError(f"model config {where}: two layers are named {name!r}")
        inbound = layer.get("inbound_nodes") or []
        if not isinstance(inbound, list):
            raise ModelFileError(f"model config {where}: {name}.inbound_nodes is not a list")
        # an InputLayer has one implicit node; a nested model also counts the node it was
        # built with, so its config indices run one past its listed inbound nodes; any
        # other layer has exactly the nodes listed (a reference past them never resolves
        # and makes the loaders spin)
        cls = layer.get("class_name")
        if cls == "InputLayer":
            nodes[name] = max(len(inbound), 1)
        elif cls in ("Functional", "Model", "Sequential") and inbound:
            nodes[name] = len(inbound) + 1
        else:
            nodes[name] = len(inbound)
        for i, node in enumerate(inbound):
            deps[(name, i)] = list(_refs(node))
    for (name, i), refs in deps.items():
        for ref, idx in refs:
            if ref not in nodes or not 0 <= idx < nodes[ref]:
                raise ModelFileError(
                    f"model config {where}: layer {name!r} takes its input from "
                    f"{ref!r} node {idx}, which does not exist; the file is damaged")
    for key in ("input_layers", "output_layers"):
        for ref, idx in _refs(cfg.get(key, [])):
            if ref not in nodes or not 0 <= idx < nodes[ref]:
                raise ModelFileError(f"model config {where}: {key} names {ref!r} node {idx}, "
                                     "which does not exist; the file is damaged")
    _acyclic(deps, where)


def _acyclic(deps: dict[tuple[str, int], list[tuple[str, int]]], where: str) -> None:
    state: dict[tuple[str, int], int] = {}
    for start in deps:
        stack = [(start, iter(deps.get(start, [])))]
        if state.get(start) == 2:
            continue
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                continue
            if state.get(nxt) == 1:
                raise ModelFileError(f"model config {where}: layer {nxt[0]!r} depends on its "
                                     "own output (a cycle); the file is damaged")
            if state.get(nxt) is None:
                state[nxt] = 1
                stack.append((nxt, iter(deps.get(nxt, []))))


def check_graph(config: Any) -> None:
    """Raise ``ModelFileError`` when a functional (sub)model's node graph cannot be built."""
    for where, layer in iter_layers(config):
        if layer.get("class_name") in _FUNCTIONAL and isinstance(layer.get("config"), dict) \
                and "input_layers" in layer["config"]:
            _check_functional(layer["config"], where)
