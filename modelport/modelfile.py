"""Read a model file's raw facts without building anything: kind, config, versions.

Only ``h5py``, ``zipfile`` and ``json`` touch the file here; no framework parses it and no
pickle is ever loaded, so this is safe to run on untrusted input.
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.errors import ModelFileError

__all__ = ["RawModel", "read_model_file", "HDF5_MAGIC", "ZIP_MAGIC"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PREFIXES = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


@dataclass
class RawModel:
    """What the file says about itself, before any layer is built."""

    path: Path
    kind: str  # "h5" or "keras"
    config: dict[str, Any] | None  # {"class_name":..., "config":...}; None when weights-only
    keras_version: str = ""
    backend: str = ""
    training_config: dict[str, Any] | None = None
    weights_only: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def major(self) -> int:
        """Keras major version that wrote the file (1, 2 or 3); 2 when unknown but modern."""
        v = self.keras_version.split(".")[0]
        if v.isdigit():
            return int(v)
        return 3 if self.kind == "keras" else 1 if not self.keras_version else 2


def _decode(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def check_path(path: str | Path) -> Path:
    """Existence, type and readability, each with its own message."""
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{p}: no such file; check the path")
    if p.is_dir():
        raise ModelFileError(
            f"{p}: is a directory, not a model file; pass the .h5 or .keras file inside it"
        )
    try:
        st = p.stat()
    except PermissionError:
        raise ModelFileError(f"{p}: permission denied; make the file readable") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(f"{p}: not a regular file; pass a .h5 or .keras file")
    if not os.access(p, os.R_OK):
        raise ModelFileError(f"{p}: permission denied; make the file readable (chmod +r)")
    if st.st_size == 0:
        raise ModelFileError(f"{p}: the file is empty (0 bytes); re-download or re-save it")
    return p


def sniff(path: Path) -> str:
    """``"h5"`` or ``"keras"`` from the magic bytes; refuses everything else unparsed."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except PermissionError:
        raise ModelFileError(f"{path}: permission denied; make the file readable") from None
    suffix = path.suffix.lower()
    if head.startswith(HDF5_MAGIC):
        if suffix == ".keras":
            raise ModelFileError(
                f"{path}: named .keras but is an HDF5 file; rename it to .h5 and retry"
            )
        return "h5"
    if head.startswith(ZIP_MAGIC):
        if suffix in (".h5", ".hdf5"):
            raise ModelFileError(
                f"{path}: named {suffix} but is a zip (a Keras 3 .keras archive?); "
                "rename it to .keras and retry"
            )
        return "keras"
    if head.startswith(_PICKLE_PREFIXES) or head[:1] in (b"(", b"]", b"}") and suffix in (
        ".pkl", ".pickle", ".h5", ".hdf5"
    ):
        raise ModelFileError(
            f"{path}: looks like a Python pickle, not an HDF5 or .keras model; it was not "
            "opened (unpickling runs code). Re-save the model with model.save('model.h5')"
        )
    if suffix not in (".h5", ".hdf5", ".keras"):
        raise ModelFileError(
            f"{path}: unsupported file type {suffix or '(no extension)'}; modelport reads "
            "Keras .h5/.hdf5 and .keras files"
        )
    raise ModelFileError(
        f"{path}: not an HDF5 or .keras file (unknown header {head[:8]!r}); the file is "
        "corrupt or of another kind; re-download or re-save it"
    )


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
    from modelport.errors import UnsafeModelError
    from modelport.h5probe import probe_in_child

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
        raise ModelFileError(
            f"{p}: HDF5 file holds neither a Keras model config nor Keras weights; "
            "it is not a Keras model file"
        )
    config = _parse_json(p, config_raw, "model_config") if config_raw is not None else None
    training = _parse_json(p, facts["training_config"], "training_config", strict=False)
    if config is not None and not isinstance(config, dict):
        raise ModelFileError(f"{p}: model_config is not a JSON object; the file is damaged")
    raw = RawModel(p, "h5", config, facts["keras_version"], facts["backend"], training,
                   weights_only)
    raw.extra["keras3_weights"] = weights_only and keras3_weights
    return raw


def _parse_json(p: Path, raw: Any, what: str, strict: bool = True) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(_decode(raw))
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
