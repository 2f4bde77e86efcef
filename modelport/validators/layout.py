"""Layout arithmetic for the validator: transposing feeds between layouts, and the
alternatives to try when an artifact fails (NHWC <-> NCHW, NWC <-> NCW, NDHWC <-> NCDHW).

A layout is a string of axis letters (``"NHWC"``); ``"none"`` means the input has no
spatial layout (ids, features) and is never transposed.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = [
    "NONE", "is_layout", "permutation", "to_layout", "flipped", "implied_layout",
    "expected_shape", "shape_conflicts", "is_symmetric", "alternatives",
]

NONE = "none"
_CHANNELS_LAST = {3: "NWC", 4: "NHWC", 5: "NDHWC"}
_FLIP = {"NWC": "NCW", "NCW": "NWC", "NHWC": "NCHW", "NCHW": "NHWC",
         "NDHWC": "NCDHW", "NCDHW": "NDHWC"}


def is_layout(layout: str | None) -> bool:
    return bool(layout) and layout != NONE and layout[0] == "N" and len(set(layout)) == len(layout)


def permutation(src: str, dst: str) -> list[int]:
    """Axes such that ``x.transpose(perm)`` turns an ``src`` array into a ``dst`` array."""
    if sorted(src) != sorted(dst):
        raise ValueError(f"layouts {src} and {dst} do not have the same axes")
    return [src.index(c) for c in dst]


def to_layout(x: np.ndarray, src: str | None, dst: str | None) -> np.ndarray:
    """``x`` (laid out as ``src``) laid out as ``dst``; unchanged if either is not a layout."""
    if not is_layout(src) or not is_layout(dst) or src == dst or x.ndim != len(src):
        return x
    return np.ascontiguousarray(x.transpose(permutation(src, dst)))


def implied_layout(layout: str | None, rank: int, dtype: str) -> str | None:
    """The layout to reason with: the declared one, or channels-last for a float input of
    rank 3-5 that declares none (Keras' default), or ``None`` (never transposed)."""
    if is_layout(layout) and len(layout) == rank:
        return layout
    if rank in _CHANNELS_LAST and str(dtype).startswith(("float", "bfloat")):
        return _CHANNELS_LAST[rank]
    return None


def flipped(layout: str | None) -> str | None:
    """The channels-first/-last counterpart of ``layout``, or ``None``."""
    return _FLIP.get(layout or "")


def expected_shape(model_shape: Sequence, model_layout: str | None,
                   declared: str | None) -> list:
    """The model's input shape re-laid out as the artifact declares it."""
    shape = list(model_shape)
    if not is_layout(model_layout) or not is_layout(declared) or model_layout == declared \
            or len(shape) != len(model_layout) or sorted(model_layout) != sorted(declared):
        return shape
    return [shape[i] for i in permutation(model_layout, declared)]


def _known(d) -> bool:
    return isinstance(d, (int, np.integer)) and d >= 0


def shape_conflicts(have: Sequence | None, want: Sequence | None) -> bool:
    """True when two shapes cannot describe the same tensor (rank or a known dimension
    differs; the batch dimension is ignored)."""
    if have is None or want is None:
        return False
    if len(have) != len(want):
        return True
    return any(_known(a) and _known(b) and int(a) != int(b)
               for a, b in list(zip(have, want))[1:])


def is_symmetric(shape: Sequence[int], layout: str | None) -> bool:
    """True when the flipped layout has the same shape (H == W == C): a transposed feed then
    fits, and only the values can reveal a layout bug."""
    other = flipped(layout)
    if other is None or len(shape) != len(layout or ""):
        return False
    return list(shape[1:]) == list(expected_shape(shape, layout, other))[1:]


def alternatives(layouts: Mapping[str, str | None], limit: int = 3) -> list[dict[str, str]]:
    """Layout assignments to try on a failing artifact: every input flipped alone, and (for
    up to ``limit`` inputs) every combination; each maps input name -> tried layout."""
    names = [n for n, lay in layouts.items() if flipped(lay)]
    if not names:
        return []
    combos: list[list[str]] = [[n] for n in names]
    if 1 < len(names) <= limit:
        for mask in range(1, 2 ** len(names)):
            pick = [n for i, n in enumerate(names) if mask >> i & 1]
            if len(pick) > 1:
                combos.append(pick)
    elif len(names) > limit:
        combos.append(names)
    return [{n: flipped(layouts[n]) for n in pick} for pick in combos]  # type: ignore[misc]
