"""Combine a weights-only ``.h5`` with an architecture (JSON file or ``module:function``)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from modelport.core.errors import ModelFileError, UserInputError
from modelport.loading.config import iter_layers, layer_name, top_layers
from modelport.loading.hdf5 import read_names, write_names

__all__ = ["architecture_config", "combine_weights"]


def architecture_config(spec: str | Path, custom: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model config from ``FILE.json`` (``model.to_json()``) or ``module:function``
    (a builder returning a Keras model; the user's own code, run because they asked)."""
    text = str(spec)
    path = Path(text)
    if path.suffix.lower() == ".json" or (path.is_file() and ":" not in text):
        if not path.is_file():
            raise UserInputError(f"--architecture {text}: no such file")
        try:
            config = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise UserInputError(f"--architecture {text}: not valid JSON ({e}); pass the "
                                 "string model.to_json() returns") from None
        if isinstance(config, str):  # a JSON-encoded to_json() string
            config = json.loads(config)
    elif ":" in text:
        module_name, _, func_name = text.rpartition(":")
        if module_name.endswith(".py"):
            from modelport.loading.customobjects import collect_custom_objects

            namespace = collect_custom_objects(module_name)
        else:
            try:
                namespace = vars(importlib.import_module(module_name))
            except ImportError as e:
                raise UserInputError(f"--architecture {text}: cannot import {module_name} ({e})") from e
        builder = namespace.get(func_name)
        if not callable(builder):
            raise UserInputError(f"--architecture {text}: {module_name} has no function {func_name}")
        model = builder()
        config = json.loads(model.to_json())
    else:
        raise UserInputError(f"--architecture {text}: pass FILE.json or module:function")
    if not isinstance(config, dict) or "class_name" not in config:
        raise UserInputError(f"--architecture {text}: not a Keras model config")
    return config


def combine_weights(weights: Path, config: dict[str, Any], dest: Path) -> Path:
    """Write ``dest``: a full-model ``.h5`` with ``config`` and the weights, matched by layer
    name (like ``load_weights(by_name=True)``): groups are ordered as the architecture's layers,
    so loaders that match by order match by name."""
    import h5py

    with h5py.File(weights, "r") as src, h5py.File(dest, "w") as out:
        root = src["model_weights"] if "model_weights" in src else src
        stored = read_names(root.attrs, "layer_names")
        wanted = [layer_name(l) for l in top_layers(config)]
        missing = []
        order = []
        for name in wanted:
            if name in stored:
                order.append(name)
            elif _has_weights(config, name):
                missing.append(name)
        if missing:
            raise ModelFileError(
                f"{weights}: no weights for layer(s) {missing} of the architecture; the layer "
                f"names must match (the file has {stored[:10]})")
        group = out.create_group("model_weights")
        for key, value in root.attrs.items():
            group.attrs[key] = value
        write_names(group.attrs, "layer_names", order)
        for name in order:
            src.copy(root[name], group, name=name)
        version = root.attrs.get("keras_version", src.attrs.get("keras_version", b"2"))
        out.attrs["keras_version"] = config.get("keras_version", version)
        out.attrs["backend"] = root.attrs.get("backend", b"tensorflow")
        out.attrs["model_config"] = json.dumps(config).encode()
    return dest


def _has_weights(config: dict[str, Any], name: str) -> bool:
    weightless = {"InputLayer", "Dropout", "Flatten", "Activation", "Reshape", "Lambda",
                  "MaxPooling2D", "MaxPooling1D", "AveragePooling2D", "Concatenate", "Add",
                  "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Permute", "RepeatVector"}
    for _, layer in iter_layers(config):
        if layer_name(layer) == name:
            return layer.get("class_name") not in weightless
    return False
