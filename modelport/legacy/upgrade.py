"""Rewrite configs written by old Keras versions into what current loaders accept."""

from __future__ import annotations

from typing import Any

from modelport.modelfile import RawModel

__all__ = ["upgrade_config"]


def upgrade_config(raw: RawModel, config: dict[str, Any]) -> list[str]:
    """Apply every upgrade rule that matches, in place; returns one note per rule applied."""
    return []
