"""Quantized ONNX variants, made from the float32 ONNX model with onnxruntime's
quantization tools (``dynamic``, ``int8``: static QDQ, per-channel) and onnxconverter-common's
float16 converter (``float16``, float32 I/O kept), as routes of the ONNX format.

A float32 model whose weights are in an external-data file (over 1 GiB) gives variants
written the same way (``save_big``: the ONNX module's own writer). The float16 converter's known
traps are handled here: it leaves ``Cast(to=FLOAT)`` nodes
unchanged while their outputs become float16 (an invalid graph, onnxconverter-common
#320), so those casts are retargeted; it keeps ``Resize`` (whose scales must stay float32)
in float32 through its default block list; and a graph it still leaves with mixed
float16/float32 inputs (a ``Concat`` fed by a blocked op) fails strict type inference,
after which the next route stores the weights in float16 and computes in float32.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from modelport.converters.base import Route, check_mode
from modelport.core.errors import ConversionError, MissingDependencyError
from modelport.core.records import ArtifactRecord, Calibration
from modelport.core.text import one_line

__all__ = ["MODES", "CALIBRATED", "routes"]

log = logging.getLogger(__name__)

MODES: dict[str, str] = {
    "dynamic": "onnxruntime dynamic quantization: int8 weights, activations quantized at "
               "run time; float32 I/O",
    "int8": "onnxruntime static quantization, QDQ format: per-channel int8 weights, int8 "
            "activations from calibration; float32 I/O",
    "float16": "float16 weights and compute (onnxconverter-common), float32 I/O",
}
CALIBRATED = frozenset({"int8"})
CALIBRATION_BATCH = 16  # samples per calibration run (the batch dimension is dynamic)
SMALL_INITIALIZER = 64  # elements: shape constants and scalars keep float32

Write = Callable[[Path], ArtifactRecord]
SaveBig = Callable[[Any, Path], None]


def routes(mode: str, calibration: Calibration | None, base: Path | None,
           write_float: Write, io_record: Write, save_big: SaveBig) -> list[Route]:
    """The routes to variant ``mode``, best first. ``base`` is the checked float32 ONNX
    artifact when there is one; otherwise ``write_float`` writes one to quantize;
    ``io_record(dest)`` is the record of an ONNX model of the source's I/O at ``dest``;
    ``save_big(model, dest)`` writes a model with its weights in a side file."""
    check_mode("ONNX", MODES, CALIBRATED, mode, calibration)

    def save(model: Any, dest: Path, big: bool) -> None:
        if big:
            save_big(model, dest)
        else:
            _load_onnx().save_model(model, str(dest))

    made = {
        "dynamic": [("dynamic-int8", "int8 weights (QInt8)",
                     lambda s, d, big: _dynamic(s, d, "QInt8", big, save)),
                    ("dynamic-uint8", "uint8 weights (QUInt8)",
                     lambda s, d, big: _dynamic(s, d, "QUInt8", big, save))],
        "int8": [("qdq-per-channel", "QDQ, per-channel int8 weights",
                  lambda s, d, big: _static(s, d, calibration, True, big, save)),
                 ("qdq-per-tensor", "QDQ, per-tensor int8 weights",
                  lambda s, d, big: _static(s, d, calibration, False, big, save))],
        "float16": [("float16", "float16 weights and compute, float32 I/O",
                     lambda s, d, big: save(_float16(_load(s)), d, big)),
                    ("float16-weights", "float16 weights cast to float32 at load, float32 "
                     "compute (any graph)",
                     lambda s, d, big: save(_fp16_weights(_load(s)), d, big))],
    }[mode]
    return [Route(name, f"{MODES[mode]}; {how}",
                  _writer(mode, fn, calibration, base, (write_float, io_record), name))
            for name, how, fn in made]


def _writer(mode: str, fn: Callable[[Path, Path, bool], None], calibration: Calibration | None,
            base: Path | None, writers: tuple[Write, Write], route: str) -> Write:
    write_float, io_record = writers

    def write(dest: Path) -> ArtifactRecord:
        with tempfile.TemporaryDirectory(prefix="modelport-onnxq-") as tmp:
            src = base
            if src is None or not src.exists():
                src = Path(tmp) / "float32.onnx"
                write_float(src)
            big = _external(src)
            try:
                fn(src, dest, big)
            except (ConversionError, MissingDependencyError):
                raise
            except Exception as e:  # the quantizers raise anything
                log.debug("onnx %s (%s) failed", mode, route, exc_info=True)
                raise ConversionError(f"--quantize {mode}: {one_line(e, 300)}") from e
        _check(dest, mode)
        record = io_record(dest)
        record.details["external_data"] = big
        record.details["quantization"] = {
            "mode": mode, "description": MODES[mode],
            "calibration": calibration.to_dict() if calibration and mode in CALIBRATED
            else None}
        return record

    return write


def _load_onnx() -> Any:
    import onnx

    return onnx


def _load(path: Path) -> Any:
    return _load_onnx().load(str(path))


def _external(path: Path) -> bool:
    """Whether the model keeps its weights in an external-data file."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)


Save = Callable[[Any, Path, bool], None]


def _resave(dest: Path, big: bool, save: Save) -> None:
    """onnxruntime's quantizers write external data as ``<name>.data``; it is renamed
    after its hash as every ONNX artifact's is (``save``)."""
    if not big:
        return
    written = dest.parent / f"{dest.name}.data"
    save(_load(dest), dest, True)
    written.unlink(missing_ok=True)


def _check(dest: Path, mode: str) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(dest))
        onnx.shape_inference.infer_shapes(onnx.load(str(dest)), strict_mode=True)
    except Exception as e:
        raise ConversionError(f"--quantize {mode} wrote an invalid ONNX graph: "
                              f"{one_line(e, 300, with_type=False)}") from e


def _dynamic(src: Path, dest: Path, weight_type: str, big: bool, save: Save) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="modelport-onnxq-") as tmp:
        quantize_dynamic(str(_preprocessed(src, Path(tmp), big)), str(dest),
                         weight_type=getattr(QuantType, weight_type),
                         use_external_data_format=big)
    _resave(dest, big, save)


def _preprocessed(src: Path, tmp: Path, big: bool) -> Path:
    """onnxruntime's recommended pre-processing (graph optimisation, shape inference);
    the model as it is when that fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = tmp / "pre.onnx"
    try:
        # symbolic shape inference needs sympy; ONNX shape inference suffices here
        quant_pre_process(str(src), str(out), skip_symbolic_shape=True,
                          save_as_external_data=big)
        return out
    except Exception:  # pre-processing is an optimisation, not a requirement
        log.debug("quant_pre_process failed; quantizing the model as it is", exc_info=True)
        return src


def _static(src: Path, dest: Path, calibration: Calibration | None,
            per_channel: bool, big: bool, save: Save) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader, QuantFormat, QuantType, quantize_static,
    )

    assert calibration is not None
    arrays = {k: np.asarray(v) for k, v in calibration.arrays.items()}

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.start = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.start >= calibration.samples:
                return None
            stop = self.start + CALIBRATION_BATCH
            batch = {k: v[self.start:stop] for k, v in arrays.items()}
            self.start = stop
            return batch

    with tempfile.TemporaryDirectory(prefix="modelport-onnxq-") as tmp:
        quantize_static(str(_preprocessed(src, Path(tmp), big)), str(dest), Reader(),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        use_external_data_format=big)
    _resave(dest, big, save)


def _float16_module() -> Any:
    try:
        from onnxconverter_common import float16
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise MissingDependencyError(f"ONNX float16 needs onnxconverter-common: pip install "
                                     f"onnxconverter-common ({e})") from e
    return float16


def _float16(model: Any) -> Any:
    """onnxconverter-common's conversion, float32 I/O kept, ``Cast`` nodes retargeted."""
    import onnx

    converted = _float16_module().convert_float_to_float16(model, keep_io_types=True)
    graph = converted.graph
    types = {v.name: v.type.tensor_type.elem_type
             for v in list(graph.value_info) + list(graph.output)}
    for node in graph.node:
        if node.op_type != "Cast" or not node.output:
            continue
        for attr in node.attribute:
            if attr.name == "to" and attr.i == onnx.TensorProto.FLOAT and \
                    types.get(node.output[0]) == onnx.TensorProto.FLOAT16:
                attr.i = onnx.TensorProto.FLOAT16
    return converted


def _fp16_weights(model: Any) -> Any:
    """Every float32 initializer of more than ``SMALL_INITIALIZER`` elements stored as
    float16 and cast back to float32 by a ``Cast`` at the top of the graph."""
    import onnx
    from onnx import helper, numpy_helper

    float16 = _float16_module()
    graph = model.graph
    casts = []
    kept = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or \
                int(np.prod(list(init.dims) or [1])) <= SMALL_INITIALIZER:
            kept.append(init)
            continue
        values = float16.convert_np_to_float16(numpy_helper.to_array(init))
        half = numpy_helper.from_array(values.astype(np.float16), f"{init.name}__fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name],
                                      name=f"{init.name}__to_fp32", to=onnx.TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model
