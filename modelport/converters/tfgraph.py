"""GraphDef protobuf helpers shared by the formats TensorFlow reads (SavedModel, ``.pb``):
dtype and shape from protos, node lists, parsing a GraphDef file. Not a format itself."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.errors import ModelFileError
from modelport.core.records import NodeInfo, TensorInfo

__all__ = ["proto_dtype", "proto_shape", "graph_nodes", "read_graph_def", "shape_list",
           "GraphSession"]


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


def np_dtype_of(dtype: Any) -> str:
    return str(np.dtype(dtype.as_numpy_dtype)) if dtype.is_numpy_compatible else dtype.name


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


class GraphSession:
    """A ``tf.compat.v1.Session`` over a GraphDef that fetches any tensor by name: the
    frozen ``.pb`` runner, and the SavedModel runner's view of its signature's graph."""

    def __init__(self, gd: Any, threads: int | None = None) -> None:
        import tensorflow as tf

        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.compat.v1.import_graph_def(gd, name="")
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                          inter_op_parallelism_threads=1) if threads else None
        self.session = tf.compat.v1.Session(graph=self.graph, config=config)

    def run(self, fetches: dict[str, str], feeds: dict[str, Any]) -> dict[str, Any]:
        """``fetches``: key -> tensor name; ``feeds``: tensor name -> array."""
        return self.session.run(fetches, feeds)

    def tensors(self) -> list[TensorInfo]:
        """Every floating tensor computed from a placeholder, in a topological order."""
        ops = self.graph.get_operations()
        pending = {op.name: len(op.inputs) + len(op.control_inputs) for op in ops}
        consumers: dict[str, list[Any]] = {}
        for op in ops:
            for t in op.inputs:
                consumers.setdefault(t.op.name, []).append(op)
            for c in op.control_inputs:
                consumers.setdefault(c.name, []).append(op)
        ready = collections.deque(op for op in ops if pending[op.name] == 0)
        live: set[str] = set()  # ops that depend on a placeholder
        found: list[TensorInfo] = []
        while ready:
            op = ready.popleft()
            if op.type == "Placeholder" or any(t.op.name in live for t in op.inputs):
                live.add(op.name)
                if op.type != "Placeholder":
                    for t in op.outputs:
                        if t.dtype.is_floating or t.dtype.is_quantized:
                            found.append(TensorInfo(
                                t.name, shape_list(t.shape), np_dtype_of(t.dtype),
                                {"op": op.type, "inputs": [i.name for i in op.inputs],
                                 "order": len(found)}))
            for c in consumers.get(op.name, []):
                pending[c.name] -= 1
                if pending[c.name] == 0:
                    ready.append(c)
        return found
