"""The manifest written beside the artifacts: what was converted, how, by which versions."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from modelport.core.atomic import atomic_path
from modelport.core.errors import EXIT_CONVERSION, EXIT_MISMATCH, EXIT_OK
from modelport.core.records import ArtifactRecord

__all__ = ["Manifest", "tool_versions", "read_manifest", "MANIFEST_SUFFIX"]

MANIFEST_SUFFIX = ".manifest.json"
_PACKAGES = ("modelport", "tensorflow", "keras", "tf-keras", "tf2onnx", "onnx", "onnxruntime",
             "onnxconverter-common", "ai-edge-litert", "numpy", "h5py")


def tool_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


@dataclass
class Manifest:
    source: dict[str, Any]
    options: dict[str, Any]
    versions: dict[str, str]
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    path: str = ""
    # what converting the same model twice reproduces, per format (see converters)
    determinism: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.artifacts)

    @property
    def exit_code(self) -> int:
        """``convert``'s exit code: 0 when every format was written, 3 when one failed to
        convert (it outranks a mismatch), else 1 (some artifact differs, kept aside)."""
        failed = [a for a in self.artifacts if not a.ok]
        if not failed:
            return EXIT_OK
        return EXIT_MISMATCH if all(a.unverified for a in failed) else EXIT_CONVERSION

    def artifact(self, fmt: str) -> ArtifactRecord | None:
        return next((a for a in self.artifacts if a.format == fmt), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "modelport_manifest": 1,
            "determinism": self.determinism,
            "source": self.source,
            "options": self.options,
            "versions": self.versions,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "warnings": list(self.warnings),
        }

    def write(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        self.path = str(path)


def read_manifest(path: str | Path) -> Manifest:
    d = json.loads(Path(path).read_text())
    return Manifest(
        source=d.get("source", {}), options=d.get("options", {}), versions=d.get("versions", {}),
        artifacts=[ArtifactRecord.from_dict(a) for a in d.get("artifacts", [])],
        warnings=list(d.get("warnings", [])), path=str(path),
        determinism=dict(d.get("determinism") or {}),
    )
