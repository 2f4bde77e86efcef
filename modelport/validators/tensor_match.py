"""Telling tensors apart: by the name scopes in their names, and by their values.

Names: a tensor name holds the scopes of the op that made it (``model/conv1_1/BiasAdd``;
TFLite joins fused ops' names with ``;``), and a layer's scope may carry TensorFlow's
``_N`` suffix. Values: an artifact may hold a tensor transposed (channels-first) or with
a squeezed axis; choosing among candidates compares a fixed spread of elements, and the
chosen one is then compared in full.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Mapping, Sequence

import numpy as np

from modelport.core.records import TensorInfo

__all__ = ["relative_error", "align", "best_alignment", "scopes", "mentions", "exits",
           "UNIQUIFIED", "PICK"]

def relative_error(a: np.ndarray, ref: np.ndarray) -> float:
    """``||a - ref|| / ||ref||`` over finite elements (0 for two zero tensors); sums of
    squares in float64, in few passes (layers hold millions of values)."""
    a, ref = np.asarray(a), np.asarray(ref)
    d = (a - ref).reshape(-1)
    if not np.isfinite(d).all():
        fa, fb = np.isfinite(a), np.isfinite(ref)
        if not np.array_equal(fa, fb):
            return float("inf")
        d, ref = d[fa.reshape(-1)], ref[fb]
    ref = ref.reshape(-1)
    if d.size <= 1 << 16:  # a spread of elements: float64 copies are cheap
        d, ref = d.astype(np.float64), ref.astype(np.float64)
        dd, nn = float(np.dot(d, d)), float(np.dot(ref, ref))
    else:
        dd = float(np.einsum("i,i->", d, d, dtype=np.float64))
        nn = float(np.einsum("i,i->", ref, ref, dtype=np.float64))
    return math.sqrt(dd / nn) if nn > 0 else (0.0 if dd == 0 else float("inf"))


def align(got: np.ndarray, ref: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """``got`` brought to ``ref``'s shape every way that fits: as is (or squeezed), or
    moved from channels-first to channels-last and back (ONNX convolutions run NCHW)."""
    got = np.asarray(got)
    if got.size != ref.size or got.ndim == 0 or ref.ndim == 0:
        return []
    found = []
    if got.shape == ref.shape:
        found.append((got, ""))
    elif np.squeeze(got).shape == np.squeeze(ref).shape:
        found.append((got.reshape(ref.shape), ""))
    if got.ndim == ref.ndim >= 3 and got.shape[0] == ref.shape[0]:
        first = np.moveaxis(got, 1, -1)
        if first.shape == ref.shape:
            found.append((first, "channels_first"))
        last = np.moveaxis(got, -1, 1)
        if last.shape == ref.shape and not np.array_equal(last.shape, got.shape):
            found.append((last, "channels_last"))
    return found


PICK = 4096  # elements compared when choosing among candidate tensors


@functools.lru_cache(maxsize=512)
def picks(shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """A fixed spread of at most ``PICK`` element positions of an array of ``shape``."""
    n = int(np.prod(shape))
    flat = np.linspace(0, n - 1, min(n, PICK)).astype(np.int64)
    return np.unravel_index(flat, shape)


def best_alignment(got: np.ndarray, ref: np.ndarray) -> tuple[float, np.ndarray | None, str]:
    """The alignment of ``got`` closest to ``ref`` and its relative error, judged on a
    spread of elements (choosing is cheap; the chosen tensor is compared in full)."""
    best: tuple[float, np.ndarray | None, str] = (float("inf"), None, "")
    forms = align(got, ref)
    if not forms:
        return best
    at = picks(tuple(ref.shape)) if ref.size > PICK else None
    sample = ref[at] if at is not None else ref
    for arr, layout in forms:
        err = relative_error(arr[at] if at is not None else arr, sample)
        if err < best[0]:
            best = (err, arr, layout)
    return best


UNIQUIFIED = re.compile(r"_\d+$")


def scopes(name: str) -> list[list[str]]:
    """The name scopes in a tensor name: one list per ``;``-joined op name, without the
    op's own name and the ``:N`` port (``a/conv1_1/BiasAdd:0`` -> ``[["a", "conv1_1"]]``)."""
    return [part.split(":")[0].split("/")[:-1] for part in name.split(";") if part]


def mentions(names: list[list[str]], scope: Sequence[str]) -> int:
    """2 when some op scope holds ``scope``'s names in a row exactly, 1 when only with
    the ``_N`` suffixes TensorFlow adds to reused scopes, 0 when not at all."""
    n, best = len(scope), 0
    for comps in names:
        for i in range(len(comps) - n + 1):
            window = comps[i:i + n]
            if list(window) == list(scope):
                return 2
            if all(c == s or UNIQUIFIED.sub("", c) == s for c, s in zip(window, scope)):
                best = 1
    return best


def exits(tensors: Sequence[TensorInfo], mentioned: Mapping[str, Mapping[str, int]]) -> set[str]:
    """Tensors read outside the scope of a layer their name mentions (or by nothing the
    runner lists): where a layer's output leaves it."""
    readers: dict[str, list[str]] = {}
    for t in tensors:
        for i in t.extra.get("inputs", []):
            readers.setdefault(i, []).append(t.name)
    found = set()
    for name, keys in mentioned.items():
        after = readers.get(name, [])
        if not after or any(k not in mentioned.get(r, {}) for k in keys for r in after):
            found.add(name)
    return found
