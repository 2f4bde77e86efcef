"""Load a .h5/.keras file into a ``SourceModel``: the one place names, shapes and layout
are decided for every converter and for the validator's reference."""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelport.core.records import TensorInfo
from modelport.loading.customobjects import alias_registered_names, collect_custom_objects
from modelport.core.errors import (
    LambdaRefusedError,
    ModelportError,
    MissingCustomObjectsError,
    ModelFileError,
    UserInputError,
)
from modelport.loading.config import iter_layers, referenced_names
from modelport.loading.lambdas import LambdaInfo, find_lambdas, rebind_lambdas
from modelport.core.text import one_line
from modelport.loading.builder import build_model, missing_message
from modelport.loading.graphcheck import check_graph
from modelport.loading.modelfile import read_model_file
from modelport.loading.raw import RawModel
from modelport.loading.serving import Serving, trace
from modelport.loading.tensors import embedding_inputs, io_records
from modelport.loading.objectcheck import unknown_objects

__all__ = ["SourceModel", "load"]

log = logging.getLogger(__name__)

_RNN_CLASSES = {"LSTM", "GRU", "SimpleRNN", "RNN", "CuDNNLSTM", "CuDNNGRU", "ConvLSTM2D",
                "Bidirectional", "LSTMV1", "GRUV1"}


@dataclass
class SourceModel:
    """A loaded Keras model plus everything the converters and validator need to agree on."""

    path: Path
    raw: RawModel
    model: Any
    framework: str  # "keras3" or "tf_keras"
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    layout: dict[str, str]  # input name -> "NHWC", "NCHW", "NWC", ... or "none"
    data_format: str  # "channels_last", "channels_first" or "none"
    has_rnn: bool
    embedding_vocab: dict[str, int] = field(default_factory=dict)  # input -> vocabulary size
    warnings: list[str] = field(default_factory=list)
    lambdas: list[dict[str, str]] = field(default_factory=list)
    custom_objects: dict[str, Any] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    @functools.cached_property
    def serving(self) -> Serving:
        """The model traced into the serving function every converter consumes."""
        return trace(self)

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The reference: the Keras model itself, through the same serving function."""
        import tensorflow as tf

        out = self.serving(**{n: tf.constant(np.asarray(feeds[n])) for n in self.input_names})
        return {k: np.asarray(v) for k, v in out.items()}


def load(
    path: str | os.PathLike[str],
    custom_objects: Any = None,
    trust_lambda: bool = False,
    architecture: str | os.PathLike[str] | None = None,
) -> SourceModel:
    """Load a Keras model file for conversion.

    Args:
        path: a ``.h5``/``.hdf5`` (any Keras era) or ``.keras`` file.
        custom_objects: dict, module, ``.py`` path, module name, or a list of those.
        trust_lambda: allow running Lambda bytecode stored in the file (unsafe).
        architecture: for a weights-only file: ``FILE.json`` (``model.to_json()``) or
            ``module:function`` returning a model; weights are matched by layer name.

    Returns:
        The loaded ``SourceModel``.

    Raises:
        ModelFileError: the file is missing, damaged or not a full Keras model.
        LambdaRefusedError: a Lambda holds bytecode and neither a custom object of the same
            name nor ``trust_lambda`` was given.
        MissingCustomObjectsError: the config references classes nobody registered.
    """
    custom = collect_custom_objects(custom_objects)
    try:
        return _load(path, custom, trust_lambda, architecture)
    except (ModelportError, KeyboardInterrupt):
        raise
    except Exception as e:
        # a damaged file can trip any reader (h5py, json, a framework); name it as such
        log.debug("loading %s failed", path, exc_info=True)
        raise ModelFileError(
            f"{path}: cannot be read as a Keras model ({one_line(e)}); the file is damaged "
            "or of an unsupported kind (run with --debug for details)"
        ) from e


def _load(path: Any, custom: dict[str, Any], trust_lambda: bool,
          architecture: Any) -> SourceModel:
    raw = read_model_file(path)
    with tempfile.TemporaryDirectory(prefix="modelport-arch-") as tmp:
        if architecture is not None:
            raw = _with_architecture(raw, architecture, custom, Path(tmp))
        elif raw.weights_only or raw.config is None:
            raise ModelFileError(
                f"{raw.path}: holds weights only (no model config); pass --architecture "
                "FILE.json (model.to_json()) or --architecture module:function that builds "
                "the model, or save the full model with model.save()"
            )
        return _load_raw(raw, custom, trust_lambda)


def _with_architecture(raw: RawModel, architecture: Any, custom: dict[str, Any],
                       tmp: Path) -> RawModel:
    from modelport.loading.architecture import architecture_config, combine_weights

    if raw.kind != "h5":
        raise UserInputError(f"{raw.path}: --architecture applies to .h5 weight files only")
    config = architecture_config(architecture, custom)
    if raw.extra.get("keras3_weights"):
        combined = _keras3_combined(raw.path, config, custom, tmp)
    else:
        combined = combine_weights(raw.path, config, tmp / raw.path.name)
    merged = read_model_file(combined)
    merged.extra["weights_from"] = str(raw.path)
    merged.extra["display_path"] = raw.path
    return merged


def _keras3_combined(weights: Path, config: dict[str, Any], custom: dict[str, Any],
                     tmp: Path) -> Path:
    """Keras 3 ``.weights.h5`` files are keyed by layer path; only Keras 3 reads them."""
    import keras

    try:
        model = keras.models.model_from_json(json.dumps(config), custom_objects=custom)
        model.load_weights(weights)
    except Exception as e:
        raise ModelFileError(f"{weights}: these Keras 3 weights do not fit the architecture "
                             f"({one_line(e)})") from None
    dest = tmp / f"{weights.name.split('.')[0]}.keras"
    model.save(dest)
    return dest


def _load_raw(raw: RawModel, custom: dict[str, Any], trust_lambda: bool) -> SourceModel:
    from modelport.loading.safety import check_config  # refuse unsafe content first

    config = copy.deepcopy(raw.config)
    check_config(raw, config, custom)
    custom = alias_registered_names(custom, referenced_names(config))
    lambdas = find_lambdas(config)
    origin = {id(i): "named_function" for i in lambdas if i.kind == "name"}
    remaining = rebind_lambdas(lambdas, custom)
    origin.update({id(i): "custom_objects" for i in lambdas
                   if id(i) not in origin and i not in remaining})
    if remaining and not trust_lambda:
        from modelport.loading.legacy.recovery import recover_lambdas

        before = remaining
        remaining = recover_lambdas(remaining, custom)
        origin.update({id(i): "recovered" for i in before if i not in remaining})
    if remaining and not trust_lambda:
        raise _lambda_refusal(raw.path, remaining)
    origin.update({id(i): "trusted_bytecode" for i in remaining})
    warnings: list[str] = _recovery_notes(lambdas)
    from modelport.loading.legacy.upgrade import upgrade_config

    warnings += upgrade_config(raw, config)
    check_graph(config)
    missing, legacy_only = unknown_objects(config, custom)
    if missing:
        raise MissingCustomObjectsError(missing_message(raw.path, missing), names=missing)
    if legacy_only:
        raise ModelFileError(
            f"{raw.path}: uses Keras 1 layer(s) {', '.join(legacy_only)} that no current Keras "
            "implements; rebuild those parts with current layers (e.g. Merge -> Concatenate/Add) "
            "and pass the architecture with --architecture")
    model, framework, notes = build_model(raw, config, custom, trust_lambda)
    warnings += notes
    from modelport.loading.channels_first import describe_layout, patch_channels_first

    data_format = patch_channels_first(model)
    inputs, outputs = io_records(model, framework)
    layout = describe_layout(inputs, data_format)
    src = SourceModel(
        path=Path(raw.extra.get("display_path", raw.path)), raw=raw, model=model, framework=framework, inputs=inputs,
        outputs=outputs, layout=layout, data_format=data_format,
        has_rnn=any(l.get("class_name") in _RNN_CLASSES for _, l in iter_layers(config)),
        embedding_vocab=embedding_inputs(model), warnings=warnings,
        # how each Lambda was rebuilt; only "trusted_bytecode" ran code from the file
        lambdas=[{"layer": i.layer_name, "function": i.function_name,
                  "rebuilt_from": origin.get(id(i), "trusted_bytecode")} for i in lambdas],
        custom_objects=custom,
    )
    return src


def _recovery_notes(lambdas: list[LambdaInfo]) -> list[str]:
    """What loading must say about recovered Lambdas: random draws, Windows bytes."""
    notes = []
    for info in lambdas:
        recovered = getattr(info, "recovered", None)
        if recovered is None:
            continue
        if recovered.random:
            notes.append(f"stochastic: Lambda {info.layer_name} draws random numbers "
                         f"({', '.join(recovered.random)}), so the model's outputs change "
                         "from run to run; compare them by distribution, not element-wise")
        if recovered.restored:
            notes.append(f"Lambda {info.layer_name}: its bytecode was saved on Windows, where "
                         "Keras stores every '\\' byte as '/'; read with those bytes restored")
    return notes


def _lambda_refusal(path: Path, remaining: list[LambdaInfo]) -> LambdaRefusedError:
    names = [i.layer_name for i in remaining]
    detailed = [getattr(i, "refusal", "") for i in remaining]
    if all(detailed):
        # recovery says per Lambda what its bytecode uses and why it was not translated
        return LambdaRefusedError(f"{path}: " + " | ".join(detailed), layers=names)
    parts = []
    for info in remaining:
        fn = info.function_name or "unreadable bytecode"
        parts.append(f"{info.layer_name} ({fn})")
    hint = next((i.function_name for i in remaining
                 if i.function_name and i.function_name != "<lambda>"), "my_function")
    return LambdaRefusedError(
        f"{path}: Lambda layer(s) {', '.join(parts)} carry Python bytecode, which is not run "
        f"by default; pass --custom-objects FILE.py defining a function of the same name "
        f"(e.g. def {hint}(x): ...), or --trust-lambda if you trust this file and it was "
        "saved with this Python version",
        layers=names,
    )
