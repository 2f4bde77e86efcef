"""GraphDef protobuf helpers shared by the formats TensorFlow reads (SavedModel, ``.pb``):
dtype and shape from protos, node lists, parsing a GraphDef file. Not a format itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.errors import ModelFileError
from modelport.core.records import NodeInfo

__all__ = ["proto_dtype", "proto_shape", "graph_nodes", "read_graph_def", "shape_list"]


def proto_dtype(enum: int) -> str:
    import tensorflow as tf

    try:
        return str(np.dtype(tf.dtypes.as_dtype(enum).as_numpy_dtype))
    except (TypeError, ValueError):
        return tf.dtypes.as_dtype(enum).name


def proto_shape(shape_proto: Any) -> list[int | None] | None:
    if shape_proto.unknown_rank:
        return None
    return [None if d.size < 0 else int(d.size) for d in shape_proto.dim]


def shape_list(shape: Any) -> list[int | None] | None:
    """A ``tf.TensorShape`` as a list (``None`` for an unknown rank or dimension)."""
    if shape.rank is None:
        return None
    return [None if d is None else int(d) for d in shape.as_list()]


def graph_nodes(gd: Any) -> list[NodeInfo]:
    return [NodeInfo(n.name, n.op, list(n.input)) for n in gd.node]


def read_graph_def(path: str | Path) -> Any:
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    try:
        gd.ParseFromString(Path(path).read_bytes())
    except Exception as e:
        raise ModelFileError(f"{path}: not a GraphDef protobuf ({e}); pass a frozen .pb") from None
    return gd
