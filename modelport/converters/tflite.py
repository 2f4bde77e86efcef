"""TFLite flatbuffer, float32, builtin ops by default, run by the LiteRT interpreter.

Converted from a SavedModel (never from a concrete function over a Keras 3 model, which can
silently drop the weights): the SavedModel artifact ``convert`` just published when there
is one of the same trace, else one saved for the purpose. The routes, in order: builtin ops with a dynamic batch; batch
size 1 (TensorList ops lower to builtins only for a fixed batch); for models with recurrent
layers, those layers traced as plain ops, as a loop at batch 1 and then unrolled over their
time steps (the fused LSTM kernel keeps its state between calls, see ``recurrent.py``); the
frozen graph through TensorFlow's graph converter (its importer keeps static shapes the
SavedModel importer loses); and with ``allow_flex``, Flex (Select TF) ops.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from modelport.converters.base import Route, Runner
from modelport.converters.pooling3d import pooling_as_2d, pooling_layers
from modelport.converters.recurrent import is_stateful, plain_recurrent, recurrent_layers
from modelport.converters.tflite_diagnosis import explain_conversion_error
from modelport.converters.tflite_saved import saved_model_converter
from modelport.converters import tflite_quant
from modelport.converters.tflite_tensors import TensorTable
from modelport.converters.tflite_flatbuffer import (
    describe as describe_flatbuffer, op_names, read_model, variable_tensors, with_signature,
)
from modelport.core.errors import ConversionError, ModelFileError
from modelport.core.quiet import native_stderr_silenced
from modelport.core.records import ArtifactRecord, ConvertOptions, Description
from modelport.core.text import fmt_shape, one_line

if TYPE_CHECKING:  # pragma: no cover
    from modelport.loading.serving import Serving
    from modelport.loading.source import SourceModel

NAME = "tflite"
SUFFIX = ".tflite"
ALIASES = ("litert",)
VIEW_RANK = 1
BYTE_DETERMINISTIC = True
QUANTIZE = tflite_quant.MODES  # quantized variants (convert --quantize), see tflite_quant
CALIBRATED = tflite_quant.CALIBRATED
RUNTIME = "ai_edge_litert"

__all__ = ["NAME", "SUFFIX", "detect", "view_file", "companions", "routes",
           "quantized_routes", "load", "describe"]

log = logging.getLogger(__name__)


def detect(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == SUFFIX


def view_file(path: Path) -> Path:
    """The file a graph viewer opens: the artifact itself."""
    return path


def companions(path: Path) -> list[Path]:
    """Files a viewer must serve beside the artifact: none, a flatbuffer is self-contained."""
    return []


def describe(path: str | Path, nodes: bool = True) -> Description:
    """Signatures, every tensor (shape, dtype, quantization) and the op list; no TensorFlow."""
    return describe_flatbuffer(path, NAME, nodes)


def routes(source: SourceModel, serving: Serving, options: ConvertOptions) -> list[Route]:
    """The ways to a TFLite artifact, best first (see the module docstring)."""
    rnn = bool(recurrent_layers(source.model))
    hint = not options.allow_flex  # a failure for want of TF ops suggests --allow-flex
    found = [Route("builtins", "builtin ops, dynamic batch",
                   _writer(source, serving, None, hint=hint))]
    if serving.fixed_batch is None:  # a batch the user fixed is fixed in every route
        found.append(Route(
            "builtins-batch1", "builtin ops, batch size 1 (TensorList ops lower to "
            "builtins only for a fixed batch)", _writer(source, serving, 1, hint=hint)))
    if rnn:
        # the loop first: unrolling costs conversion time and size with every time step
        # (500 steps x 2 LSTM layers: 100 s, 2.6 MB), for a dynamic batch
        found += [
            Route("loop-batch1", "recurrent layers as a plain loop, no fused RNN kernel; "
                  "builtin ops, batch size 1",
                  _writer(source, serving, 1, unroll=False, hint=hint)),
            Route("unrolled", "recurrent layers unrolled over their time steps, no fused "
                  "RNN kernel; builtin ops, dynamic batch",
                  _writer(source, serving, None, unroll=True, hint=hint)),
        ]
    if pooling_layers(source.model):
        found.append(Route(
            "pooling-2d", "3-D pooling as 2-D pooling and a pass over depth (TFLite has no "
            "3-D pooling builtin; the two compute the same); builtin ops, dynamic batch",
            _writer(source, serving, None, rewrite=pooling_as_2d, hint=hint)))
    found.append(Route(
        "frozen-graph", "the frozen GraphDef through TensorFlow's graph importer, which keeps "
        "static shapes a SavedModel import can lose (e.g. channels after an upsampling of "
        "unknown size); builtin ops, dynamic batch", _frozen_writer(source, serving, hint)))
    if options.allow_flex:
        found.append(Route(
            "flex", "builtin and Flex (Select TF) ops, dynamic batch"
            + ("; recurrent layers as a plain loop" if rnn else ""),
            _writer(source, serving, None, unroll=False if rnn else None,
                    flex=True)))
    return found


def quantized_routes(source: SourceModel, serving: Serving, options: ConvertOptions,
                     mode: str, base: Path | None = None) -> list[Route]:
    """The same routes, each converting with ``mode``'s post-training quantization
    (``tflite_quant``); ``base`` (the float32 artifact) is not needed."""
    return tflite_quant.variants(routes(source, serving, options), mode, options.calibration,
                                 source.input_names)


def _writer(source: SourceModel, serving: Serving, batch: int | None,
            unroll: bool | None = None, flex: bool = False, hint: bool = False,
            rewrite: Callable[[Any], Any] | None = None) -> Callable[[Path], ArtifactRecord]:
    """A route's write function; ``unroll`` not None traces the model afresh with its
    recurrent layers as plain ops (unrolled, or a loop), ``rewrite`` (a context manager
    over the model) traces it afresh inside that context; ``hint``: a failure suggests
    ``--allow-flex``."""
    if unroll is not None:
        rewrite = functools.partial(plain_recurrent, unroll=unroll)

    def write(dest: Path) -> ArtifactRecord:
        if rewrite is None:
            data = _convert_bytes(serving, batch, flex, hint)
        else:
            from modelport.loading.serving import trace

            # a new trace (the shared one holds the layers as they are), same shapes
            fresh = trace(source, serving.shapes)
            with rewrite(source.model):
                try:
                    fresh.concrete(batch)
                except Exception as e:  # e.g. unrolling needs a known number of time steps
                    how = ("recurrent layers " + ("unrolled" if unroll else "as a loop")
                           if unroll is not None else "rewritten model")
                    raise ConversionError(f"cannot trace the {how}: "
                                          + one_line(e, 240, with_type=False, whole=True)) from e
                data = _convert_bytes(fresh, batch, flex, hint)
        model = read_model(data)
        state = variable_tensors(model)
        if state and not is_stateful(source.model):
            raise ConversionError(
                f"the artifact keeps state between calls ({len(state)} variable tensors, "
                "e.g. the fused LSTM kernel's hidden and cell state): every call after the "
                "first would start from the previous call's state, while the Keras model "
                "starts each call from zeros")
        dest.write_bytes(data)
        return _record(serving, dest, model, batch, unroll)

    return write


def _frozen_writer(source: SourceModel, serving: Serving,
                   hint: bool) -> Callable[[Path], ArtifactRecord]:
    """The route through ``tf.compat.v1``'s frozen-graph converter: its importer runs
    TensorFlow's own shape inference over the graph (constant-folding computed shapes),
    where the SavedModel importer leaves e.g. ``Reshape(x, concat(shape(x)[:3], [16]))``
    fully unknown and the next convolution cannot be lowered. It writes no signature; the
    Keras names are added as one."""

    def write(dest: Path) -> ArtifactRecord:
        import tensorflow as tf

        from modelport.converters.frozen_pb import frozen_graph_def

        with tempfile.TemporaryDirectory(prefix="modelport-tflite-") as tmp:
            graph = Path(tmp) / "frozen.pb"
            graph.write_bytes(frozen_graph_def(serving).SerializeToString())
            shapes = {t.name: serving.input_shape(t) for t in source.inputs}
            converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
                str(graph), source.input_names, source.output_names, input_shapes=shapes)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            data = _run_converter(converter, None, False, hint)
        data = with_signature(data, source.input_names, source.output_names)
        model = read_model(data)
        dest.write_bytes(data)
        return _record(serving, dest, model, None, None)

    return write


def _run_converter(converter: Any, batch: int | None, flex: bool, hint: bool,
                   context: Any = None) -> bytes:
    tflite_quant.apply(converter)  # a quantized variant's settings, when one is written
    try:
        with context or contextlib.nullcontext():
            if log.isEnabledFor(logging.DEBUG):
                return converter.convert()
            # the MLIR converter prints its diagnostics natively; the exception keeps them
            with native_stderr_silenced():
                return converter.convert()
    except Exception as e:  # the MLIR converter raises several types
        log.debug("tflite conversion (batch=%s, flex=%s) failed", batch, flex, exc_info=True)
        raise ConversionError(explain_conversion_error(e, flex, hint)) from e


def _convert_bytes(serving: Serving, batch: int | None, flex: bool, hint: bool) -> bytes:
    """Convert from the SavedModel artifact of this very trace when ``convert`` already
    published one, else from a SavedModel saved for the purpose."""
    from modelport.converters.savedmodel import published_dir, save_to

    ready = published_dir(serving, batch)
    if ready is not None:
        return _from_saved_model(ready, batch, flex, hint)
    with tempfile.TemporaryDirectory(prefix="modelport-tflite-") as tmp:
        sm = Path(tmp) / "sm"
        save_to(serving, sm, batch_size=batch)
        return _from_saved_model(sm, batch, flex, hint)


def _from_saved_model(directory: Path, batch: int | None, flex: bool, hint: bool) -> bytes:
    import tensorflow as tf

    from modelport.converters.savedmodel import SIGNATURE

    converter, context = saved_model_converter(directory, SIGNATURE)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if flex:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        converter._experimental_lower_tensor_list_ops = False
    converter.target_spec.supported_ops = ops
    return _run_converter(converter, batch, flex, hint, context)


def _record(serving: Serving, dest: Path, model: Any, batch: int | None,
            unroll: bool | None) -> ArtifactRecord:
    source = serving.source
    flex_ops = sorted({op for op in op_names(model) if op.startswith("Flex")})
    inputs, outputs = serving.tensors(batch)
    dynamic = {t.name: t.shape for t in inputs if t.shape and None in t.shape[1:]}
    warnings = []
    if batch is not None and serving.fixed_batch is None:
        warnings.append(f"exported with a fixed batch size of {batch} (dynamic batch needs "
                        "TensorList ops that LiteRT builtins lack); run one sample at a time")
    if flex_ops:
        warnings.append(f"needs the Flex delegate for {', '.join(flex_ops)}")
    if dynamic:
        shapes = ", ".join(f"{k}{fmt_shape(v)}" for k, v in dynamic.items())
        warnings.append(f"dynamic dimensions ({shapes}): resize the interpreter's inputs "
                        "to the data's shape before allocate_tensors()")
    recurrent = None if unroll is None else ("unrolled" if unroll else "loop")
    return ArtifactRecord(NAME, str(dest), inputs, outputs, layout=dict(source.layout),
                          warnings=warnings,
                          details={"fixed_batch": serving.batch(batch), "flex_ops": flex_ops,
                                   "needs_flex_delegate": bool(flex_ops),
                                   "dynamic_inputs": dynamic, "recurrent_layers": recurrent})


def _litert_error(path: str, e: BaseException) -> ModelFileError:
    text = one_line(e, with_type=False)
    if "Select TensorFlow op" in str(e) or "Flex delegate" in str(e):
        ops = ", ".join(describe(path, nodes=False).details.get("flex_ops") or ["Flex ops"])
        return ModelFileError(f"{path}: needs the Flex delegate for {ops}, which this "
                              "LiteRT does not include: it cannot run here (link "
                              "tensorflow-lite-select-tf-ops where you deploy it)")
    return ModelFileError(f"{path}: LiteRT cannot open it ({text})")


class TFLiteRunner(Runner):
    """The LiteRT interpreter behind the signature runner. Integer I/O tensors (an
    ``int8-full`` artifact's) are presented as float32: feeds are quantized with each
    tensor's scale and zero point and results dequantized, unless ``raw_io`` (then the
    tensors' own dtypes are fed and returned as they are)."""

    format = NAME

    def __init__(self, path: str, raw_io: bool = False, threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            with native_stderr_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate"
                self._interp = Interpreter(model_path=path, num_threads=threads)
        except Exception as e:
            raise _litert_error(path, e) from None
        desc = describe(path, nodes=False)
        try:
            with native_stderr_silenced():
                self._interp.allocate_tensors()
        except Exception as e:
            # unknown spatial dimensions sit at 1 until the first feed: kernels may refuse
            # that size (XNNPack "failed to reshape"); the signature runner resizes every
            # input to the fed shape and allocates again before each run
            if not any(t.shape and None in t.shape[1:] for t in desc.inputs):
                raise _litert_error(path, e) from None
            log.debug("%s: allocation deferred to the first run (%s)", path, e)
        self._scaled = {} if raw_io else tflite_quant.quantized_io(path)
        super().__init__(path, tflite_quant.float_view(desc.inputs, self._scaled),
                         tflite_quant.float_view(desc.outputs, self._scaled))
        sigs = self._interp.get_signature_list()
        self._key = "serving_default" if "serving_default" in sigs else next(iter(sigs), None)
        self._fixed = None
        self._keep: TensorTable | None = None  # made on first use
        for t in desc.inputs:
            if t.shape and t.shape[0] is not None:
                self._fixed = t.shape[0]

    @property
    def fixed_batch(self) -> int | None:
        return self._fixed

    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self._invoke(tflite_quant.to_integers(feeds, self._scaled))
        return tflite_quant.to_floats(out, self._scaled)

    def _invoke(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
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
                parts.append({k: v[:real] for k, v in self._invoke(chunk).items()})
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        runner = self._interp.get_signature_runner(self._key)
        try:
            # resizes each input to the fed shape and re-allocates when it changed
            out = runner(**{k: np.ascontiguousarray(v) for k, v in feeds.items()})
        except RuntimeError as e:
            raise _litert_error(self.path, e) from None
        return {k: np.array(v) for k, v in out.items()}

    def _table(self) -> TensorTable:
        """The tensors of a second interpreter that keeps every intermediate tensor."""
        if self._keep is None:
            from ai_edge_litert.interpreter import Interpreter

            with native_stderr_silenced():
                self._keep = TensorTable(Interpreter(model_path=self.path,
                                                     experimental_preserve_all_tensors=True))
        return self._keep

    def tensors(self) -> list[TensorInfo]:
        """Every float or quantized tensor an op writes from an input, in execution order
        (quantized ones listed as the float32 they are returned as)."""
        return self._table().tensors

    def io_tensors(self) -> tuple[dict[str, str], dict[str, str]]:
        return self._table().io_names(self._key)

    def run_with_impl(self, feeds: dict[str, np.ndarray], extra: list[str],
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        table = self._table()
        runner = table.interp.get_signature_runner(self._key)
        feeds = tflite_quant.to_integers(feeds, self._scaled)  # int8-full I/O
        try:
            out = runner(**{k: np.ascontiguousarray(v) for k, v in feeds.items()})
        except RuntimeError as e:
            raise _litert_error(self.path, e) from None
        out = tflite_quant.to_floats({k: np.array(v) for k, v in out.items()}, self._scaled)
        return out, table.values(extra)


def load(path: str | Path, threads: int | None = None) -> Runner:
    return TFLiteRunner(str(path), threads=threads)
