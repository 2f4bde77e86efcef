"""Rebuild a Keras model from a (checked, upgraded) config with Keras 3 or tf_keras.

Each loader is tried on a temporary copy of the file that carries the rewritten config (and
upgraded weights), through the frameworks' public ``load_model``.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from modelport.core.errors import MissingCustomObjectsError, ModelFileError
from modelport.core.text import one_line
from modelport.loading.config import iter_layers, referenced_names
from modelport.loading.raw import RawModel
from modelport.loading.registry import keras_owned_classes

__all__ = ["build_model", "missing_message"]

log = logging.getLogger(__name__)


def _framework_order(raw: RawModel) -> list[str]:
    # Keras 2 / tf.keras files are read by their own loader first (tf_keras); Keras 3 files
    # and anything tf_keras cannot rebuild go through Keras 3.
    return ["keras3", "tf_keras"] if raw.major >= 3 else ["tf_keras", "keras3"]


def build_model(raw: RawModel, config: dict[str, Any], custom: dict[str, Any], trust: bool):
    errors: list[tuple[str, BaseException]] = []
    for framework in _framework_order(raw):
        repairs: list[str] = []
        try:
            model = _load_with(framework, raw, config, custom, trust, repairs)
        except MissingCustomObjectsError:
            raise
        except Exception as e:  # each loader fails in its own ways; keep all for the message
            log.debug("loading with %s failed", framework, exc_info=True)
            errors.append((framework, e))
            continue
        notes = [f"loaded with {framework} after {errors[0][0]} failed: "
                 f"{one_line(errors[0][1])}"] if errors else []
        return model, framework, repairs + notes
    missing = _unknown_names(errors)
    if missing:
        raise MissingCustomObjectsError(missing_message(raw.path, missing), names=missing)
    detail = "; ".join(f"{fw}: {one_line(e)}" for fw, e in errors)
    raise ModelFileError(f"{raw.path}: no loader could rebuild this model ({detail})")


def _unknown_names(errors: list[tuple[str, BaseException]]) -> list[str]:
    names: list[str] = []
    for _, e in errors:
        for m in re.finditer(r"Unknown (?:layer|object|function|loss|metric)[^'\"]*['\"]([^'\"]+)['\"]",
                             str(e)):
            if m.group(1) not in names:
                names.append(m.group(1))
    return names


def missing_message(path: Path, names: list[str]) -> str:
    bare = [n.rsplit(">", 1)[-1] for n in names]
    lines = ["import keras"] + [
        f"class {n}(keras.layers.Layer): ...  # your implementation" if n[:1].isupper()
        else f"def {n}(x): ...  # your implementation" for n in bare[:2]]
    return (f"{path}: the model uses objects that are not registered: {', '.join(names)}; "
            f"define them in a file and pass --custom-objects FILE.py, for example:\n    "
            + "\n    ".join(lines))


def _load_with(framework: str, raw: RawModel, config: dict[str, Any],
               custom: dict[str, Any], trust: bool, notes: list[str]) -> Any:
    from modelport.loading.legacy.upgrade import needs_weight_upgrade

    cfg = _prepare_config(copy.deepcopy(config), framework)
    objects: dict[str, Any] = {}
    if framework == "keras3":
        from modelport.loading.legacy import keras3_h5

        objects, repaired = keras3_h5.repair(raw, cfg)
        notes += repaired
    # Keras's own classes its reader does not look up by itself (ConvNeXt's LayerScale)
    objects.update(keras_owned_classes(referenced_names(cfg), framework))
    custom = {**objects, **custom}  # the user's objects win
    with tempfile.TemporaryDirectory(prefix="modelport-load-") as tmp:
        if cfg == raw.config and not needs_weight_upgrade(raw, config):
            model_path = raw.path
        else:
            model_path = _patched_copy(raw, cfg, Path(tmp))
        if framework == "keras3":
            import keras

            from modelport.loading.legacy.upgrade import compat_objects

            if raw.major <= 2:
                # Keras 3 gives some Keras 2 names other maths (hard_sigmoid, gelu)
                custom = {**compat_objects(raw), **custom}
            if trust:
                keras.config.enable_unsafe_deserialization()
            return keras.saving.load_model(model_path, custom_objects=custom, compile=False,
                                           safe_mode=not trust)
        import tf_keras

        with tf_keras.utils.custom_object_scope(custom):
            return tf_keras.models.load_model(model_path, custom_objects=custom, compile=False)


def _prepare_config(config: dict[str, Any], framework: str) -> dict[str, Any]:
    if framework == "keras3":
        for _, layer in iter_layers(config):
            cfg = layer.get("config")
            if layer.get("class_name") == "Lambda" and isinstance(cfg, dict):
                if cfg.get("function_type") == "function" and isinstance(cfg.get("function"), str):
                    for key in ("function_type", "module", "output_shape_type",
                                "output_shape_module"):
                        cfg.pop(key, None)
                    # Keras 3's .h5 reader cannot parse a bare name; this form works for both
                    name = cfg["function"]
                    cfg["function"] = {"class_name": "function", "config": name,
                                       "module": None, "registered_name": name}
    return config


def _patched_copy(raw: RawModel, config: dict[str, Any], tmp: Path) -> Path:
    dest = tmp / raw.path.name
    if raw.kind == "keras":
        with zipfile.ZipFile(raw.path) as src, zipfile.ZipFile(dest, "w") as out:
            for item in src.infolist():
                data = src.read(item.filename)
                if item.filename == "config.json":
                    data = json.dumps(config).encode()
                out.writestr(item, data)
        return dest
    import h5py

    from modelport.loading.legacy.upgrade import needs_weight_upgrade, upgrade_weights

    shutil.copyfile(raw.path, dest)
    with h5py.File(dest, "r+") as f:
        f.attrs["model_config"] = json.dumps(config).encode("utf-8")
        if "training_config" in f.attrs:  # never needed to convert; may name custom losses
            del f.attrs["training_config"]
        if needs_weight_upgrade(raw, config):
            upgrade_weights(raw, config, f)
    return dest
