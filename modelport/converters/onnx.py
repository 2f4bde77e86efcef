"""ONNX through tf2onnx, from the same frozen graph as the ``.pb`` artifact.

Graph inputs and outputs are renamed to the Keras names (tf2onnx keeps ``image:0``) and the
batch dimension is named ``batch``. Inspecting and running need only ``onnx`` and
``onnxruntime``, never TensorFlow.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.converters import onnx_quant
from modelport.converters.base import Offload, Route, Runner
from modelport.converters.onnx_ops import inlinable, tf2onnx_handlers
from modelport.converters.onnx_tensors import ValueTable
from modelport.core.errors import ConversionError, MissingDependencyError, ModelFileError
from modelport.core.records import (
    ArtifactRecord, ConvertOptions, Description, NodeInfo, TensorInfo,
)
from modelport.core.text import one_line

if TYPE_CHECKING:  # pragma: no cover
    from modelport.loading.serving import Serving
    from modelport.loading.source import SourceModel

NAME = "onnx"
SUFFIX = ".onnx"
ALIASES: tuple[str, ...] = ()
VIEW_RANK = 0  # Netron draws ONNX most completely
BYTE_DETERMINISTIC = True
BATCH_DIM = "batch"
RUNTIME = "onnxruntime"
OFFLOAD = True  # its route can run in convert's helper process (Route.offload)
EXTERNAL_DATA_OVER = 1 << 30  # bytes of initializers past which weights go to a side file
QUANTIZE = onnx_quant.MODES  # quantized variants (convert --quantize), see onnx_quant
CALIBRATED = onnx_quant.CALIBRATED

__all__ = ["NAME", "SUFFIX", "detect", "view_file", "companions", "routes",
           "quantized_routes", "load", "describe", "rename_values", "save_with_external_data",
           "graph_to_onnx", "graph_file_to_onnx"]

log = logging.getLogger(__name__)


def detect(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == SUFFIX


def view_file(path: Path) -> Path:
    """The file a graph viewer opens: the artifact itself."""
    return path


def companions(path: Path) -> list[Path]:
    """The external-data files the graph names, inside the model's own directory."""
    import onnx

    found: list[Path] = []
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # an unreadable graph: whoever opens it will say so
        log.debug("could not list external data of %s", path, exc_info=True)
        return found
    here = path.parent.resolve()
    for t in proto.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                f = (path.parent / entry.value).resolve()
                if f.is_file() and f.parent == here and f not in found:
                    found.append(f)
    return found


def _import_tf2onnx():
    try:
        import tf2onnx
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise MissingDependencyError(f"ONNX export needs tf2onnx: pip install tf2onnx ({e})") from e
    return tf2onnx


def rename_values(graph: Any, mapping: dict[str, str]) -> None:
    """Rename tensors everywhere they appear in an ONNX graph (inputs, outputs, nodes)."""
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.name in mapping:
            vi.name = mapping[vi.name]
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]
        for i, name in enumerate(node.output):
            if name in mapping:
                node.output[i] = mapping[name]
        for attr in node.attribute:  # Loop/If/Scan bodies may refer to outer names
            if attr.g is not None and attr.g.node:
                rename_values(attr.g, mapping)
            for g in attr.graphs:
                rename_values(g, mapping)


_GENERATED = re.compile(r"^(?P<base>.*?)__\d+(?P<port>:\d+)?$")


def _canonical_names(graph: Any) -> None:
    """Renumber tf2onnx's generated ``name__N`` tensors and nodes in graph order.

    tf2onnx numbers them in creation order, which varies between runs; numbering them by
    position makes the same model give the same graph, byte for byte.
    """
    mapping: dict[str, str] = {}
    counter = 0
    # deduplicated constants keep whichever name tf2onnx or Grappler saw first (equal
    # constants, e.g. the 1/6 of every hard-swish or a shared layer's weights, are merged
    # under any one of their names, differently from run to run): a constant that several
    # nodes read is named by its place, as generated names are
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in set(node.input):
            readers[name] = readers.get(name, 0) + 1
    constants = {i.name for i in graph.initializer
                 if _GENERATED.match(i.name) or readers.get(i.name, 0) > 1}

    def canon(name: str) -> str:
        nonlocal counter
        if name in mapping:
            return mapping[name]
        m = _GENERATED.match(name)
        if m is None:
            if name not in constants:
                return name
            counter += 1  # a merged constant
            port = re.search(r":\d+$", name)
            mapping[name] = f"const__mp{counter}{port.group(0) if port else ''}"
            return mapping[name]
        counter += 1
        base = "const" if name in constants else m.group("base")
        mapping[name] = f"{base}__mp{counter}{m.group('port') or ''}"
        return mapping[name]

    for node in graph.node:
        for name in list(node.input) + list(node.output):
            canon(name)
    for init in graph.initializer:
        canon(init.name)
    rename_values(graph, mapping)
    for init in graph.initializer:
        init.name = mapping.get(init.name, init.name)
    node_names: dict[str, str] = {}
    for node in graph.node:
        if _GENERATED.match(node.name):
            counter += 1
            node_names[node.name] = f"{_GENERATED.match(node.name).group('base')}__mp{counter}"
            node.name = node_names[node.name]
    inits = sorted(graph.initializer, key=lambda t: t.name)
    del graph.initializer[:]
    graph.initializer.extend(inits)


def _name_batch(values: Any) -> None:
    for vi in values:
        dims = vi.type.tensor_type.shape.dim
        if len(dims) and (not dims[0].HasField("dim_value") or dims[0].dim_value <= 0):
            dims[0].ClearField("dim_value")
            dims[0].dim_param = BATCH_DIM


def routes(source: SourceModel, serving: Serving, options: ConvertOptions) -> list[Route]:
    """One route: tf2onnx over the frozen graph the ``.pb`` artifact also comes from; it
    can run in another process (``Offload``: the graph goes there as bytes)."""

    def prepare(dest: Path) -> tuple[Any, tuple]:
        from modelport.converters.frozen_pb import frozen_graph_def

        graph = dest.parent / "frozen-for-onnx.pb"
        graph.write_bytes(inlinable(frozen_graph_def(serving)).SerializeToString())
        return graph_file_to_onnx, (str(graph), source.input_names, source.output_names,
                                    options.opset, str(dest))

    return [Route("tf2onnx", f"tf2onnx from the frozen graph, opset {options.opset}",
                  lambda dest: _write(source, serving, dest, options),
                  Offload(prepare, lambda dest, details: _io_record(source, serving, dest,
                                                                    details)))]


def quantized_routes(source: SourceModel, serving: Serving, options: ConvertOptions,
                     mode: str, base: Path | None = None) -> list[Route]:
    """Variant ``mode`` made from the float32 model: ``base`` (the checked float32
    artifact) when given, else one converted for it (``onnx_quant``)."""
    return onnx_quant.routes(mode, options.calibration, base,
                             lambda dest: _write(source, serving, dest, options),
                             lambda dest: _io_record(source, serving, dest, {}),
                             save_with_external_data)


def _write(source: SourceModel, serving: Serving, dest: Path,
           options: ConvertOptions) -> ArtifactRecord:
    from modelport.converters.frozen_pb import frozen_graph_def

    details = graph_to_onnx(inlinable(frozen_graph_def(serving)), source.input_names,
                            source.output_names, options.opset, dest)
    return _io_record(source, serving, dest, details)


def graph_file_to_onnx(graph: str, inputs: list[str], outputs: list[str], opset: int,
                       dest: str) -> dict[str, Any]:
    """``graph_to_onnx`` of the serialized GraphDef in file ``graph`` (removed after);
    what another process runs (``Offload``)."""
    from tensorflow.core.framework import graph_pb2

    gd = graph_pb2.GraphDef.FromString(Path(graph).read_bytes())
    Path(graph).unlink()
    return graph_to_onnx(gd, inputs, outputs, opset, Path(dest))


def graph_to_onnx(gd: Any, inputs: list[str], outputs: list[str], opset: int,
                  dest: Path) -> dict[str, Any]:
    """Write the ONNX model of frozen GraphDef ``gd`` (placeholders ``inputs``, output
    nodes ``outputs``) at ``dest``; returns the record's details.

    Raises:
        ConversionError: tf2onnx failed, or produced an invalid model.
    """
    tf2onnx = _import_tf2onnx()
    import onnx

    tf_in = [f"{n}:0" for n in inputs]
    tf_out = [f"{n}:0" for n in outputs]
    # tf2onnx names generated tensors from a process-wide counter; start it fresh so the
    # same model always gives the same ONNX graph, whatever ran before in this process
    tf2onnx.utils.INTERNAL_NAME = 1
    try:
        model_proto, _ = tf2onnx.convert.from_graph_def(
            gd, input_names=tf_in, output_names=tf_out, opset=opset,
            custom_op_handlers=tf2onnx_handlers())
    except Exception as e:
        raise ConversionError(f"tf2onnx failed at opset {opset}: {one_line(e)}") from e
    graph = model_proto.graph
    mapping = {f"{n}:0": n for n in inputs + outputs}
    existing = {o for node in graph.node for o in node.output} | {i.name for i in graph.initializer}
    clash = [v for v in mapping.values() if v in existing and v not in mapping]
    if clash:
        raise ConversionError(f"ONNX graph already has tensors named {clash}")
    rename_values(graph, mapping)
    _canonical_names(graph)
    _name_batch(graph.input)
    _name_batch(graph.output)
    order = {n: i for i, n in enumerate(outputs)}
    outs = sorted(graph.output, key=lambda v: order.get(v.name, len(order)))
    del graph.output[:]
    graph.output.extend(outs)
    model_proto.producer_name = "modelport (tf2onnx)"
    try:
        onnx.checker.check_model(model_proto)
    except Exception as e:
        raise ConversionError(f"tf2onnx produced an invalid ONNX model: {e}") from e
    big = sum(t.ByteSize() for t in graph.initializer) > EXTERNAL_DATA_OVER
    if big:
        save_with_external_data(model_proto, dest)
    else:
        onnx.save_model(model_proto, str(dest))
    return {"opset": opset, "external_data": big, "nodes": len(graph.node)}


def _io_record(source: SourceModel, serving: Serving, dest: Path,
               details: dict[str, Any]) -> ArtifactRecord:
    """The record of an ONNX model with the traced I/O (a ``batch`` dimension where the
    batch is open)."""
    inputs, outputs = serving.tensors()
    for t in inputs + outputs:
        if t.shape and t.shape[0] is None:  # a batch the user fixed stays a number
            t.shape[0] = BATCH_DIM
    return ArtifactRecord(NAME, str(dest), inputs, outputs, layout=dict(source.layout),
                          details=details)


def save_with_external_data(model_proto: Any, dest: Path) -> None:
    """Weights to a side file named after their hash (``<name>.onnx.<hash>.data``, a
    relative path): once published beside an older pair, the old model still points at
    its own weights until the new model replaces it."""
    import hashlib

    import onnx

    scratch = dest.parent / "weights.data"
    onnx.save_model(model_proto, str(dest), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=scratch.name, size_threshold=0)
    with open(scratch, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()[:12]
    data_name = f"{dest.name}.{digest}.data"
    scratch.replace(dest.parent / data_name)
    proto = onnx.load(str(dest), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = data_name
    dest.write_bytes(proto.SerializeToString())


def _dims(vi: Any) -> list[int | str | None] | None:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    out: list[int | str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def _dtype(vi: Any) -> str:
    import onnx

    elem = vi.type.tensor_type.elem_type
    try:
        return str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)))
    except (KeyError, TypeError, ValueError):
        return onnx.TensorProto.DataType.Name(elem).lower()


def _read(path: str | Path):
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ModelFileError(f"{path}: not an ONNX model ({e})") from None


def describe(path: str | Path, nodes: bool = True) -> Description:
    model = _read(path)
    g = model.graph
    inits = {i.name for i in g.initializer}
    inputs = [TensorInfo(v.name, _dims(v), _dtype(v)) for v in g.input if v.name not in inits]
    outputs = [TensorInfo(v.name, _dims(v), _dtype(v)) for v in g.output]
    named = sorted({d for t in inputs + outputs for d in (t.shape or []) if isinstance(d, str)})
    node_list = [NodeInfo(n.name, n.op_type, list(n.input)) for n in g.node] if nodes else []
    return Description(NAME, str(path), inputs, outputs, node_list, {
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "ir_version": model.ir_version, "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "named_dimensions": named, "node_count": len(g.node), "initializers": len(inits),
    })


class OnnxRunner(Runner):
    format = NAME

    def __init__(self, path: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        try:
            self._sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ModelFileError(f"{path}: onnxruntime cannot open it ({e})") from None
        d = describe(path, nodes=False)
        super().__init__(path, d.inputs, d.outputs)
        self._table: ValueTable | None = None  # its values, read on first use

    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [t.name for t in self.outputs]
        values = self._sess.run(names, feeds)
        return dict(zip(names, values))

    def _values(self) -> ValueTable:
        if self._table is None:
            self._table = ValueTable(self.path, _dims, _dtype)
        return self._table

    def tensors(self) -> list[TensorInfo]:
        """Every float value a node computes from a graph input, in node order."""
        return self._values().tensors

    def run_with_impl(self, feeds: dict[str, np.ndarray], extra: list[str],
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        if not extra:
            return self.run_impl(feeds), {}
        names = [t.name for t in self.outputs]
        wanted = [n for n in extra if n not in names]
        values = self._values().session(extra).run(names + wanted, feeds)
        got = dict(zip(names + wanted, values))
        return {n: got[n] for n in names}, {n: got[n] for n in extra}


def load(path: str | Path, threads: int | None = None) -> Runner:
    return OnnxRunner(str(path), threads=threads)
