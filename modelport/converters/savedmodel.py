"""TensorFlow SavedModel: signature ``serving_default`` keyed by the Keras I/O names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.converters.base import Route, Runner, np_dtype
from modelport.converters.tfgraph import (
    GraphSession, graph_nodes, proto_dtype, proto_shape, shape_list,
)
from modelport.core.errors import ModelFileError, UserInputError
from modelport.core.records import ArtifactRecord, ConvertOptions, Description, TensorInfo

if TYPE_CHECKING:  # pragma: no cover
    from modelport.loading.serving import Serving
    from modelport.loading.source import SourceModel

NAME = "savedmodel"
SUFFIX = ".savedmodel"
ALIASES = ("saved_model",)
VIEW_RANK = 3
BYTE_DETERMINISTIC = ("fingerprint.pb holds a random id per save; function names carry "
                      "TensorFlow's per-process counters")
SIGNATURE = "serving_default"
RUNTIME = "tensorflow"

__all__ = ["NAME", "SUFFIX", "detect", "view_file", "companions", "routes", "load", "describe",
           "save_to", "set_tf_threads", "published", "published_dir"]

_PUBLISHED = "savedmodel.published"  # the Serving memo key of the checked artifact's path


def detect(path: Path) -> bool:
    return path.is_dir() and ((path / "saved_model.pb").exists()
                              or (path / "saved_model.pbtxt").exists())


def view_file(path: Path) -> Path:
    """The file a graph viewer opens: the SavedModel's graph."""
    return path / "saved_model.pb"


def companions(path: Path) -> list[Path]:
    """Files a viewer must serve beside the artifact: none, a SavedModel is self-contained."""
    return []


def save_to(serving: Serving, directory: Path, batch_size: int | None = None) -> None:
    """Write a SavedModel of the traced model at ``directory`` (not atomic; for temp
    copies)."""
    import tensorflow as tf

    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    tf.saved_model.save(serving.module(batch_size), str(directory),
                        signatures={SIGNATURE: serving.concrete(batch_size)},
                        options=options)


def published(serving: Serving, path: Path) -> None:
    """The pipeline calls this once the artifact of ``serving`` is under its final name:
    later formats (TFLite) convert from it instead of saving a SavedModel of their own
    (the same module and function saved again gives the same TFLite bytes; see
    ``tests/converters/test_reuse.py``)."""
    serving.memo(_PUBLISHED, dict)[None] = Path(path)


def published_dir(serving: Serving, batch_size: int | None = None) -> Path | None:
    """The published SavedModel of ``serving`` traced for ``batch_size``, if there is one
    (and it is still there)."""
    path = serving.memo(_PUBLISHED, dict).get(batch_size)
    return path if path is not None and detect(path) else None


def routes(source: SourceModel, serving: Serving, options: ConvertOptions) -> list[Route]:
    """One route: the traced function and the model's variables, saved."""

    def write(dest: Path) -> ArtifactRecord:
        save_to(serving, dest)
        inputs, outputs = serving.tensors()
        return ArtifactRecord(NAME, str(dest), inputs, outputs, layout=dict(source.layout),
                              details={"signature": SIGNATURE})

    return [Route("saved_model", "tf.saved_model.save of the traced serving function", write)]


class SavedModelRunner(Runner):
    format = NAME

    def __init__(self, path: str, signature: str = SIGNATURE,
                 threads: int | None = None) -> None:
        import tensorflow as tf

        if threads:
            set_tf_threads(threads)
        loaded = tf.saved_model.load(path)
        if signature not in loaded.signatures:
            raise UserInputError(f"{path}: no signature {signature!r}; it has "
                                 f"{sorted(loaded.signatures)}")
        fn = loaded.signatures[signature]
        _, kwargs = fn.structured_input_signature
        super().__init__(
            path,
            [TensorInfo(k, shape_list(s.shape), np_dtype(s.dtype)) for k, s in kwargs.items()],
            [TensorInfo(k, shape_list(s.shape), np_dtype(s.dtype))
             for k, s in fn.structured_outputs.items()])
        self._loaded = loaded  # keeps the function's variables alive
        self._fn = fn
        self._graph: tuple[GraphSession, dict[str, str], dict[str, str]] | None = None

    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        out = self._fn(**{k: tf.constant(v) for k, v in feeds.items()})
        return {k: np.asarray(v) for k, v in out.items()}

    def _signature_graph(self) -> tuple[GraphSession, dict[str, str], dict[str, str]]:
        """The signature's graph with its variables' current values folded in and the
        function calls inlined, in a session: every op of the model can be fetched by
        name. Built on first use; returns it with the input and output key -> tensor
        name maps."""
        if self._graph is None:
            import tensorflow as tf

            _, kwargs = self._fn.structured_input_signature
            keys = tf.nest.flatten({k: k for k in kwargs})
            out_keys = tf.nest.flatten({k: k for k in self._fn.structured_outputs})
            ins = {k: t.name for k, t in zip(keys, self._fn.inputs)}
            outs = {k: t.name for k, t in zip(out_keys, self._fn.outputs)}
            self._graph = (GraphSession(_frozen_graph_def(self._fn)), ins, outs)
        return self._graph

    def io_tensors(self) -> tuple[dict[str, str], dict[str, str]]:
        _, ins, outs = self._signature_graph()
        return dict(ins), dict(outs)

    def tensors(self) -> list[TensorInfo]:
        """Every float tensor of the signature's graph (function calls inlined, so the
        names are the traced ops': ``StatefulPartitionedCall/model/dense/MatMul:0``)."""
        return self._signature_graph()[0].tensors()

    def run_with_impl(self, feeds: dict[str, np.ndarray], extra: list[str],
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        session, ins, outs = self._signature_graph()
        fetches = {("out", k): name for k, name in outs.items()}
        fetches.update({("extra", n): n for n in extra})
        got = session.run(fetches, {ins[k]: v for k, v in feeds.items()})
        return ({k[1]: v for k, v in got.items() if k[0] == "out"},
                {k[1]: v for k, v in got.items() if k[0] == "extra"})


def _frozen_graph_def(fn: Any) -> Any:
    """``fn``'s graph with its variables folded to constants and its calls inlined; the
    node names stay those of ``fn``'s graph (its inputs and outputs keep their names).

    TensorFlow's public ``convert_variables_to_constants_v2`` also builds a new function
    from the result, which takes 4 s of the 4.5 s on MobileNetV2: the step that writes
    the GraphDef is used alone, and the public function when it is not there."""
    from tensorflow.python.framework import convert_to_constants as c2c

    try:
        data = c2c._FunctionConverterDataInEager(func=fn, lower_control_flow=False,
                                                  aggressive_inlining=True)
        return c2c._replace_variables_by_constants(converter_data=data)[0]
    except AttributeError:  # another TensorFlow: the public way, same graph
        frozen = c2c.convert_variables_to_constants_v2(fn, lower_control_flow=False,
                                                       aggressive_inlining=True)
        return frozen.graph.as_graph_def()


def set_tf_threads(threads: int) -> None:
    """TensorFlow's intra-op threads (inter-op: 1); only possible before its runtime starts,
    so a process that already ran TensorFlow keeps its setting."""
    import logging

    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # "... cannot be modified after initialization"
        logging.getLogger(__name__).debug("TensorFlow already initialised; threads unchanged")


def load(path: str | Path, threads: int | None = None) -> Runner:
    return SavedModelRunner(str(path), threads=threads)


def describe(path: str | Path, nodes: bool = True) -> Description:
    """Every signature's keys and the graph tensors behind them (what ``saved_model_cli``
    shows), read from ``saved_model.pb`` without loading the model."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    except Exception as e:  # protobuf's DecodeError, or a saved_model.pbtxt-only directory
        raise ModelFileError(f"{path}: saved_model.pb cannot be parsed ({e}); the SavedModel "
                             "is damaged or incomplete") from None
    if not sm.meta_graphs:
        raise ModelFileError(f"{path}: the SavedModel holds no meta graph; re-export it")
    meta = sm.meta_graphs[0]
    sigs = {}
    first: tuple[list[TensorInfo], list[TensorInfo]] = ([], [])
    for key, sig in meta.signature_def.items():
        if key.startswith("__"):
            continue
        ins = [TensorInfo(k, proto_shape(v.tensor_shape), proto_dtype(v.dtype), {"tensor": v.name})
               for k, v in sorted(sig.inputs.items())]
        outs = [TensorInfo(k, proto_shape(v.tensor_shape), proto_dtype(v.dtype), {"tensor": v.name})
                for k, v in sorted(sig.outputs.items())]
        sigs[key] = {"inputs": [t.to_dict() for t in ins], "outputs": [t.to_dict() for t in outs],
                     "method": sig.method_name}
        if key == SIGNATURE or not first[0]:
            first = (ins, outs)
    node_list = graph_nodes(meta.graph_def) if nodes else []
    return Description(NAME, str(path), first[0], first[1], node_list,
                       {"signatures": sigs, "tags": list(meta.meta_info_def.tags)})
