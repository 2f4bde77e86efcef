"""``RawModel``: what a model file says about itself, before any layer is built.

The record the sniffing, the child-process HDF5 probe and the safety checks share; it
imports nothing else of modelport's, so none of them depends on another through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RawModel"]


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
