"""Helpers the fuzz tests share: mutate one node of a JSON-like config in place."""

from __future__ import annotations

from typing import Any, Iterator


def node_paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path (a tuple of keys and indices) into a JSON-like value, the root first."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from node_paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from node_paths(v, prefix + (i,))


def replace_node(config: Any, which: int, value: Any) -> None:
    """Replace the ``which``-th non-root node (modulo their count) with ``value``."""
    paths = [p for p in node_paths(config) if p]
    target = paths[which % len(paths)]
    node = config
    for key in target[:-1]:
        node = node[key]
    node[target[-1]] = value
