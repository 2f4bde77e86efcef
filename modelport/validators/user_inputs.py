"""Arrays the user supplies (``--inputs FILE.npz|FILE.npy``) checked against the model's
inputs, and the inputs of a run saved for a replay (``--save-inputs``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np

from modelport.core.errors import UserInputError
from modelport.core.records import TensorInfo
from modelport.core.text import fmt_shape

__all__ = ["load_inputs", "conform_inputs", "save_inputs", "batch_size", "np_dtype"]

log = logging.getLogger(__name__)


def batch_size(feeds: Mapping[str, np.ndarray]) -> int:
    """The shared batch size of ``feeds``.

    Raises:
        UserInputError: the inputs disagree on the batch size.
    """
    sizes = {k: (v.shape[0] if v.ndim else 1) for k, v in feeds.items()}
    if len(set(sizes.values())) > 1:
        raise UserInputError(f"inputs have different batch sizes {sizes}; give every input "
                             "the same number of samples")
    return next(iter(sizes.values()), 0)


def load_inputs(path: str | Path, specs: list[TensorInfo]) -> dict[str, np.ndarray]:
    """User arrays: ``.npz`` keyed by input name, or ``.npy`` for a model with one input.

    Raises:
        UserInputError: the file is unreadable, names or shapes do not match the model.
    """
    p = Path(path)
    names = [s.name for s in specs]
    try:
        loaded = np.load(p, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            raw: Mapping[str, np.ndarray] | np.ndarray = loaded
        else:
            with loaded:
                raw = {k: loaded[k] for k in loaded.files}
    except (OSError, ValueError, EOFError) as e:
        raise UserInputError(f"--inputs {p}: cannot read it ({e}); give a .npz keyed by input "
                             f"name ({', '.join(names)}) or a .npy for a single input") from None
    return conform_inputs(raw, specs, f"--inputs {p}")


def conform_inputs(raw: Mapping[str, np.ndarray] | np.ndarray, specs: list[TensorInfo],
                   origin: str = "inputs") -> dict[str, np.ndarray]:
    """Check user arrays against the model's inputs and key them by input name.

    A bare array is accepted for a single-input model; a ``:0`` suffix on a key is ignored;
    arrays without the batch dimension get one; dtypes are converted to the model's when
    no value changes (float64 -> float32 is always accepted).

    Raises:
        UserInputError: names, shapes, dtypes or batch sizes do not fit the model.
    """
    names = [s.name for s in specs]
    if not isinstance(raw, Mapping):
        if len(specs) != 1:
            raise UserInputError(f"{origin}: one array given but the model has {len(specs)} "
                                 f"inputs ({', '.join(names)}); key the arrays by input name")
        raw = {names[0]: raw}
    arrays = {str(k).split(":")[0]: np.asarray(v) for k, v in raw.items()}
    missing = [n for n in names if n not in arrays]
    if missing and len(arrays) == 1 and len(specs) == 1:
        arrays = {names[0]: next(iter(arrays.values()))}
        missing = []
    if missing:
        raise UserInputError(f"{origin}: no array for input(s) {missing}; given "
                             f"{sorted(arrays)}, the model needs {names}")
    extra = sorted(set(arrays) - set(names))
    if extra:
        log.warning("%s: ignoring arrays %s that are not model inputs", origin, extra)
    feeds = {s.name: _conform(origin, s, arrays[s.name]) for s in specs}
    batch_size(feeds)
    return feeds


def np_dtype(spec: TensorInfo) -> np.dtype:
    try:
        return np.dtype(spec.dtype or "float32")
    except TypeError:
        raise UserInputError(f"input {spec.name}: unsupported dtype {spec.dtype}") from None


def _conform(origin: str, spec: TensorInfo, arr: np.ndarray) -> np.ndarray:
    shape = list(spec.shape or [])
    if shape and arr.ndim == len(shape) - 1:
        arr = arr[None]
    if shape and arr.ndim != len(shape):
        raise UserInputError(f"{origin}: {spec.name} has shape {list(arr.shape)}, the "
                             f"model expects {fmt_shape(shape, named=False)}")
    for i, (want, have) in enumerate(zip(shape, arr.shape)):
        if i and isinstance(want, int) and want >= 0 and want != have:
            raise UserInputError(f"{origin}: {spec.name} has shape {list(arr.shape)}, "
                                 f"the model expects {fmt_shape(shape, named=False)}")
    dtype = np_dtype(spec)
    if arr.dtype.kind not in "biuf":
        raise UserInputError(f"{origin}: {spec.name} is {arr.dtype}; give numeric arrays")
    if arr.dtype != dtype:
        with np.errstate(all="ignore"):
            converted = arr.astype(dtype)
            # float64 -> float32 rounding is what the model would do anyway; anything else
            # must survive the round trip (ids stored as floats, int64 ids for int32 inputs)
            exact = (arr.dtype.kind == "f" and dtype.kind == "f") or bool(
                np.all(converted.astype(arr.dtype) == arr))
        if not exact:
            raise UserInputError(f"{origin}: {spec.name} is {arr.dtype}, the model "
                                 f"expects {dtype} and the values do not convert exactly")
        arr = converted
    return arr


def save_inputs(path: str | Path, feeds: Mapping[str, np.ndarray]) -> Path:
    """Write ``feeds`` as a ``.npz`` keyed by input name (replay with ``--inputs``)."""
    p = Path(path)
    if p.suffix != ".npz":
        p = p.with_name(p.name + ".npz")  # np.savez would append it silently otherwise
    p.parent.mkdir(parents=True, exist_ok=True)
    np.savez(p, **{k: np.asarray(v) for k, v in feeds.items()})
    return p
