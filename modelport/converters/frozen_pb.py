"""Frozen GraphDef (``.pb``): variables folded to constants; placeholders named after the
Keras inputs (``image:0``) and Identity nodes named after the Keras outputs (``probs:0``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.converters.base import OPTIONAL, Route, Runner, np_dtype
from modelport.converters.tfgraph import (
    GraphSession, graph_nodes, proto_dtype, proto_shape, read_graph_def, shape_list,
)
from modelport.core.errors import ConversionError
from modelport.core.records import ArtifactRecord, ConvertOptions, Description, TensorInfo

if TYPE_CHECKING:  # pragma: no cover
    from modelport.loading.serving import Serving
    from modelport.loading.source import SourceModel

NAME = "pb"
SUFFIX = ".pb"
ALIASES = ("frozen_pb", "graphdef")
VIEW_RANK = 2
BYTE_DETERMINISTIC = "function library names carry TensorFlow's per-process counters"
MAX_BYTES = 2**31 - 1  # protobuf's hard limit for one message
RUNTIME = "tensorflow"

__all__ = ["NAME", "SUFFIX", "detect", "view_file", "companions", "routes", "load", "describe",
           "frozen_graph_def", "io_of", "unused_placeholders"]


def detect(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == SUFFIX

_NOT_OUTPUTS = {"Const", "NoOp", "Placeholder", "PlaceholderWithDefault", "Assert", "VarHandleOp"}


def view_file(path: Path) -> Path:
    """The file a graph viewer opens: the artifact itself."""
    return path


def companions(path: Path) -> list[Path]:
    """Files a viewer must serve beside the artifact: none, a frozen graph is self-contained."""
    return []


def frozen_graph_def(serving: Serving) -> Any:
    """The model's serving function as a GraphDef with constants, named I/O; built once
    per trace (ONNX converts the same graph)."""
    return serving.memo("frozen_graph_def", lambda: _freeze(serving))


def _freeze(serving: Serving) -> Any:
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    source = serving.source
    cf = serving.concrete()
    # keep While/If as functions: a TF1 session runs them and tf2onnx reads them
    frozen = convert_variables_to_constants_v2(cf, lower_control_flow=False,
                                               aggressive_inlining=True)
    gd = frozen.graph.as_graph_def()
    placeholders = [t.name.split(":")[0] for t in frozen.inputs]
    if placeholders != source.input_names:
        raise ConversionError(f"frozen graph placeholders {placeholders} do not match the Keras "
                              f"inputs {source.input_names}; rename the inputs and retry")
    import tensorflow as tf

    # frozen.outputs follow the flattened structured outputs (dict keys in sorted order)
    keys = tf.nest.flatten({k: k for k in cf.structured_outputs})
    if sorted(keys) != sorted(source.output_names) or len(keys) != len(frozen.outputs):
        raise ConversionError(f"traced outputs {keys} do not match the Keras "
                              f"outputs {source.output_names}")
    structured = dict(zip(keys, frozen.outputs))
    taken = {n.name for n in gd.node}
    for name in source.output_names:
        tensor = structured[name]
        if name in taken:
            _rename_node(gd, name, f"{name}__modelport_inner")
            tensor_name = tensor.name if tensor.name.split(":")[0] != name else \
                f"{name}__modelport_inner:{tensor.name.split(':')[1]}"
        else:
            tensor_name = tensor.name
        node = gd.node.add()
        node.name = name
        node.op = "Identity"
        node.input.append(tensor_name if not tensor_name.endswith(":0") else tensor_name[:-2])
        node.attr["T"].type = tensor.dtype.as_datatype_enum
    return canonical_order(gd)


def canonical_order(gd: Any) -> Any:
    """``gd`` with its nodes in one order whatever the process: topological, ties broken
    by name (and its library's functions by name). TensorFlow emits the frozen nodes in an
    order that varies between identical runs (the zoo's Conv1D net: 6 of 206 nodes swapped),
    which made the ``.pb`` differ byte for byte, and tf2onnx, which converts it node by
    node, name merged computations after whichever came first (InceptionV3's ONNX)."""
    import heapq

    nodes = {n.name: n for n in gd.node}
    waiting: dict[str, int] = {}
    users: dict[str, list[str]] = {}
    for n in gd.node:
        deps = {i.lstrip("^").split(":")[0] for i in n.input} & nodes.keys()
        deps.discard(n.name)
        waiting[n.name] = len(deps)
        for d in deps:
            users.setdefault(d, []).append(n.name)
    ready = [name for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for user in users.get(name, []):
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    if len(order) != len(nodes):  # a cycle (TF1 loops): the rest by name, after
        order += sorted(set(nodes) - set(order))
    ordered = [nodes[name] for name in order]
    functions = sorted(gd.library.function, key=lambda f: f.signature.name)
    out = type(gd)()
    out.CopyFrom(gd)
    del out.node[:]
    out.node.extend(ordered)
    del out.library.function[:]
    out.library.function.extend(functions)
    return out


def _rename_node(gd: Any, old: str, new: str) -> None:
    for node in gd.node:
        if node.name == old:
            node.name = new
        for i, inp in enumerate(node.input):
            base = inp.lstrip("^").split(":")[0]
            if base == old:
                node.input[i] = inp.replace(old, new, 1)


def routes(source: SourceModel, serving: Serving, options: ConvertOptions) -> list[Route]:
    """One route: the traced function with its variables folded to constants."""
    return [Route("frozen", "variables folded to constants, control flow kept as functions",
                  lambda dest: _write(source, serving, dest))]


def _write(source: SourceModel, serving: Serving, dest: Path) -> ArtifactRecord:
    gd = frozen_graph_def(serving)
    size = gd.ByteSize()
    if size > MAX_BYTES:
        raise ConversionError(
            f"frozen graph would be {size / 2**30:.2f} GiB, over protobuf's 2 GiB limit; "
            "use the SavedModel or ONNX artifact for this model instead"
        )
    dest.write_bytes(gd.SerializeToString(deterministic=True))
    inputs, outputs = serving.tensors()
    return ArtifactRecord(
        NAME, str(dest), [_tensor_name(t) for t in inputs], [_tensor_name(t) for t in outputs],
        layout=dict(source.layout),
        details={"feed": [f"{t.name}:0" for t in inputs], "fetch": [f"{t.name}:0" for t in outputs],
                 "nodes": len(gd.node)},
    )


def _tensor_name(t: TensorInfo) -> TensorInfo:
    return TensorInfo(t.name, t.shape, t.dtype, {"tensor": f"{t.name}:0"})


def io_of(gd: Any) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """Feedable placeholders and unconsumed tensors, named as ``sess.run`` accepts them.

    The inputs are the placeholders the outputs depend on: a graph built with
    ``import_graph_def(input_map=...)`` keeps the placeholders it replaced, unconnected,
    and nobody has to feed those (``unused_placeholders`` lists them).
    """
    ins, outs, _ = _graph_io(gd)
    return ins, outs


def unused_placeholders(gd: Any) -> list[str]:
    """Placeholders no output depends on, as ``name:0``."""
    return [t.name for t in _graph_io(gd)[2]]


def _graph_io(gd: Any) -> tuple[list[TensorInfo], list[TensorInfo], list[TensorInfo]]:
    def base(ref: str) -> str:
        return ref.lstrip("^").split(":")[0]

    inputs_of = {n.name: [base(i) for i in n.input] for n in gd.node}
    consumed = {i for refs in inputs_of.values() for i in refs}
    outputs = []
    for n in gd.node:
        if n.name in consumed or n.op in _NOT_OUTPUTS:
            continue
        dtype = proto_dtype(n.attr["T"].type) if "T" in n.attr else ""
        shape = None
        if "_output_shapes" in n.attr and n.attr["_output_shapes"].list.shape:
            shape = proto_shape(n.attr["_output_shapes"].list.shape[0])
        outputs.append(TensorInfo(f"{n.name}:0", shape, dtype))
    # everything the outputs need, control dependencies included (a TF1 session demands a
    # feed for any placeholder it has to run)
    needed: set[str] = set()
    stack = [t.name[:-2] for t in outputs]
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(inputs_of.get(name, []))
    inputs, unused = [], []
    for n in gd.node:
        if n.op == "Placeholder":
            shape = proto_shape(n.attr["shape"].shape) if "shape" in n.attr else None
            (inputs if n.name in needed else unused).append(
                TensorInfo(f"{n.name}:0", shape, proto_dtype(n.attr["dtype"].type)))
    return inputs, outputs, unused


class FrozenGraphRunner(Runner):
    """A ``tf.compat.v1.Session`` over the imported GraphDef; names without ``:0``."""

    format = NAME

    def __init__(self, path: str, threads: int | None = None) -> None:
        gd = read_graph_def(path)
        self._graph_session = GraphSession(gd, threads=threads)
        self._graph = self._graph_session.graph
        ins, outs, unused = _graph_io(gd)
        # placeholders no output needs may be fed (a Keras input the outputs ignore keeps
        # its place in the feed dict) but never have to be
        super().__init__(path, [self._with_graph_shape(_strip(t)) for t in ins]
                         + [self._with_graph_shape(_strip(t), OPTIONAL) for t in unused],
                         [self._with_graph_shape(_strip(t)) for t in outs])

    def _with_graph_shape(self, t: TensorInfo, extra: dict | None = None) -> TensorInfo:
        tensor = self._graph.get_tensor_by_name(f"{t.name}:0")
        return TensorInfo(t.name, shape_list(tensor.shape), np_dtype(tensor.dtype),
                          dict(extra or {}))

    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.run_with_impl(feeds, [])[0]

    def io_tensors(self) -> tuple[dict[str, str], dict[str, str]]:
        return ({t.name: f"{t.name}:0" for t in self.inputs},
                {t.name: f"{t.name}:0" for t in self.outputs})

    def tensors(self) -> list[TensorInfo]:
        """Every float tensor the session can fetch, by its graph name (``name:0``)."""
        return self._graph_session.tensors()

    def run_with_impl(self, feeds: dict[str, np.ndarray], extra: list[str],
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        fetches = {("out", t.name): f"{t.name}:0" for t in self.outputs}
        fetches.update({("extra", n): n for n in extra})
        got = self._graph_session.run(fetches, {f"{k}:0": v for k, v in feeds.items()})
        return ({k[1]: v for k, v in got.items() if k[0] == "out"},
                {k[1]: v for k, v in got.items() if k[0] == "extra"})


def _strip(t: TensorInfo) -> TensorInfo:
    return TensorInfo(t.name[:-2] if t.name.endswith(":0") else t.name, t.shape, t.dtype)


def load(path: str | Path, threads: int | None = None) -> Runner:
    return FrozenGraphRunner(str(path), threads=threads)


def describe(path: str | Path, nodes: bool = True) -> Description:
    gd = read_graph_def(path)
    inputs, outputs, unused_inputs = _graph_io(gd)
    unused = [t.name for t in unused_inputs]
    _infer_io(gd, inputs + outputs)
    return Description(NAME, str(path), inputs, outputs, graph_nodes(gd) if nodes else [],
                       {"node_count": len(gd.node),
                        "usage": "pass these names as they are to sess.run: feeds and fetches",
                        "unused_placeholders": unused,
                        "functions": [f.signature.name for f in gd.library.function]})


def _infer_io(gd: Any, tensors: list[TensorInfo]) -> None:
    """Fill unknown shapes and dtypes from TensorFlow's shape inference (a frozen graph
    rarely stores ``_output_shapes``, so outputs would otherwise show no shape)."""
    if all(t.shape is not None and t.dtype for t in tensors):
        return
    import tensorflow as tf

    graph = tf.Graph()
    try:
        with graph.as_default():
            tf.compat.v1.import_graph_def(gd, name="")
    except Exception:  # e.g. ops this TensorFlow lacks: keep what the proto says
        return
    for t in tensors:
        tensor = graph.get_tensor_by_name(t.name)
        if t.shape is None:
            t.shape = shape_list(tensor.shape)
        if not t.dtype:
            t.dtype = np_dtype(tensor.dtype)
