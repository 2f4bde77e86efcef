"""The states a tensor can be in while ``relayout`` replays a model, and small helpers."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from modelport.core.errors import UserInputError

__all__ = ["CHANNELS_FIRST", "Moved", "Flat", "refuse", "to_last", "to_first", "moved_axis",
           "flat_order", "is_tensor", "all_layers", "activation_name"]

CHANNELS_FIRST = {"NCW", "NCHW", "NCDHW"}


@dataclasses.dataclass(frozen=True)
class Moved:
    """The original tensor with its axis 1 (channels) moved last."""

    rank: int


@dataclasses.dataclass(frozen=True)
class Flat:
    """A vector flattened from a moved tensor of non-batch ``shape`` (channels last)."""

    shape: tuple[int, ...]


def refuse(layer: Any, why: str) -> UserInputError:
    """The one-line refusal naming ``layer``."""
    return UserInputError(
        f"--layout channels_last: layer {layer.name!r} ({type(layer).__name__}) {why}; it "
        "cannot be moved to channels_last safely, convert without --layout (its "
        "channels_first layers then run between transposes)")


def to_last(rank: int) -> list[int]:
    return [0, *range(2, rank), 1]


def to_first(rank: int) -> list[int]:
    return [0, rank - 1, *range(1, rank - 1)]


def moved_axis(a: int, rank: int) -> int:
    """Where the original axis ``a`` is once channels (axis 1) moved last."""
    a %= rank
    return 0 if a == 0 else rank - 1 if a == 1 else a - 1


def flat_order(shape: tuple[int, ...]) -> np.ndarray:
    """For a vector flattened channels-last from non-batch ``shape`` (channels last):
    position j holds the element the original (channels-first) flatten had at ``order[j]``."""
    channels, spatial = shape[-1], shape[:-1]
    idx = np.arange(math.prod(shape)).reshape((channels, *spatial))
    return np.transpose(idx, [*range(1, len(spatial) + 1), 0]).ravel()


def is_tensor(v: Any) -> bool:
    return type(v).__name__.endswith("KerasTensor")


def all_layers(layer: Any) -> list[Any]:
    """``layer`` and every layer inside it (nested models, wrappers)."""
    found, stack, seen = [], [layer], set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        found.append(item)
        stack.extend(getattr(item, "layers", None) or [])
        for attr in ("layer", "forward_layer", "backward_layer", "cell"):
            inner = getattr(item, attr, None)
            if inner is not None and hasattr(inner, "get_config"):
                stack.append(inner)
    return found


def activation_name(layer: Any) -> str:
    fn = getattr(layer, "activation", None)
    return str(getattr(fn, "__name__", fn or "")).lower()
