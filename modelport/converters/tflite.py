"""TFLite flatbuffer, float32, builtin ops by default, run by the LiteRT interpreter.

Converted from a SavedModel (never from a concrete function over a Keras 3 model, which can
silently drop the weights). Recurrent models whose TensorList ops cannot be lowered with a
dynamic batch are exported with batch size 1 (recorded in the manifest); Flex (Select TF)
ops are used only with ``allow_flex``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.converters.base import Runner, source_tensors
from modelport.core.atomic import atomic_path
from modelport.core.errors import ConversionError, ModelFileError
from modelport.core.quiet import native_stderr_silenced
from modelport.core.records import (
    ArtifactRecord, ConvertOptions, Description, NodeInfo, TensorInfo,
)
from modelport.core.text import one_line, to_text

if TYPE_CHECKING:  # pragma: no cover
    from modelport.loading.serving import Serving
    from modelport.loading.source import SourceModel

NAME = "tflite"
SUFFIX = ".tflite"
ALIASES = ("litert",)
VIEW_RANK = 1
BYTE_DETERMINISTIC = True

__all__ = ["NAME", "SUFFIX", "detect", "view_file", "companions", "convert", "load", "describe"]

log = logging.getLogger(__name__)


def detect(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == SUFFIX


def view_file(path: Path) -> Path:
    """The file a graph viewer opens: the artifact itself."""
    return path


def companions(path: Path) -> list[Path]:
    """Files a viewer must serve beside the artifact: none, a flatbuffer is self-contained."""
    return []


def _convert_bytes(serving: Serving, batch: int | None, flex: bool) -> bytes:
    import tensorflow as tf

    from modelport.converters.savedmodel import SIGNATURE, save_to

    with tempfile.TemporaryDirectory(prefix="modelport-tflite-") as tmp:
        sm = Path(tmp) / "sm"
        save_to(serving, sm, batch_size=batch)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(sm), signature_keys=[SIGNATURE])
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if flex:
            ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
            converter._experimental_lower_tensor_list_ops = False
        converter.target_spec.supported_ops = ops
        if log.isEnabledFor(logging.DEBUG):
            return converter.convert()
        # the MLIR converter prints its diagnostics natively; the exception keeps them
        with native_stderr_silenced():
            return converter.convert()


def _short(e: BaseException) -> str:
    return one_line(e, with_type=False)


def convert(source: SourceModel, serving: Serving, dest: Path,
            options: ConvertOptions) -> ArtifactRecord:
    attempts: list[tuple[int | None, bool]] = [(None, False), (1, False)]
    if options.allow_flex:
        attempts += [(None, True)]
    errors = []
    data = None
    used = (None, False)
    for batch, flex in attempts:
        try:
            data = _convert_bytes(serving, batch, flex)
            used = (batch, flex)
            break
        except Exception as e:  # the MLIR converter raises several types
            log.debug("tflite conversion (batch=%s, flex=%s) failed", batch, flex, exc_info=True)
            errors.append(f"batch={batch or 'dynamic'}{', flex' if flex else ''}: {_short(e)}")
    if data is None:
        hint = "" if options.allow_flex else \
            "; if the model needs TensorFlow ops, retry with --allow-flex (needs the Flex delegate)"
        raise ConversionError("TFLite conversion failed (" + " | ".join(errors) + ")" + hint)
    flex_ops = sorted({op for op in _op_names(data) if op.startswith("Flex")})
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    batch, _ = used
    inputs, outputs = source_tensors(source, batch)
    warnings = []
    if batch is not None:
        warnings.append(f"exported with a fixed batch size of {batch} (dynamic batch needs "
                        "TensorList ops that LiteRT builtins lack); run one sample at a time")
    if flex_ops:
        warnings.append(f"needs the Flex delegate for {', '.join(flex_ops)}")
    return ArtifactRecord(NAME, str(dest), inputs, outputs, layout=dict(source.layout),
                          warnings=warnings,
                          details={"fixed_batch": batch, "flex_ops": flex_ops,
                                   "needs_flex_delegate": bool(flex_ops)})


# ----------------------------------------------------------------------------- reading


def _model(data: bytes):
    from ai_edge_litert import schema_py_generated as schema

    try:
        return schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    except Exception as e:
        raise ModelFileError(f"not a TFLite flatbuffer ({e})") from None


def _op_names(data: bytes) -> list[str]:
    from ai_edge_litert import schema_py_generated as schema

    model = _model(data)
    codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = []
    for sub in model.subgraphs or []:
        for op in sub.operators or []:
            oc = model.operatorCodes[op.opcodeIndex]
            code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
            if code == schema.BuiltinOperator.CUSTOM:
                names.append(to_text(oc.customCode))
            else:
                names.append(codes.get(code, str(code)))
    return names


_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
           6: "bool", 7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128",
           12: "uint64", 13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4",
           18: "bfloat16", 19: "int2", 20: "uint4", 21: "float8_e4m3fn", 22: "float8_e5m2"}


def describe(path: str | Path, nodes: bool = True) -> Description:
    """Signatures, every tensor (shape, dtype, quantization) and the op list; no TensorFlow."""
    data = Path(path).read_bytes()
    try:
        model = _model(data)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}; pass a .tflite file written by a TFLite "
                             "converter") from None
    subgraphs = model.subgraphs or []
    main = subgraphs[0] if subgraphs else None

    name = to_text

    def tensor_info(sub: Any, idx: int, key: str | None = None) -> TensorInfo:
        t = sub.tensors[idx]
        sig = [int(d) for d in t.shapeSignature] if t.shapeSignature is not None else []
        plain = [int(d) for d in t.shape] if t.shape is not None else []
        shape = [None if d < 0 else d for d in (sig or plain)]
        extra: dict[str, Any] = {"tensor": name(t.name), "index": idx}
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale) and q.zeroPoint is not None:
            extra["quantization"] = {"scale": [float(s) for s in q.scale],
                                     "zero_point": [int(z) for z in q.zeroPoint]}
        return TensorInfo(key or name(t.name), shape, _DTYPES.get(t.type, str(t.type)), extra)

    sigs = {}
    inputs: list[TensorInfo] = []
    outputs: list[TensorInfo] = []
    for sd in model.signatureDefs or []:
        sub = subgraphs[sd.subgraphIndex]
        ins = [tensor_info(sub, m.tensorIndex, name(m.name)) for m in sd.inputs or []]
        outs = [tensor_info(sub, m.tensorIndex, name(m.name)) for m in sd.outputs or []]
        key = name(sd.signatureKey)
        sigs[key] = {"inputs": [t.to_dict() for t in ins], "outputs": [t.to_dict() for t in outs]}
        if not inputs or key == "serving_default":
            inputs, outputs = ins, outs
    if not sigs and main is not None:
        inputs = [tensor_info(main, i) for i in main.inputs]
        outputs = [tensor_info(main, i) for i in main.outputs]
    op_names = _op_names(data)
    node_list = []
    tensors = []
    if main is not None:
        for i, op in enumerate(main.operators or []):
            outs = [name(main.tensors[j].name) for j in op.outputs if j >= 0]
            ins = [name(main.tensors[j].name) for j in op.inputs if j >= 0]
            node_list.append(NodeInfo(outs[0] if outs else f"op_{i}", op_names[i], ins))
        tensors = [tensor_info(main, i).to_dict() for i in range(len(main.tensors or []))]
    flex = sorted({o for o in op_names if o.startswith("Flex")})
    return Description(NAME, str(path), inputs, outputs, node_list if nodes else [], {
        "signatures": sigs, "tensors": tensors if nodes else [], "flex_ops": flex,
        "subgraphs": len(subgraphs), "version": model.version,
    })


class TFLiteRunner(Runner):
    format = NAME

    def __init__(self, path: str) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            with native_stderr_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate"
                self._interp = Interpreter(model_path=path)
                self._interp.allocate_tensors()
        except Exception as e:
            raise ModelFileError(f"{path}: LiteRT cannot open it ({_short(e)})") from None
        desc = describe(path, nodes=False)
        super().__init__(path, [TensorInfo(t.name, t.shape, t.dtype) for t in desc.inputs],
                         [TensorInfo(t.name, t.shape, t.dtype) for t in desc.outputs])
        sigs = self._interp.get_signature_list()
        self._key = "serving_default" if "serving_default" in sigs else next(iter(sigs), None)
        self._static = {t.name: t.extra for t in desc.inputs}
        self._fixed = None
        for t in desc.inputs:
            if t.shape and t.shape[0] is not None:
                self._fixed = t.shape[0]

    @property
    def fixed_batch(self) -> int | None:
        return self._fixed

    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._key is None:
            raise ModelFileError(f"{self.path}: no signature; re-export with signatures")
        n = next(iter(feeds.values())).shape[0] if feeds else 1
        if self._fixed is not None and n != self._fixed:
            # a fixed-batch export: run chunks of that batch (the last one padded by
            # repeating its final sample) and stack the results
            f = self._fixed
            parts = []
            for start in range(0, n, f):
                chunk = {k: v[start:start + f] for k, v in feeds.items()}
                real = next(iter(chunk.values())).shape[0]
                if real < f:
                    chunk = {k: np.concatenate([v, np.repeat(v[-1:], f - real, axis=0)])
                             for k, v in chunk.items()}
                parts.append({k: v[:real] for k, v in self.run_impl(chunk).items()})
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        runner = self._interp.get_signature_runner(self._key)
        out = runner(**{k: np.ascontiguousarray(v) for k, v in feeds.items()})
        return {k: np.array(v) for k, v in out.items()}


def load(path: str | Path) -> Runner:
    return TFLiteRunner(str(path))
