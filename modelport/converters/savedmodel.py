"""TensorFlow SavedModel: signature ``serving_default`` keyed by the Keras I/O names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelport.atomic import atomic_path
from modelport.errors import ModelFileError
from modelport.converters.base import (
    ArtifactRecord, ConvertOptions, Description, Runner, TensorInfo, np_dtype, source_tensors,
)

NAME = "savedmodel"
SUFFIX = ".savedmodel"
SIGNATURE = "serving_default"

__all__ = ["NAME", "SUFFIX", "convert", "load", "describe", "save_to"]


def save_to(source: Any, directory: Path, batch_size: int | None = None) -> None:
    """Write a SavedModel of ``source`` at ``directory`` (not atomic; for temp copies)."""
    import tensorflow as tf

    from modelport.serving import concrete_function, tracked_module

    module = tracked_module(source, batch_size)
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    tf.saved_model.save(module, str(directory),
                        signatures={SIGNATURE: concrete_function(source, batch_size)},
                        options=options)


def convert(source: Any, dest: Path, options: ConvertOptions) -> ArtifactRecord:
    with atomic_path(dest, directory=True) as tmp:
        save_to(source, tmp)
    inputs, outputs = source_tensors(source)
    return ArtifactRecord(NAME, str(dest), inputs, outputs, layout=dict(source.layout),
                          details={"signature": SIGNATURE})


class SavedModelRunner(Runner):
    format = NAME

    def __init__(self, path: str, signature: str = SIGNATURE) -> None:
        super().__init__(path)
        import tensorflow as tf

        self._loaded = tf.saved_model.load(path)
        if signature not in self._loaded.signatures:
            from modelport.errors import UserInputError

            raise UserInputError(f"{path}: no signature {signature!r}; it has "
                                 f"{sorted(self._loaded.signatures)}")
        self._fn = self._loaded.signatures[signature]
        _, kwargs = self._fn.structured_input_signature
        self._inputs = [TensorInfo(k, _shape(s.shape), np_dtype(s.dtype)) for k, s in kwargs.items()]
        self._outputs = [TensorInfo(k, _shape(s.shape), np_dtype(s.dtype))
                         for k, s in self._fn.structured_outputs.items()]

    @property
    def inputs(self) -> list[TensorInfo]:
        return self._inputs

    @property
    def outputs(self) -> list[TensorInfo]:
        return self._outputs

    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        out = self._fn(**{k: tf.constant(v) for k, v in feeds.items()})
        return {k: np.asarray(v) for k, v in out.items()}


def _shape(shape: Any) -> list[int | None] | None:
    if shape.rank is None:
        return None
    return [None if d is None else int(d) for d in shape.as_list()]


def load(path: str | Path) -> Runner:
    return SavedModelRunner(str(path))


def describe(path: str | Path, nodes: bool = True) -> Description:
    """Every signature's keys and the graph tensors behind them (what ``saved_model_cli``
    shows), read from ``saved_model.pb`` without loading the model."""
    from tensorflow.core.protobuf import saved_model_pb2

    from modelport.converters.frozen_pb import graph_nodes, proto_dtype, proto_shape

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
