"""TensorFlow ops tf2onnx (1.17) does not map, lowered by modelport to standard ONNX ops,
as tf2onnx ``custom_op_handlers`` (``handler(ctx, node, name, args)`` rewrites the node in
place)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["tf2onnx_handlers"]


def _erfc(ctx: Any, node: Any, name: str, args: Any) -> None:
    """tf2onnx handler for ``Erfc`` (Keras 3's exact GELU lowers to it; ONNX has no such
    op): ``1 - Erf(x)``."""
    from tf2onnx import utils

    x = node.input[0]
    np_type = utils.map_onnx_to_numpy_type(ctx.get_dtype(x))
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype=np_type))
    erf = ctx.make_node("Erf", [x], name=utils.make_name(f"{name}_erf"))
    node.type = "Sub"
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])


def tf2onnx_handlers() -> dict[str, tuple[Any, list]]:
    """``custom_op_handlers`` for ``tf2onnx.convert``: op type -> (handler, args)."""
    return {"Erfc": (_erfc, [])}
