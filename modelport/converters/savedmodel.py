"""TensorFlow SavedModel: signature ``serving_default`` keyed by the Keras I/O names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelport.converters.base import Route, Runner, np_dtype
from modelport.converters.tfgraph import graph_nodes, proto_dtype, proto_shape, shape_list
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
           "save_to", "set_tf_threads"]


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

    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        out = self._fn(**{k: tf.constant(v) for k, v in feeds.items()})
        return {k: np.asarray(v) for k, v in out.items()}


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
