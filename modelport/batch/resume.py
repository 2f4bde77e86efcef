"""Resuming a batch: a model whose output directory already holds a finished conversion of
the same file, with the same options and tool versions, is skipped.

A batch worker stamps the manifest ``convert`` wrote with the options' fingerprint and the
model's exit code (key ``batch``) once the model is completely done, and removes any older
manifest before it starts on a model: a manifest with a stamp therefore always describes
the artifacts beside it, however the previous run ended.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Mapping

from modelport.core.atomic import atomic_path, remove, sha256_of
from modelport.core.manifest import MANIFEST_SUFFIX, Manifest, read_manifest, tool_versions

__all__ = ["fingerprint", "stamp", "unstamp", "finished", "STAMP"]

STAMP = "batch"  # the manifest key a batch adds


def _canonical(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _canonical(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and os.path.isfile(value):
        # a custom-objects file, an architecture or inputs file: edited means different
        return {"file": value, "sha256": sha256_of(Path(value))}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)  # an object passed through the API: compared by identity only


def fingerprint(options: Mapping[str, Any]) -> str:
    """A digest of the options every model of a batch is converted with: equal options
    give equal digests; a file an option names counts by its content."""
    text = json.dumps(_canonical(options), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stamp(manifest_path: str | Path, options: str, exit_code: int,
          validated: bool | None) -> None:
    """Record in the manifest that a batch finished this model (atomically)."""
    path = Path(manifest_path)
    d = json.loads(path.read_text())
    d[STAMP] = {"options": options, "exit_code": exit_code, "validated": validated}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(d, indent=2, default=str) + "\n")


def unstamp(out_dir: Path) -> None:
    """Before a model is (re)converted: no manifest there may claim a finished model."""
    if out_dir.is_dir():
        for path in out_dir.glob(f"*{MANIFEST_SUFFIX}"):
            remove(path)


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    return tool_versions()  # read once: a batch may ask for thousands of models


def finished(out_dir: Path, sha256: str, options: str) -> Manifest | None:
    """The manifest of a finished, successful conversion of the file with ``sha256`` with
    these options and today's tool versions, every artifact present; else None."""
    if not out_dir.is_dir():
        return None
    for path in sorted(out_dir.glob(f"*{MANIFEST_SUFFIX}")):
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        mark = d.get(STAMP) or {}
        if mark.get("options") != options or mark.get("exit_code") != 0 or \
                (d.get("source") or {}).get("sha256") != sha256:
            continue
        if d.get("versions") != _versions():
            continue
        manifest = read_manifest(path)
        if manifest.artifacts and manifest.ok and \
                all((out_dir / a.path).exists() for a in manifest.artifacts):
            return manifest
    return None
