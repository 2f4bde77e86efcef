"""Recover Lambda functions from bytecode without running it (translated to Keras ops)."""

from __future__ import annotations

from typing import Any

from modelport.legacy.lambdas import LambdaInfo

__all__ = ["recover_lambdas"]


def recover_lambdas(lambdas: list[LambdaInfo], custom_objects: dict[str, Any]) -> list[LambdaInfo]:
    """Translate what can be translated; returns the Lambdas that could not be recovered."""
    return list(lambdas)
