"""The format registry: adding a format is one module here plus one line in ``_MODULES``.

Each format module declares its ``NAME`` and ``SUFFIX`` (see ``base.FormatModule``); the
registry is built from them, so nothing outside ``converters/`` spells a format's suffix.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import cast

from modelport.converters.base import FormatModule
from modelport.core.errors import UserInputError

__all__ = ["names", "get", "modules", "parse_formats", "detect", "artifact_path",
           "suffixes", "by_view_rank", "determinism", "quantize_modes", "parse_quantize",
           "plan_variants", "needs_calibration"]

# production order: the TFLite and ONNX converters reuse what SavedModel and frozen-pb
# conversion already computed
_MODULES: tuple[str, ...] = (
    "modelport.converters.savedmodel",
    "modelport.converters.frozen_pb",
    "modelport.converters.tflite",
    "modelport.converters.onnx",
)


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, FormatModule]:
    # format modules import only numpy at module level; frameworks load on use
    found: dict[str, FormatModule] = {}
    for path in _MODULES:
        module = cast(FormatModule, importlib.import_module(path))
        found[module.NAME] = module
    return found


def modules() -> list[FormatModule]:
    """Every format module, in production order."""
    return list(_registry().values())


def names() -> tuple[str, ...]:
    """Every format name, in production order."""
    return tuple(_registry())


def suffixes() -> dict[str, str]:
    """Format name -> the suffix of its artifact (``OUT/<stem><suffix>``)."""
    return {m.NAME: m.SUFFIX for m in modules()}


def get(name: str) -> FormatModule:
    """The format module registered under ``name`` (or one of its aliases).

    Raises:
        UserInputError: ``name`` is not a known format (the message lists the valid ones).
    """
    registry = _registry()
    if name in registry:
        return registry[name]
    for module in registry.values():
        if name in module.ALIASES:
            return module
    raise UserInputError(f"unknown format {name!r}; choose from: {', '.join(registry)} (or 'all')")


def parse_formats(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"all"``, ``"onnx,tflite"`` or a list -> registry names in production order."""
    if spec is None or spec == "all":
        return list(names())
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    wanted = []
    for item in items:
        item = item.strip().lower()
        if item == "all":
            return list(names())
        name = get(item).NAME
        if name not in wanted:
            wanted.append(name)
    return [n for n in names() if n in wanted]


def artifact_path(out_dir: Path | str, stem: str, name: str, mode: str | None = None) -> Path:
    """``OUT/<stem><suffix>``, or ``OUT/<stem>.<mode><suffix>`` for a quantized variant."""
    return Path(out_dir) / f"{stem}{'.' + mode if mode else ''}{get(name).SUFFIX}"


def quantize_modes() -> dict[str, list[str]]:
    """Quantization mode -> the formats that offer it (a format module's ``QUANTIZE``)."""
    found: dict[str, list[str]] = {}
    for m in modules():
        for mode in getattr(m, "QUANTIZE", {}) or {}:
            found.setdefault(mode, []).append(m.NAME)
    return found


def parse_quantize(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"int8,float16"`` or a list -> known mode names, in the order given.

    Raises:
        UserInputError: a mode no format offers (the message lists the valid ones).
    """
    if not spec:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    known = quantize_modes()
    wanted: list[str] = []
    for item in items:
        mode = item.strip().lower().replace("_", "-")
        if not mode:
            continue
        if mode not in known:
            raise UserInputError(f"--quantize {item.strip()!r}: unknown mode; choose from "
                                 f"{', '.join(known)}")
        if mode not in wanted:
            wanted.append(mode)
    return wanted


def plan_variants(formats: list[str], modes: list[str]) -> list[tuple[str, str]]:
    """The ``(format, mode)`` variants to write: each mode for every requested format that
    offers it, format by format in production order.

    Raises:
        UserInputError: a mode that none of the requested formats offers.
    """
    known = quantize_modes()
    for mode in modes:
        if not any(f in known.get(mode, []) for f in formats):
            raise UserInputError(f"--quantize {mode}: only {', '.join(known.get(mode, []))} "
                                 f"offer{'s' if len(known.get(mode, [])) == 1 else ''} it; "
                                 f"add it to --to (now {', '.join(formats)})")
    return [(f, mode) for f in formats for mode in modes if f in known.get(mode, [])]


def needs_calibration(name: str, mode: str) -> bool:
    """Whether format ``name`` needs representative inputs to write variant ``mode``."""
    return mode in (getattr(get(name), "CALIBRATED", ()) or ())


def detect(path: str | Path) -> str | None:
    """The format of an artifact on disk, from its name and contents; ``None`` if unknown."""
    p = Path(path)
    return next((m.NAME for m in modules() if m.detect(p)), None)


def by_view_rank() -> list[str]:
    """Format names in the order a viewer should prefer them (most complete drawing first)."""
    return [m.NAME for m in sorted(modules(), key=lambda m: m.VIEW_RANK)]


def determinism() -> dict[str, object]:
    """What converting the same model twice reproduces, per format (recorded in the
    manifest; checked by the determinism tests): signatures, I/O names and graph structure
    always; bytes only where upstream allows."""
    every = modules()
    return {
        "same_names_and_structure": [m.NAME for m in every],
        "byte_identical": [m.NAME for m in every if m.BYTE_DETERMINISTIC is True],
        "not_byte_identical": {m.NAME: m.BYTE_DETERMINISTIC for m in every
                               if m.BYTE_DETERMINISTIC is not True},
    }
