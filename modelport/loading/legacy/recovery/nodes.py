"""The expression tree a recovered Lambda computes, and how to compute and print it."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

__all__ = ["Node", "Arg", "Const", "Call", "BinOp", "Unary", "Subscript", "Seq", "SliceNode",
           "evaluate", "show", "called", "BINARY", "COMPARE"]


class Node:
    """A value computed by the recovered function."""


@dataclass(frozen=True)
class Arg(Node):
    name: str


@dataclass(frozen=True)
class Const(Node):
    value: Any


@dataclass(frozen=True)
class Call(Node):
    fn: str  # canonical name in ``vetted.FUNCTIONS``
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node], ...]


@dataclass(frozen=True)
class BinOp(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Subscript(Node):
    value: Node
    index: Node


@dataclass(frozen=True)
class Seq(Node):
    kind: str  # "tuple" or "list"
    items: tuple[Node, ...]


@dataclass(frozen=True)
class SliceNode(Node):
    start: Node
    stop: Node
    step: Node


def _py2_divide(a: Any, b: Any) -> Any:
    # Python 2 '/' floors two ints and divides everything else
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    return operator.truediv(a, b)


BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "@": operator.matmul,
          "py2/": _py2_divide}
COMPARE = {"<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
           ">": operator.gt, ">=": operator.ge}


def evaluate(node: Node, env: dict[str, Any]) -> Any:
    """Compute ``node`` with the arguments in ``env`` (tensors or literals)."""
    from modelport.loading.legacy.recovery.vetted import FUNCTIONS

    if isinstance(node, Arg):
        return env[node.name]
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Seq):
        items = [evaluate(i, env) for i in node.items]
        return items if node.kind == "list" else tuple(items)
    if isinstance(node, SliceNode):
        return slice(evaluate(node.start, env), evaluate(node.stop, env), evaluate(node.step, env))
    if isinstance(node, Subscript):
        return operator.getitem(evaluate(node.value, env), evaluate(node.index, env))
    if isinstance(node, BinOp):
        fn = BINARY.get(node.op) or COMPARE[node.op]
        return fn(evaluate(node.left, env), evaluate(node.right, env))
    if isinstance(node, Unary):
        value = evaluate(node.operand, env)
        return operator.neg(value) if node.op == "-" else operator.pos(value)
    if isinstance(node, Call):
        args = [evaluate(a, env) for a in node.args]
        kwargs = {k: evaluate(v, env) for k, v in node.kwargs}
        return FUNCTIONS[node.fn](*args, **kwargs)
    raise TypeError(f"not an expression node: {node!r}")


def called(node: Node) -> set[str]:
    """The canonical names of every function ``node`` calls."""
    if isinstance(node, Call):
        inner = [*node.args, *(v for _, v in node.kwargs)]
        return {node.fn}.union(*(called(n) for n in inner))
    children = {Seq: lambda n: n.items, SliceNode: lambda n: (n.start, n.stop, n.step),
                Subscript: lambda n: (n.value, n.index), BinOp: lambda n: (n.left, n.right),
                Unary: lambda n: (n.operand,)}.get(type(node))
    return set().union(*(called(c) for c in children(node))) if children else set()


def show(node: Node) -> str:
    """Readable source-like text of ``node`` (for logs and the manifest)."""
    if isinstance(node, Arg):
        return node.name
    if isinstance(node, Const):
        return repr(node.value)
    if isinstance(node, Seq):
        inner = ", ".join(show(i) for i in node.items)
        if node.kind == "list":
            return f"[{inner}]"
        return f"({inner},)" if len(node.items) == 1 else f"({inner})"
    if isinstance(node, SliceNode):
        parts = ["" if isinstance(p, Const) and p.value is None else show(p)
                 for p in (node.start, node.stop, node.step)]
        return ":".join(parts[:2] if parts[2] == "" else parts)
    if isinstance(node, Subscript):
        index = node.index
        inner = ", ".join(show(i) for i in index.items) if isinstance(index, Seq) and \
            index.kind == "tuple" else show(index)
        return f"{show(node.value)}[{inner}]"
    if isinstance(node, BinOp):
        return f"({show(node.left)} {node.op.replace('py2', '')} {show(node.right)})"
    if isinstance(node, Unary):
        return f"{node.op}{show(node.operand)}"
    if isinstance(node, Call):
        args = [show(a) for a in node.args] + [f"{k}={show(v)}" for k, v in node.kwargs]
        return f"{node.fn}({', '.join(args)})"
    return repr(node)
