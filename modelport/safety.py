"""Refuse unsafe model content before any framework parses it (filled in by issue 5)."""

from __future__ import annotations

from typing import Any

from modelport.modelfile import RawModel

__all__ = ["check_config"]


def check_config(raw: RawModel, config: dict[str, Any], custom: dict[str, Any]) -> None:
    """Raise ``UnsafeModelError`` for content that would run code or read host files."""
    return None
