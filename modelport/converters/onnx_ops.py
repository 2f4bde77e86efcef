"""What tf2onnx (1.17) cannot take as TensorFlow gives it, prepared by modelport: op types
it does not map, lowered to standard ONNX ops as tf2onnx ``custom_op_handlers``
(``handler(ctx, node, name, args)`` rewrites the node in place), and function calls
marked for XLA, made inlinable before tf2onnx's own inlining pass."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

__all__ = ["tf2onnx_handlers", "inlinable"]

# attributes that stop Grappler's function inliner: XLA compilation is a choice of the
# TensorFlow runtime (Keras 3 compiles grouped convolutions with it on CPU); ONNX runs the
# function's ops themselves
_NO_INLINE = ("_noinline", "_XlaMustCompile")


def inlinable(graph_def: Any) -> Any:
    """A copy of a frozen GraphDef whose function calls tf2onnx can inline (the original,
    which the ``.pb`` artifact keeps, is not modified)."""
    if not any(a in f.attr for f in graph_def.library.function for a in _NO_INLINE):
        return graph_def
    out = copy.deepcopy(graph_def)
    for f in out.library.function:
        for a in _NO_INLINE:
            f.attr.pop(a, None)
    for node in list(out.node) + [n for f in out.library.function for n in f.node_def]:
        for a in _NO_INLINE:
            node.attr.pop(a, None)
    return out


def _const(ctx: Any, name: str, x: str, value: float) -> Any:
    from tf2onnx import utils

    np_type = utils.map_onnx_to_numpy_type(ctx.get_dtype(x))
    return ctx.make_const(utils.make_name(name), np.array(value, dtype=np_type))


def _erfc(ctx: Any, node: Any, name: str, args: Any) -> None:
    """``Erfc`` (Keras 3's exact GELU lowers to it; ONNX has no such op): ``1 - Erf(x)``."""
    from tf2onnx import utils

    x = node.input[0]
    one = _const(ctx, f"{name}_one", x, 1)
    erf = ctx.make_node("Erf", [x], name=utils.make_name(f"{name}_erf"))
    node.type = "Sub"
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])


def _expm1(ctx: Any, node: Any, name: str, args: Any) -> None:
    """``Expm1`` (Keras' ``celu``, ``keras.ops.expm1``): ``Exp(x) - 1``."""
    from tf2onnx import utils

    x = node.input[0]
    one = _const(ctx, f"{name}_one", x, 1)
    exp = ctx.make_node("Exp", [x], name=utils.make_name(f"{name}_exp"))
    node.type = "Sub"
    ctx.replace_inputs(node, [exp.output[0], one.output[0]])


def _log1p(ctx: Any, node: Any, name: str, args: Any) -> None:
    """``Log1p`` (``keras.ops.log1p``): ``Log(1 + x)``."""
    from tf2onnx import utils

    x = node.input[0]
    one = _const(ctx, f"{name}_one", x, 1)
    add = ctx.make_node("Add", [one.output[0], x], name=utils.make_name(f"{name}_add"))
    node.type = "Log"
    ctx.replace_inputs(node, [add.output[0]])


def _x_times(op: str) -> Any:
    """``Xlogy`` / ``Xdivy``: ``x * log(y)`` / ``x / y``, and 0 where ``x == 0``."""

    def handler(ctx: Any, node: Any, name: str, args: Any) -> None:
        from tf2onnx import utils

        x, y = node.input[0], node.input[1]
        zero = _const(ctx, f"{name}_zero", x, 0)
        if op == "log":
            inner = ctx.make_node("Log", [y], name=utils.make_name(f"{name}_log"))
            value = ctx.make_node("Mul", [x, inner.output[0]], name=utils.make_name(f"{name}_mul"))
        else:
            value = ctx.make_node("Div", [x, y], name=utils.make_name(f"{name}_div"))
        is_zero = ctx.make_node("Equal", [x, zero.output[0]], name=utils.make_name(f"{name}_eq"))
        node.type = "Where"
        ctx.replace_inputs(node, [is_zero.output[0], zero.output[0], value.output[0]])

    return handler


def tf2onnx_handlers() -> dict[str, tuple[Any, list]]:
    """``custom_op_handlers`` for ``tf2onnx.convert``: op type -> (handler, args)."""
    return {"Erfc": (_erfc, []), "Expm1": (_expm1, []), "Log1p": (_log1p, []),
            "Xlogy": (_x_times("log"), []), "Xdivy": (_x_times("div"), [])}
