"""Fault injection: write broken copies of good artifacts, to prove a validator catches them.

Each function reads a working artifact and writes a faulty one that still loads and runs,
which is what makes these faults dangerous: weights scaled by a few percent (all of them,
or one layer in the middle of the network: ``*_scale_middle_layer``), NaN outputs, an
ONNX that reads its input as NCHW, outputs reordered or bound to the wrong names. The
test suite uses them; they are also handy for checking a deployment pipeline's own checks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "onnx_scale_weights", "onnx_nan_output", "onnx_expect_layout", "onnx_output_layout",
    "onnx_reorder_outputs",
    "onnx_swap_output_names", "tflite_scale_weights", "pb_scale_weights",
    "onnx_scale_middle_layer", "tflite_scale_middle_layer", "pb_scale_middle_layer",
    "savedmodel_scale_middle_layer",
]

log = logging.getLogger(__name__)


def _middle(items: list[Any]) -> Any:
    if not items:
        raise ValueError("the artifact has no layer with a weight tensor to scale")
    return items[len(items) // 2]


def _onnx(src: str | Path):
    import onnx

    return onnx.load(str(src))


def _save_onnx(model: Any, dest: str | Path) -> Path:
    import onnx

    onnx.checker.check_model(model)
    onnx.save(model, str(dest))
    return Path(dest)


def onnx_scale_weights(src: str | Path, dest: str | Path, factor: float = 1.02) -> Path:
    """Multiply every float initializer with more than one element by ``factor``."""
    from onnx import numpy_helper

    model = _onnx(src)
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.dtype.kind == "f" and w.size > 1:
            init.CopyFrom(numpy_helper.from_array((w * factor).astype(w.dtype), init.name))
    return _save_onnx(model, dest)


def _rename_tensor(g: Any, old: str, new: str) -> None:
    """Every node that produced or read ``old`` now produces or reads ``new``."""
    for node in g.node:
        node.output[:] = [new if o == old else o for o in node.output]
        node.input[:] = [new if i == old else i for i in node.input]


def _permute_dims(vi: Any, perm: list[int]) -> None:
    """Permute the declared dimensions of a graph input or output."""
    dims = list(vi.type.tensor_type.shape.dim)
    copies = [type(d)() for d in dims]
    for c, i in zip(copies, perm):
        c.CopyFrom(dims[i])
    del vi.type.tensor_type.shape.dim[:]
    vi.type.tensor_type.shape.dim.extend(copies)


def onnx_nan_output(src: str | Path, dest: str | Path, output: str | None = None) -> Path:
    """Make one output (the first by default) NaN by adding a NaN constant before it."""
    import onnx
    from onnx import helper, numpy_helper

    model = _onnx(src)
    g = model.graph
    vi = next(o for o in g.output if output is None or o.name == output)
    inner = f"{vi.name}__before_nan"
    _rename_tensor(g, vi.name, inner)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
    g.initializer.append(numpy_helper.from_array(np.array(np.nan, dtype=dtype), "nan__const"))
    g.node.append(helper.make_node("Add", [inner, "nan__const"], [vi.name], name="inject_nan"))
    return _save_onnx(model, dest)


def onnx_expect_layout(src: str | Path, dest: str | Path, input_name: str | None = None,
                       actual: str = "NHWC", expected: str = "NCHW") -> Path:
    """An ONNX computing the same function of an input fed in ``expected`` layout.

    The input (the first by default) is renamed, its declared dims are permuted, and a
    Transpose turns the ``expected`` feed back into what the graph was built for. Fed in the
    ``actual`` layout, the artifact answers wrongly, without any shape error when H == W == C.
    """
    from onnx import helper

    from modelport.validators.layout import permutation

    model = _onnx(src)
    g = model.graph
    vi = next(i for i in g.input if input_name is None or i.name == input_name)
    name, inner = vi.name, f"{vi.name}__{actual.lower()}"
    _rename_tensor(g, name, inner)
    _permute_dims(vi, permutation(actual, expected))
    node = helper.make_node("Transpose", [name], [inner], name="inject_layout",
                            perm=permutation(expected, actual))
    g.node.insert(0, node)
    return _save_onnx(model, dest)


def onnx_output_layout(src: str | Path, dest: str | Path, output: str | None = None,
                       actual: str = "NHWC", produced: str = "NCHW") -> Path:
    """An ONNX whose output (the first by default) comes out transposed to ``produced``."""
    from onnx import helper

    from modelport.validators.layout import permutation

    model = _onnx(src)
    g = model.graph
    vi = next(o for o in g.output if output is None or o.name == output)
    inner = f"{vi.name}__{actual.lower()}"
    _rename_tensor(g, vi.name, inner)
    _permute_dims(vi, permutation(actual, produced))
    g.node.append(helper.make_node("Transpose", [inner], [vi.name], name="inject_out_layout",
                                   perm=permutation(actual, produced)))
    return _save_onnx(model, dest)


def onnx_reorder_outputs(src: str | Path, dest: str | Path) -> Path:
    """Reverse the order of the graph outputs, names kept (a correct artifact still)."""
    model = _onnx(src)
    outs = list(model.graph.output)[::-1]
    del model.graph.output[:]
    model.graph.output.extend(outs)
    return _save_onnx(model, dest)


def onnx_swap_output_names(src: str | Path, dest: str | Path, a: str, b: str) -> Path:
    """Swap the names of outputs ``a`` and ``b``: each name now carries the other's values."""
    from modelport.converters.onnx import rename_values

    model = _onnx(src)
    g = model.graph
    rename_values(g, {a: f"{a}__swap"})
    rename_values(g, {b: a})
    rename_values(g, {f"{a}__swap": b})
    outs = {o.name: o for o in g.output}
    # keep each output's declared type/shape with the values it now names
    ta, tb = type(outs[a].type)(), type(outs[b].type)()
    ta.CopyFrom(outs[b].type)
    tb.CopyFrom(outs[a].type)
    outs[a].type.CopyFrom(ta)
    outs[b].type.CopyFrom(tb)
    return _save_onnx(model, dest)


def tflite_scale_weights(src: str | Path, dest: str | Path, factor: float = 1.02) -> Path:
    """Multiply every float32 constant tensor with more than one element by ``factor``."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    data = Path(src).read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    done: set[int] = set()
    for sub in model.subgraphs or []:
        for t in sub.tensors or []:
            buf = model.buffers[t.buffer] if t.buffer else None
            if t.type != schema.TensorType.FLOAT32 or buf is None or buf.data is None \
                    or t.buffer in done:
                continue
            w = np.frombuffer(bytes(bytearray(buf.data)), dtype=np.float32)
            if w.size > 1:
                buf.data = np.frombuffer((w * np.float32(factor)).astype(np.float32).tobytes(),
                                         dtype=np.uint8)
                done.add(t.buffer)
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    Path(dest).write_bytes(bytes(builder.Output()))
    return Path(dest)


def pb_scale_weights(src: str | Path, dest: str | Path, factor: float = 1.02) -> Path:
    """Multiply every float Const with more than one element in a frozen graph by ``factor``."""
    import tensorflow as tf

    from modelport.converters.frozen_pb import read_graph_def

    gd = read_graph_def(src)
    for node in gd.node:
        if node.op != "Const" or node.attr["dtype"].type not in (tf.float32.as_datatype_enum,
                                                                 tf.float64.as_datatype_enum):
            continue
        w = tf.make_ndarray(node.attr["value"].tensor)
        if w.size > 1:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto((w * factor).astype(w.dtype)))
    Path(dest).write_bytes(gd.SerializeToString())
    return Path(dest)


def onnx_scale_middle_layer(src: str | Path, dest: str | Path, factor: float = 1.02) -> Path:
    """Scale the weight of the middle node (in graph order) that reads a float
    initializer of more than one element: one layer wrong, the rest intact."""
    from onnx import numpy_helper

    model = _onnx(src)
    inits = {i.name: i for i in model.graph.initializer}
    weighted = []
    for node in model.graph.node:
        for name in node.input:
            init = inits.get(name)
            if init is not None and numpy_helper.to_array(init).dtype.kind == "f" \
                    and numpy_helper.to_array(init).ndim >= 2:
                weighted.append(init)
                break
    init = _middle(weighted)
    w = numpy_helper.to_array(init)
    init.CopyFrom(numpy_helper.from_array((w * factor).astype(w.dtype), init.name))
    log.info("scaled %s by %g", init.name, factor)
    return _save_onnx(model, dest)


def tflite_scale_middle_layer(src: str | Path, dest: str | Path, factor: float = 1.02) -> Path:
    """Scale the constant weight (rank >= 2) of the middle operator, in execution order."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    data = Path(src).read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    sub = model.subgraphs[0]
    weighted = []
    for op in sub.operators or []:
        for i in op.inputs if op.inputs is not None else []:
            t = sub.tensors[i] if i >= 0 else None
            buf = model.buffers[t.buffer] if t is not None and t.buffer else None
            if t is not None and t.type == schema.TensorType.FLOAT32 and buf is not None \
                    and buf.data is not None and t.shape is not None and len(t.shape) >= 2:
                weighted.append(t)
                break
    t = _middle(weighted)
    buf = model.buffers[t.buffer]
    w = np.frombuffer(bytes(bytearray(buf.data)), dtype=np.float32)
    buf.data = np.frombuffer((w * np.float32(factor)).astype(np.float32).tobytes(),
                             dtype=np.uint8)
    log.info("scaled %s by %g", t.name, factor)
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    Path(dest).write_bytes(bytes(builder.Output()))
    return Path(dest)


def pb_scale_middle_layer(src: str | Path, dest: str | Path, factor: float = 1.02) -> Path:
    """Scale the float Const (rank >= 2) read by the middle node that reads one, in
    graph order (through one ``Identity``)."""
    import tensorflow as tf

    from modelport.converters.frozen_pb import read_graph_def

    gd = read_graph_def(src)
    nodes = {n.name: n for n in gd.node}

    def weight(ref: str) -> Any:
        n = nodes.get(ref.lstrip("^").split(":")[0])
        if n is not None and n.op == "Identity" and n.input:
            n = nodes.get(n.input[0].split(":")[0])
        if n is None or n.op != "Const" or n.attr["dtype"].type not in (
                tf.float32.as_datatype_enum, tf.float64.as_datatype_enum):
            return None
        return n if len(n.attr["value"].tensor.tensor_shape.dim) >= 2 else None

    weighted = []
    for node in gd.node:
        if node.op in ("Const", "Identity"):
            continue
        found = next((w for w in map(weight, node.input) if w is not None), None)
        if found is not None and found not in weighted:
            weighted.append(found)
    const = _middle(weighted)
    w = tf.make_ndarray(const.attr["value"].tensor)
    const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto((w * factor).astype(w.dtype)))
    log.info("scaled %s by %g", const.name, factor)
    Path(dest).write_bytes(gd.SerializeToString())
    return Path(dest)


def savedmodel_scale_middle_layer(src: str | Path, dest: str | Path,
                                  factor: float = 1.02) -> Path:
    """A SavedModel whose middle kernel variable (rank >= 2, in the model's order) is
    scaled: loaded, changed and saved again with the same signature."""
    import tensorflow as tf

    from modelport.converters.savedmodel import SIGNATURE

    loaded = tf.saved_model.load(str(src))
    kernels = [v for v in getattr(loaded, "model_variables", None) or loaded.variables
               if v.dtype.is_floating and len(v.shape) >= 2]
    v = _middle(kernels)
    v.assign(v * factor)
    log.info("scaled %s by %g", v.name, factor)
    tf.saved_model.save(loaded, str(dest), signatures={SIGNATURE: loaded.signatures[SIGNATURE]},
                        options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
    return Path(dest)
