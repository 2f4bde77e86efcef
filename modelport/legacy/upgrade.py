"""Rewrite configs and weights written by older Keras versions into what current loaders accept."""

from __future__ import annotations

from typing import Any

from modelport.modelfile import RawModel

__all__ = ["upgrade_config", "needs_weight_upgrade", "upgrade_weights"]


def upgrade_config(raw: RawModel, config: dict[str, Any]) -> list[str]:
    """Apply every upgrade rule that matches, in place; returns one note per rule applied."""
    return []


def needs_weight_upgrade(raw: RawModel, config: dict[str, Any]) -> bool:
    """True when the stored weights must be rewritten (e.g. Theano-ordered kernels)."""
    return False


def upgrade_weights(raw: RawModel, config: dict[str, Any], h5file: Any) -> list[str]:
    """Rewrite weights in ``h5file`` (a writable copy of the model file) in place."""
    return []
