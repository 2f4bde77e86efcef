"""What every format module shares: tensor records, the runner base class, descriptions.

A format module (``savedmodel.py``, ``frozen_pb.py``, ``tflite.py``, ``onnx.py``) exposes:

- ``NAME`` and ``SUFFIX``;
- ``convert(source, serving, dest, options) -> ArtifactRecord``: write the artifact at ``dest``;
- ``load(path) -> Runner``: open the artifact in the runtime a user would deploy it with;
- ``describe(path, nodes=True) -> Description``: names a user must type to feed and fetch.

Heavy frameworks are imported inside those functions, never at module import time, so
``modelport inspect x.onnx`` does not import TensorFlow.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from modelport.errors import UserInputError

__all__ = ["TensorInfo", "NodeInfo", "Description", "ArtifactRecord", "Runner"]


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
    """One converted artifact, as the manifest records it."""

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
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ArtifactRecord":
        def tensors(items):
            out = []
            for t in items or []:
                t = dict(t)
                out.append(TensorInfo(t.pop("name"), t.pop("shape", None), t.pop("dtype", ""), t))
            return out

        return cls(
            format=d["format"], path=d["path"], inputs=tensors(d.get("inputs")),
            outputs=tensors(d.get("outputs")), layout=dict(d.get("layout") or {}),
            warnings=list(d.get("warnings") or []), details=dict(d.get("details") or {}),
            sha256=d.get("sha256", ""), size=d.get("size", 0), seconds=d.get("seconds", 0.0),
            ok=d.get("ok", True), error=d.get("error", ""),
        )


class Runner(abc.ABC):
    """An artifact opened in its runtime. Feeds and results are bound by tensor name."""

    format: str = ""

    def __init__(self, path: str) -> None:
        self.path = path

    @property
    @abc.abstractmethod
    def inputs(self) -> list[TensorInfo]:
        """The artifact's feedable inputs, by the names a user passes."""

    @property
    @abc.abstractmethod
    def outputs(self) -> list[TensorInfo]:
        """The artifact's outputs, by the names a user fetches."""

    @property
    def fixed_batch(self) -> int | None:
        """The batch size baked into the artifact, if any (a TFLite RNN export has 1)."""
        return None

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; checks that every input is fed and nothing else is."""
        expected = [t.name for t in self.inputs]
        missing = [n for n in expected if n not in feeds]
        unknown = [n for n in feeds if n not in expected]
        if missing or unknown:
            raise UserInputError(
                f"{self.format} artifact {self.path}: feeds do not match its inputs "
                f"(missing {missing}, unknown {unknown}); available inputs: {expected}"
            )
        return self.run_impl({n: np.asarray(feeds[n]) for n in expected})

    @abc.abstractmethod
    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Format-specific execution; returns ``{output_name: array}``."""


@dataclass
class ConvertOptions:
    """Per-run converter options (recorded in the manifest)."""

    opset: int = 17
    allow_flex: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"opset": self.opset, "allow_flex": self.allow_flex}


def source_tensors(source: Any, batch: int | None = None) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """The source's I/O records, with the batch dimension set to ``batch``."""

    def fix(items: list[TensorInfo]) -> list[TensorInfo]:
        out = []
        for t in items:
            shape = list(t.shape or [])
            if shape:
                shape[0] = batch
            out.append(TensorInfo(t.name, shape, t.dtype))
        return out

    return fix(source.inputs), fix(source.outputs)


def np_dtype(name: Any) -> str:
    """A numpy dtype name for any framework's dtype object or string."""
    try:
        return str(np.dtype(getattr(name, "as_numpy_dtype", name)))
    except TypeError:
        return str(name)
