"""Quantized TFLite variants: the TFLite converter's post-training quantization, set per
mode on the same routes as the float32 artifact (``tflite.quantized_routes``).

What the converter does not check, this module does: an ``int8-full`` artifact must be
integer-only. Asked for ``TFLITE_BUILTINS_INT8`` only, the converter still keeps an op
without an integer kernel (SIN, CUMSUM, ...) in float between a DEQUANTIZE and a QUANTIZE
and says nothing; such an artifact fails on integer-only accelerators, so it is refused
here with the ops named.
"""

from __future__ import annotations

import contextvars
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from modelport.converters.base import Route, check_mode
from modelport.converters.tflite_flatbuffer import describe as describe_flatbuffer
from modelport.converters.tflite_flatbuffer import op_names, read_model
from modelport.core.errors import ConversionError
from modelport.core.records import ArtifactRecord, Calibration, TensorInfo

__all__ = ["MODES", "CALIBRATED", "INTEGER_IO", "tuner", "apply", "variants", "variant",
           "float_ops", "quantized_io", "quantize", "dequantize", "float_view", "to_integers",
           "to_floats"]

log = logging.getLogger(__name__)

MODES: dict[str, str] = {
    "dynamic": "dynamic-range quantization: weights int8, activations float32",
    "float16": "weights stored as float16 (CPU kernels compute in float32)",
    "int8": "int8 weights and activations, float kernels where no integer one exists; "
            "float32 input and output",
    "int8-full": "integer-only: int8 kernels everywhere, int8 input and output tensors "
                 "(feed q = x/scale + zero_point)",
    "int16x8": "int16 activations, int8 weights, float fallback; float32 input and output",
}
CALIBRATED = frozenset({"int8", "int8-full", "int16x8"})  # need representative inputs
INTEGER_IO = ("int8", "uint8", "int16")  # I/O dtypes that carry a scale and zero point
_FLOAT_TYPES = {0, 1, 10, 18}  # float32, float16, float64, bfloat16 in the TFLite schema
_CONVERSIONS = {"QUANTIZE", "DEQUANTIZE"}

Tune = Callable[[Any, bool], None]

# the quantization of the variant being written: set by ``variant`` around a float route's
# write, read by ``apply`` where every route runs its converter, so the routes themselves
# stay as they are
_ACTIVE: contextvars.ContextVar[Tune | None] = contextvars.ContextVar("tflite_quant",
                                                                      default=None)


def _dataset(calibration: Calibration, names: list[str], by_name: bool):
    """The representative dataset: one sample at a time, keyed by signature input name
    (``by_name``) or, for a converter without signatures, in the inputs' order."""
    arrays = [np.asarray(calibration.arrays[n]) for n in names]

    def gen():
        for i in range(calibration.samples):
            sample = [a[i:i + 1] for a in arrays]
            yield dict(zip(names, sample)) if by_name else sample

    return gen


def tuner(mode: str, calibration: Calibration | None, input_names: list[str]) -> Tune:
    """A function that sets ``mode``'s quantization on a TFLite converter (called after
    the route's own settings; ``by_name``: the converter reads signatures).

    Raises:
        ConversionError: an integer mode without calibration data (the pipeline asks
            for it before converting anything; this guards the API).
    """
    check_mode("TFLite", MODES, CALIBRATED, mode, calibration)

    def tune(converter: Any, by_name: bool) -> None:
        import tensorflow as tf

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if mode in CALIBRATED:
            converter.representative_dataset = _dataset(calibration, input_names, by_name)
        if mode == "int8-full":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        elif mode == "int16x8":
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS]

    return tune


def apply(converter: Any) -> None:
    """Set the quantization of the variant being written, if any, on ``converter`` (after
    the route's own settings). A converter without signatures (the frozen-graph route's)
    is fed calibration samples by position."""
    tune = _ACTIVE.get()
    if tune is None:
        return
    import tensorflow as tf

    tune(converter, not isinstance(converter, tf.compat.v1.lite.TFLiteConverter))


def float_ops(model: Any) -> list[str]:
    """Ops of the main subgraph that read or write a float tensor (the QUANTIZE and
    DEQUANTIZE around them aside): what an integer-only artifact must not have."""
    sub = (model.subgraphs or [None])[0]
    if sub is None:
        return []
    names = op_names(model)
    floating = [names[i] for i, op in enumerate(sub.operators or [])
                if any(j >= 0 and sub.tensors[j].type in _FLOAT_TYPES
                       for j in list(op.inputs) + list(op.outputs))]
    # QUANTIZE also requantizes int8 to int8: only a float tensor makes it an offender
    return sorted(set(n for n in floating if n not in _CONVERSIONS) or floating)


def quantized_io(path: str | Path) -> dict[str, dict[str, Any]]:
    """Per signature input and output with an integer dtype and a scale: its dtype, scale
    and zero point (``real = scale * (q - zero_point)``)."""
    desc = describe_flatbuffer(path, "tflite", nodes=False)
    found = {}
    for t in desc.inputs + desc.outputs:
        q = t.extra.get("quantization")
        if t.dtype in INTEGER_IO and q and q.get("scale") and q["scale"][0]:
            found[t.name] = {"dtype": t.dtype, "scale": q["scale"][0],
                             "zero_point": q["zero_point"][0]}
    return found


def variants(found: list[Route], mode: str, calibration: Calibration | None,
             input_names: list[str]) -> list[Route]:
    """The float32 routes ``found``, each writing variant ``mode``; an integer-only
    variant takes no Flex route."""
    tune = tuner(mode, calibration, input_names)
    return [variant(r, mode, calibration, tune) for r in found
            if not (mode == "int8-full" and r.name == "flex")]


def variant(route: Route, mode: str, calibration: Calibration | None, tune: Tune) -> Route:
    """A float32 ``route`` writing a ``mode`` variant (its converter tuned by ``tune``): an
    integer-only artifact is refused when ops stayed float; the record says the mode, the
    calibration and the integer I/O tensors' scales and zero points."""

    def write(dest: Path) -> ArtifactRecord:
        token = _ACTIVE.set(tune)
        try:
            record = route.write(dest)
        except ConversionError as e:
            raise ConversionError(f"--quantize {mode}: {e}") from e
        finally:
            _ACTIVE.reset(token)
        if mode == "int8-full":
            floats = float_ops(read_model(dest.read_bytes()))
            if floats:
                raise ConversionError(
                    f"--quantize int8-full: TFLite has no integer kernel for "
                    f"{', '.join(floats)}, which would stay float inside the artifact; use "
                    "--quantize int8 (float fallback for those ops, float I/O)")
        io = quantized_io(dest)
        for t in record.inputs + record.outputs:
            if t.name in io:
                t.dtype = io[t.name]["dtype"]
                t.extra["quantization"] = {k: io[t.name][k] for k in ("scale", "zero_point")}
        record.details["quantization"] = {
            "mode": mode, "description": MODES[mode],
            "calibration": calibration.to_dict() if calibration and mode in CALIBRATED
            else None, "io": io}
        if io:
            kinds = ", ".join(f"{k}: {v['dtype']}" for k, v in io.items())
            record.warnings.append(
                f"integer I/O ({kinds}): feed q = round(x / scale) + zero_point and read "
                "x = scale * (q - zero_point) with each tensor's scale and zero point (the "
                "validator does)")
        return record

    return Route(route.name, f"{route.description}; {mode}: {MODES[mode]}", write)


def quantize(x: np.ndarray, dtype: str, scale: float, zero_point: int) -> np.ndarray:
    """Float values as the integer tensor holds them: ``round(x / scale) + zero_point``,
    clipped to the dtype's range."""
    info = np.iinfo(np.dtype(dtype))
    q = np.round(np.asarray(x, np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int, dtype: str = "") -> np.ndarray:
    """Integer tensor values as the floats they stand for: ``scale * (q - zero_point)``."""
    return ((np.asarray(q, np.float64) - zero_point) * scale).astype(np.float32)


Scaled = dict[str, dict[str, Any]]  # tensor name -> dtype, scale, zero_point


def float_view(tensors: list[TensorInfo], scaled: Scaled) -> list[TensorInfo]:
    """Runner I/O records: the integer tensors of ``scaled`` shown as the float32 values
    they stand for (their quantization under ``extra["quantized"]``)."""
    return [TensorInfo(t.name, t.shape, "float32", {"quantized": dict(scaled[t.name])})
            if t.name in scaled else TensorInfo(t.name, t.shape, t.dtype) for t in tensors]


def to_integers(feeds: dict[str, np.ndarray], scaled: Scaled) -> dict[str, np.ndarray]:
    """Float feeds quantized for the integer inputs of ``scaled``."""
    return {k: quantize(v, **scaled[k]) if k in scaled else v for k, v in feeds.items()}


def to_floats(results: dict[str, np.ndarray], scaled: Scaled) -> dict[str, np.ndarray]:
    """Integer results dequantized for the outputs of ``scaled``."""
    return {k: dequantize(v, **scaled[k]) if k in scaled else v for k, v in results.items()}
