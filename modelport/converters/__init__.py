"""The format registry: adding a format is one module here plus one line in ``_FORMATS``."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from modelport.errors import UserInputError

__all__ = ["FORMAT_NAMES", "get", "detect", "artifact_path"]

# name -> module; order is the order artifacts are produced in (the TFLite and ONNX
# converters reuse what SavedModel and frozen-pb conversion already computed).
_FORMATS: dict[str, str] = {
    "savedmodel": "modelport.converters.savedmodel",
    "pb": "modelport.converters.frozen_pb",
    "tflite": "modelport.converters.tflite",
    "onnx": "modelport.converters.onnx",
}

FORMAT_NAMES: tuple[str, ...] = tuple(_FORMATS)

# the suffix each format's artifact carries under OUT/<stem><suffix>
SUFFIXES: dict[str, str] = {
    "savedmodel": ".savedmodel",
    "pb": ".pb",
    "tflite": ".tflite",
    "onnx": ".onnx",
}


def get(name: str) -> ModuleType:
    """The format module registered under ``name``.

    Raises:
        UserInputError: ``name`` is not a known format (the message lists the valid ones).
    """
    try:
        module = _FORMATS[name]
    except KeyError:
        raise UserInputError(
            f"unknown format {name!r}; choose from: {', '.join(FORMAT_NAMES)} (or 'all')"
        ) from None
    return importlib.import_module(module)


def parse_formats(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"all"``, ``"onnx,tflite"`` or a list -> registry names in production order."""
    if spec is None or spec == "all":
        return list(FORMAT_NAMES)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = []
    for item in items:
        item = item.strip().lower()
        if item == "all":
            return list(FORMAT_NAMES)
        item = {"saved_model": "savedmodel", "frozen_pb": "pb", "litert": "tflite"}.get(item, item)
        get(item)  # validates
        if item not in names:
            names.append(item)
    return [n for n in FORMAT_NAMES if n in names]


def artifact_path(out_dir: Path, stem: str, name: str) -> Path:
    return Path(out_dir) / f"{stem}{SUFFIXES[name]}"


def detect(path: str | Path) -> str | None:
    """The format of an artifact on disk, from its name and contents; ``None`` if unknown."""
    p = Path(path)
    if p.is_dir():
        if (p / "saved_model.pb").exists() or (p / "saved_model.pbtxt").exists():
            return "savedmodel"
        return None
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".tflite":
        return "tflite"
    if suffix == ".pb":
        return "pb"
    return None
