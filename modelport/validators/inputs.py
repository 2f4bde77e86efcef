"""Seeded, dtype-aware inputs generated from a model's input specs.

Never all-ones or all-zeros: constant inputs hide layout and weight bugs.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from modelport.converters.base import TensorInfo

__all__ = ["generate_inputs", "resolve_shape"]

DEFAULT_DIM = 8  # for unknown non-batch dimensions (sequence lengths, free image sizes)


def resolve_shape(spec: TensorInfo, samples: int,
                  overrides: Mapping[str, list[int]] | None = None) -> list[int]:
    """Concrete shape for ``spec``: batch -> ``samples``, unknown dims -> ``DEFAULT_DIM``,
    unless ``overrides[spec.name]`` gives the full shape."""
    if overrides and spec.name in overrides:
        return [int(d) for d in overrides[spec.name]]
    shape = list(spec.shape or [])
    out = []
    for i, d in enumerate(shape):
        if i == 0:
            out.append(samples)
        elif d is None or isinstance(d, str) or int(d) < 0:
            out.append(DEFAULT_DIM)
        else:
            out.append(int(d))
    return out


def generate_inputs(
    specs: list[TensorInfo],
    samples: int = 4,
    seed: int = 0,
    vocab: Mapping[str, int] | None = None,
    shapes: Mapping[str, list[int]] | None = None,
) -> dict[str, np.ndarray]:
    """One array per input spec, keyed by input name.

    Floats are standard normal; integer inputs that feed an Embedding get ids in
    ``[0, vocab)``; other integers small non-negative values; booleans random.
    """
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = resolve_shape(spec, samples, shapes)
        dtype = np.dtype(spec.dtype or "float32")
        if dtype.kind == "f":
            arr = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            high = int((vocab or {}).get(spec.name, 10))
            arr = rng.integers(0, max(high, 2), size=shape).astype(dtype)
        elif dtype.kind == "b":
            arr = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise ValueError(f"input {spec.name}: cannot generate values of dtype {dtype}")
        feeds[spec.name] = arr
    return feeds
