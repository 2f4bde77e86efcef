"""Read a model file's raw facts without building anything: kind, config, versions.

Only ``h5py``, ``zipfile`` and ``json`` touch the file here; no framework parses it and no
pickle is ever loaded, so this is safe to run on untrusted input.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from modelport.core.errors import ModelFileError, UnsafeModelError
from modelport.core.text import to_text
from modelport.loading.h5probe import probe_in_child
from modelport.loading.raw import RawModel
from modelport.loading.sniff import check_path, sniff

__all__ = ["read_model_file"]


def read_model_file(path: str | Path) -> RawModel:
    """Check ``path`` and read its config and version attributes.

    Raises:
        ModelFileError: missing, unreadable, empty, truncated or not a Keras model file.
    """
    p = check_path(path)
    kind = sniff(p)
    if kind == "keras":
        return _read_keras_zip(p)
    return _read_h5(p)


def _read_h5(p: Path) -> RawModel:
    facts = probe_in_child(p)
    error = facts.get("error")
    if error == "open":
        raise ModelFileError(
            f"{p}: HDF5 header is valid but the file cannot be read ({facts.get('detail')}); "
            "it is probably truncated: re-download or re-save it")
    if error == "unsafe":
        raise UnsafeModelError(facts["detail"])
    if error:
        raise ModelFileError(f"{p}: HDF5 content cannot be read ({facts.get('detail')}); "
                             "the file is damaged: re-download or re-save it")
    config_raw = facts["model_config"]
    weights_only = config_raw is None
    keras3_weights = (facts["keras3_layout"] or str(p).endswith(".weights.h5")) \
        and not facts["layer_names"]
    if weights_only and not facts["layer_names"] and not facts["model_weights"] \
            and not keras3_weights:
        raise ModelFileError(_not_a_model(p, facts))
    config = _parse_json(p, config_raw, "model_config") if config_raw is not None else None
    training = _parse_json(p, facts["training_config"], "training_config", strict=False)
    if config is not None and not isinstance(config, dict):
        raise ModelFileError(f"{p}: model_config is not a JSON object; the file is damaged")
    raw = RawModel(p, "h5", config, facts["keras_version"], facts["backend"], training,
                   weights_only)
    raw.extra["keras3_weights"] = weights_only and keras3_weights
    return raw


def _not_a_model(p: Path, facts: dict[str, Any]) -> str:
    """Why an HDF5 file without a model config or weights by layer name is refused."""
    if facts.get("keras0_layout"):
        return (f"{p}: holds weights saved by Keras 0.x (nb_layers, layer_<i>/param_<j>) "
                "without a model config or layer names, a layout no current loader reads; "
                "rebuild the model, set these arrays layer by layer in order, and save it "
                "with model.save()")
    if facts.get("keras_version"):
        return (f"{p}: an empty Keras weights file (Keras {facts['keras_version']} wrote it "
                "with no layers and no model config); save the trained model again with "
                "model.save()")
    return f"{p}: HDF5 file holds neither a Keras model config nor Keras weights; it is not " \
        "a Keras model file"


def _parse_json(p: Path, raw: Any, what: str, strict: bool = True) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(to_text(raw))
    except (ValueError, TypeError):
        if not strict:
            return None
        raise ModelFileError(f"{p}: {what} is not valid JSON; the file is damaged") from None


def _read_keras_zip(p: Path) -> RawModel:
    try:
        with zipfile.ZipFile(p) as zf:
            names = set(zf.namelist())
            if "config.json" not in names:
                raise ModelFileError(
                    f"{p}: zip archive without config.json; not a Keras 3 .keras file"
                )
            config = json.loads(zf.read("config.json"))
            meta = json.loads(zf.read("metadata.json")) if "metadata.json" in names else {}
    except zipfile.BadZipFile:
        raise ModelFileError(
            f"{p}: the .keras archive is damaged or truncated; re-download or re-save it"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise ModelFileError(f"{p}: config.json is not valid JSON; the file is damaged") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{p}: config.json is not a JSON object; the file is damaged")
    return RawModel(
        p, "keras", config, str(meta.get("keras_version", "3")), "tensorflow",
        config.get("compile_config"), False, {"archive_files": sorted(names)},
    )
