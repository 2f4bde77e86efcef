"""Walk a Keras model config (any era) without building it."""

from __future__ import annotations

from typing import Any, Iterator

__all__ = ["iter_layers", "referenced_names"]


def iter_layers(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(path, layer_dict)`` for every ``{"class_name", "config"}`` layer, nested
    models and wrapped layers (TimeDistributed, Bidirectional) included."""
    if isinstance(node, dict):
        if "class_name" in node and "config" in node:
            cfg = node.get("config")
            name = cfg.get("name", "") if isinstance(cfg, dict) else ""
            here = f"{path}/{name}" if path else str(name or node["class_name"])
            yield here, node
            path = here
            children: Any = cfg
        else:
            children = node
        if isinstance(children, dict):
            for key in ("layers", "layer", "forward_layer", "backward_layer", "cell", "cells"):
                if key in children:
                    yield from iter_layers(children[key], path)
        elif isinstance(children, list):  # Keras <= 2.1.6 Sequential: config is a list
            yield from iter_layers(children, path)
    elif isinstance(node, list):
        for item in node:
            yield from iter_layers(item, path)


def referenced_names(config: Any) -> set[str]:
    """Every ``class_name`` and ``registered_name`` string anywhere in the config."""
    found: set[str] = set()

    def visit(x: Any) -> None:
        if isinstance(x, dict):
            for key in ("class_name", "registered_name"):
                v = x.get(key)
                if isinstance(v, str):
                    found.add(v)
            for v in x.values():
                visit(v)
        elif isinstance(x, list):
            for v in x:
                visit(v)

    visit(config)
    return found
