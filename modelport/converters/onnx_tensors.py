"""An ONNX model's intermediate values for ``OnnxRunner.tensors()`` and ``run_with()``:
every float value a node computes from a graph input (shapes from ONNX shape inference),
and an onnxruntime session over a copy of the graph that returns some of them as extra
outputs."""

from __future__ import annotations

import logging
from typing import Any

from modelport.core.records import TensorInfo

__all__ = ["ValueTable"]

log = logging.getLogger(__name__)


class ValueTable:
    """The values of one ONNX file; sessions exposing values are made on demand."""

    def __init__(self, path: str, dims: Any, dtype: Any) -> None:
        import onnx

        proto = onnx.load(path)
        try:
            proto = onnx.shape_inference.infer_shapes(proto)
        except Exception:  # shapes are a help, not a need
            log.debug("shape inference failed on %s", path, exc_info=True)
        self.proto = proto
        self._elem: dict[str, int] = {}
        self.tensors = self._list(dims, dtype)
        self._exposed: tuple[tuple[str, ...], Any] | None = None

    def _list(self, dims: Any, dtype: Any) -> list[TensorInfo]:
        import onnx

        g = self.proto.graph
        types = {v.name: v for v in list(g.value_info) + list(g.output)}
        live = {v.name for v in g.input}
        found = []
        for node in g.node:
            if not any(i in live for i in node.input):
                continue
            for name in node.output:
                live.add(name)
                vi = types.get(name)
                elem = vi.type.tensor_type.elem_type if vi is not None else 0
                if vi is None or onnx.helper.tensor_dtype_to_np_dtype(elem).kind != "f":
                    continue
                self._elem[name] = elem
                found.append(TensorInfo(name, dims(vi), dtype(vi),
                                        {"op": node.op_type, "inputs": list(node.input),
                                         "order": len(found)}))
        return found

    def session(self, extra: list[str]) -> Any:
        """A session whose outputs include ``extra`` (the last one is kept for reuse)."""
        key = tuple(sorted(extra))
        if self._exposed is None or self._exposed[0] != key:
            import onnx
            import onnxruntime as ort

            proto = onnx.ModelProto()
            proto.CopyFrom(self.proto)
            have = {o.name for o in proto.graph.output}
            for name in key:
                if name not in have:
                    proto.graph.output.append(
                        onnx.helper.make_tensor_value_info(name, self._elem[name], None))
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            self._exposed = (key, ort.InferenceSession(proto.SerializeToString(), opts,
                                                       providers=["CPUExecutionProvider"]))
        return self._exposed[1]
