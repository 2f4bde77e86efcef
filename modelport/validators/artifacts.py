"""Which artifacts to validate, and what their manifests declare about them.

A directory means every artifact in it (found by ``converters.detect``). The manifests
beside the artifacts (``*.manifest.json``) declare each one's input layout, fixed batch
and conversion warnings; an artifact without a manifest is assumed to take the Keras
model's layout, and the report says so.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from modelport import converters
from modelport.core.records import ArtifactRecord, TensorInfo
from modelport.core.errors import UserInputError
from modelport.core.manifest import MANIFEST_SUFFIX, read_manifest
from modelport.core.text import fmt_shape
from modelport.validators.layout import expected_shape, implied_layout

__all__ = ["Target", "discover", "fixed_feed_shapes"]

log = logging.getLogger(__name__)


@dataclass
class Target:
    """One artifact to validate."""

    path: Path
    format: str
    record: ArtifactRecord | None = None  # its manifest entry, if any
    manifest: Path | None = None
    notes: list[str] = field(default_factory=list)  # warnings recorded at conversion

    @property
    def declared_layout(self) -> dict[str, str] | None:
        """The layout the manifest declares per tensor name; ``None`` without a manifest."""
        return dict(self.record.layout) if self.record is not None else None

    @property
    def quantization(self) -> str | None:
        """The quantization mode its manifest records (``None``: float32, or unknown)."""
        return self.record.quantization if self.record is not None else None

    @property
    def fixed_batch(self) -> int | None:
        if self.record is None:
            return None
        value = self.record.details.get("fixed_batch")
        return int(value) if isinstance(value, int) and value > 0 else None


def _key(p: Path) -> str:
    return os.path.normcase(os.path.realpath(p))


class _Manifests:
    """Manifests found so far, indexed by the real path of each artifact they list."""

    def __init__(self) -> None:
        self.by_artifact: dict[str, tuple[ArtifactRecord, Path, str]] = {}
        self.read_dirs: set[str] = set()
        self.failed: list[tuple[ArtifactRecord, Path]] = []
        # candidates convert kept aside after they failed its check (for debugging)
        self.aside: set[str] = set()

    def scan(self, directory: Path) -> None:
        if _key(directory) in self.read_dirs:
            return
        self.read_dirs.add(_key(directory))
        for mpath in sorted(directory.glob(f"*{MANIFEST_SUFFIX}")):
            try:
                manifest = read_manifest(mpath)
            except (OSError, ValueError, KeyError, TypeError) as e:
                log.warning("ignoring unreadable manifest %s (%s)", mpath, e)
                continue
            source_stem = Path(str(manifest.source.get("path", ""))).stem
            for rec in manifest.artifacts:
                apath = Path(rec.path)
                if not apath.is_absolute():
                    apath = mpath.parent / apath
                if rec.ok:
                    self.by_artifact[_key(apath)] = (rec, mpath, source_stem)
                elif not apath.exists():
                    self.failed.append((rec, mpath))
                if rec.details.get("unverified"):
                    self.aside.add(_key(mpath.parent / str(rec.details["unverified"])))

    def lookup(self, path: Path) -> tuple[ArtifactRecord, Path, str] | None:
        self.scan(path.parent)
        return self.by_artifact.get(_key(path))


def _artifacts_in(directory: Path) -> list[tuple[Path, str]]:
    found = []
    for child in sorted(directory.iterdir()):
        if child.name.startswith("."):  # partial writes (.NAME.partial-XXXX), hidden files
            continue
        fmt = converters.detect(child)
        if fmt is not None:
            found.append((child, fmt))
    # the registry's order (savedmodel, pb, tflite, onnx), then by name
    return sorted(found, key=lambda f: (converters.names().index(f[1]), f[0].name))


def _listed_in(manifest: Path) -> list[tuple[Path, str]]:
    try:
        records = read_manifest(manifest).artifacts
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserInputError(f"{manifest}: not a readable modelport manifest ({e})") from None
    found = []
    for rec in records:
        path = Path(rec.path) if Path(rec.path).is_absolute() else manifest.parent / rec.path
        if rec.ok and path.exists():
            found.append((path, rec.format))
    if not found and not any(not r.ok for r in records):
        raise UserInputError(f"{manifest}: lists no artifact that exists")
    return found


def discover(paths: Iterable[str | os.PathLike[str]],
             model_stem: str | None = None) -> tuple[list[Target], list[str]]:
    """Artifacts named by ``paths`` (files, SavedModel directories, directories of
    artifacts, or manifests, meaning the artifacts they list) with their manifest
    entries; returns ``(targets, warnings)``.

    Raises:
        UserInputError: a path does not exist, is not a known artifact, or a directory
            holds no artifact.
    """
    manifests = _Manifests()
    targets: list[Target] = []
    warnings: list[str] = []
    seen: set[str] = set()
    unlisted: list[str] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise UserInputError(f"{p}: no such file or directory; give artifacts "
                                 "(.savedmodel/, .pb, .tflite, .onnx) or a directory of them")
        fmt = converters.detect(p)
        if fmt is not None:
            found = [(p, fmt)]
        elif p.is_dir():
            manifests.scan(p)
            found = [(a, f) for a, f in _artifacts_in(p) if _key(a) not in manifests.aside]
            if not found:
                failed = "; ".join(f"{r.format}: {r.error}" for r, m in manifests.failed
                                   if _key(m.parent) == _key(p))
                raise UserInputError(f"{p}: no artifacts in this directory " + (
                    f"(its manifest says why: {failed})" if failed else
                    "(looked for *.savedmodel/, *.pb, *.tflite, *.onnx)"))
        elif p.name.endswith(MANIFEST_SUFFIX):
            found = _listed_in(p)
            manifests.scan(p.parent)
        else:
            raise UserInputError(f"{p}: not an artifact modelport can run; expected a "
                                 f"SavedModel directory or a .pb, .tflite or .onnx file")
        for path, fmt in found:
            if _key(path) in seen:
                continue
            seen.add(_key(path))
            target = Target(path, fmt)
            hit = manifests.lookup(path)
            if hit is None:
                unlisted.append(str(path))
            else:
                target.record, target.manifest, source_stem = hit
                target.notes = list(target.record.warnings)
                if model_stem and source_stem and source_stem != model_stem:
                    warnings.append(f"{path}: its manifest says it was converted from "
                                    f"{source_stem}, not {model_stem}")
            targets.append(target)
    if unlisted:
        warnings.append(f"no manifest lists {', '.join(unlisted)}: assuming "
                        f"{'it takes' if len(unlisted) == 1 else 'they take'} the Keras "
                        "model's input layout")
    for rec, mpath in manifests.failed:
        warnings.append(f"{rec.format}: not validated, its conversion failed "
                        f"({rec.error or 'see ' + str(mpath)})")
    if not targets:
        raise UserInputError("nothing to validate: " + ("; ".join(warnings) or "no artifacts"))
    return targets, warnings


Shape = list[int | None]


def fixed_feed_shapes(model_inputs: Sequence[TensorInfo], model_layout: Mapping[str, str],
                      declared: Iterable[tuple[str, Sequence[TensorInfo], Mapping[str, str]]],
                      user: Mapping[str, Sequence[int | None]] | None = None,
                      ) -> dict[str, Shape]:
    """The shapes to feed where the model leaves dimensions open and the artifacts fix
    them (``convert --input-shape``), in the model's layout, merged with the user's
    ``--shape``; ``None`` marks a dimension left to the defaults.

    Args:
        model_inputs: the Keras model's inputs.
        model_layout: the model's layout per input name.
        declared: per artifact ``(what, inputs, layout)``: its name for messages, its
            input records and the layout it declares per input.
        user: the user's ``--shape`` overrides (with or without the batch dimension).

    Raises:
        UserInputError: two artifacts fix a dimension differently, or the user's
            ``--shape`` contradicts what an artifact fixes.
    """
    out: dict[str, Shape] = {}
    origin: dict[tuple[str, int], tuple[str, int]] = {}
    specs = {t.name: t for t in model_inputs}
    for what, inputs, layout in declared:
        for t in inputs:
            spec = specs.get(t.name)
            if spec is None or not t.shape or len(t.shape) != len(spec.shape or []):
                continue
            mine = implied_layout(model_layout.get(t.name), len(t.shape), spec.dtype)
            theirs = implied_layout(layout.get(t.name), len(t.shape), spec.dtype)
            shape = expected_shape(list(t.shape), theirs, mine)
            row = out.setdefault(t.name, [None] * len(shape))
            for i, (d, m) in enumerate(zip(shape, spec.shape or [])):
                if i == 0 or not isinstance(d, int) or d < 0 or (isinstance(m, int) and m >= 0):
                    continue
                seen = origin.setdefault((t.name, i), (what, d))
                if seen[1] != d:
                    raise UserInputError(
                        f"{seen[0]} and {what} fix dimension {i} of input {t.name!r} "
                        f"differently ({seen[1]} and {d}); validate them separately")
                row[i] = d
    for name, dims in (user or {}).items():
        rank = len(specs[name].shape or []) if name in specs else len(dims)
        given = [None, *dims] if len(dims) == rank - 1 else list(dims)
        row = out.get(name)
        for i, d in enumerate(given):
            if row is not None and i and i < len(row) and row[i] is not None \
                    and d is not None and d != row[i]:
                raise UserInputError(
                    f"--shape {name}={','.join(str(x) for x in dims)} contradicts the "
                    f"artifacts, which fix it as {fmt_shape(row, named=False)}; drop --shape "
                    "or give the fixed dimensions")
        out[name] = [d if d is not None else (row[i] if row and i < len(row) else None)
                     for i, d in enumerate(given)]
    return {k: v for k, v in out.items() if any(d is not None for d in v[1:])}
