"""The records every layer passes around: named tensors, graph nodes, descriptions of
artifacts, manifest entries and conversion options. Plain dataclasses, no frameworks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["TensorInfo", "NodeInfo", "Description", "ArtifactRecord", "ConvertOptions",
           "Calibration"]


@dataclass
class TensorInfo:
    """A named tensor: ``shape`` uses ``None`` (or a string) for unknown dimensions."""

    name: str
    shape: list[int | str | None] | None
    dtype: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "shape": self.shape, "dtype": self.dtype}
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TensorInfo":
        d = dict(d)
        return cls(d.pop("name"), d.pop("shape", None), d.pop("dtype", ""), d)


@dataclass
class NodeInfo:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "inputs": list(self.inputs)}


@dataclass
class Description:
    """What ``inspect`` shows for one artifact."""

    format: str
    path: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    nodes: list[NodeInfo] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "path": self.path,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "nodes": [n.to_dict() for n in self.nodes],
            **self.details,
        }


@dataclass
class ArtifactRecord:
    """One converted artifact, as the manifest records it.

    ``route`` is the conversion route that made it, ``routes`` every route tried in order
    (``{"name", "description", "outcome", "reason"}``) and ``check`` the comparison with
    the Keras model before it took its final name (``{"status": "passed" | "failed" |
    "skipped" | "unchecked", ...figures}``).
    """

    format: str
    path: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    layout: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    size: int = 0
    seconds: float = 0.0
    ok: bool = True
    error: str = ""
    route: str = ""
    routes: list[dict[str, Any]] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)

    @property
    def quantization(self) -> str | None:
        """The quantization mode of a quantized variant (``"int8"``, ``"float16"``...),
        ``None`` for a float32 artifact."""
        q = self.details.get("quantization")
        return q.get("mode") if isinstance(q, Mapping) else None

    @property
    def unverified(self) -> bool:
        """Converted, but it does not match the Keras model (kept aside, not published)."""
        return self.check.get("status") == "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "path": self.path,
            "ok": self.ok,
            "error": self.error,
            "sha256": self.sha256,
            "size": self.size,
            "seconds": round(self.seconds, 3),
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "layout": dict(self.layout),
            "warnings": list(self.warnings),
            "details": dict(self.details),
            "route": self.route,
            "routes": [dict(r) for r in self.routes],
            "check": dict(self.check),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ArtifactRecord":
        return cls(
            format=d["format"], path=d["path"],
            inputs=[TensorInfo.from_dict(t) for t in d.get("inputs") or []],
            outputs=[TensorInfo.from_dict(t) for t in d.get("outputs") or []],
            layout=dict(d.get("layout") or {}),
            warnings=list(d.get("warnings") or []), details=dict(d.get("details") or {}),
            sha256=d.get("sha256", ""), size=d.get("size", 0), seconds=d.get("seconds", 0.0),
            ok=d.get("ok", True), error=d.get("error", ""), route=d.get("route", ""),
            routes=[dict(r) for r in d.get("routes") or []], check=dict(d.get("check") or {}),
        )


@dataclass
class Calibration:
    """Representative inputs for integer quantization: ``arrays`` keyed by input name
    (samples first), where they came from (``origin``: a file, a folder of images, or
    ``"synthetic"``) and how they were prepared (``details``: normalisation, domain)."""

    arrays: dict[str, Any]
    origin: str
    synthetic: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        first = next(iter(self.arrays.values()), None)
        return int(first.shape[0]) if first is not None and len(first.shape) else 0

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "synthetic": self.synthetic, "samples": self.samples,
                **self.details}


@dataclass
class ConvertOptions:
    """Per-run converter options (recorded in the manifest): ``quantize`` lists the
    quantized variants asked for (``"int8"``, ``"float16"``...), ``calibration`` the
    representative inputs the integer modes calibrate on."""

    opset: int = 17
    allow_flex: bool = False
    quantize: tuple[str, ...] = ()
    calibration: Calibration | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"opset": self.opset, "allow_flex": self.allow_flex}
        if self.quantize:
            d["quantize"] = list(self.quantize)
            d["calibration"] = self.calibration.to_dict() if self.calibration else None
        return d
