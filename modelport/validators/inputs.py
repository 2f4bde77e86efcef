"""The arrays fed to the reference and to every artifact: seeded, user-supplied, or a probe.

Generated inputs are never all-ones or all-zeros: constant inputs hide layout and weight
bugs. Inputs that feed an Embedding get ids inside its vocabulary whatever their declared
dtype (``Input(shape=(10,))`` is float32 by default yet feeds ids).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Mapping

import numpy as np

from modelport.core.records import TensorInfo
from modelport.core.errors import UserInputError
from modelport.core.text import fmt_shape

__all__ = [
    "DEFAULT_DIM", "DEFAULT_SPATIAL_DIM", "resolve_shape", "generate_inputs", "layout_probe",
    "parse_shape_overrides", "load_inputs", "conform_inputs", "save_inputs", "batch_size",
]

log = logging.getLogger(__name__)

DEFAULT_DIM = 8  # unknown non-batch dimensions: sequence lengths, feature sizes
DEFAULT_SPATIAL_DIM = 32  # unknown H/W/D of images: survives ~5 stride-2 downsamplings
DEFAULT_CHANNELS = 3
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def _spatial_axes(layout: str | None, rank: int) -> tuple[set[int], int | None]:
    """Spatial axes and the channel axis of an input of ``rank`` in ``layout``."""
    if not layout or layout == "none" or len(layout) != rank:
        return set(), None
    return {i for i, c in enumerate(layout) if c in "DHW"}, layout.index("C")


def resolve_shape(spec: TensorInfo, samples: int,
                  overrides: Mapping[str, list[int]] | None = None,
                  layout: str | None = None) -> list[int]:
    """Concrete shape for ``spec``.

    The batch dimension becomes ``samples``. ``overrides[spec.name]`` gives the other
    dimensions (with or without the batch dimension, which is ignored: ``samples`` decides
    it, so every input has the same batch). Unknown dimensions become
    ``DEFAULT_SPATIAL_DIM`` for image height/width/depth, ``DEFAULT_CHANNELS`` for image
    channels and ``DEFAULT_DIM`` otherwise.

    Raises:
        UserInputError: an override has the wrong rank or contradicts a known dimension.
    """
    shape = list(spec.shape or [])
    rank = len(shape)
    if overrides and spec.name in overrides:
        dims = [int(d) for d in overrides[spec.name]]
        if len(dims) == rank:
            dims = dims[1:]
        if len(dims) != rank - 1:
            raise UserInputError(
                f"--shape {spec.name}: {len(dims)} dimensions given, the input has rank {rank} "
                f"(shape {fmt_shape(shape, named=False)}); give all {rank} dimensions, batch first")
        for i, (want, have) in enumerate(zip(shape[1:], dims), start=1):
            if isinstance(want, int) and want >= 0 and want != have:
                raise UserInputError(f"--shape {spec.name}: dimension {i} is fixed at {want} "
                                     f"in the model, not {have}")
        return [samples, *dims]
    spatial, channel = _spatial_axes(layout, rank)
    out = []
    for i, d in enumerate(shape):
        if i == 0:
            out.append(samples)
        elif isinstance(d, int) and d >= 0:
            out.append(d)
        elif i in spatial:
            out.append(DEFAULT_SPATIAL_DIM)
        elif i == channel:
            out.append(DEFAULT_CHANNELS)
        else:
            out.append(DEFAULT_DIM)
    return out


def _int_range(dtype: np.dtype, name: str, vocab: Mapping[str, int] | None) -> tuple[int, int]:
    if vocab and name in vocab:
        return 0, max(int(vocab[name]), 2)
    if dtype == np.uint8:
        return 0, 256  # image bytes
    return 0, 10


def generate_inputs(
    specs: list[TensorInfo],
    samples: int = 4,
    seed: int = 0,
    vocab: Mapping[str, int] | None = None,
    shapes: Mapping[str, list[int]] | None = None,
    layout: Mapping[str, str] | None = None,
) -> dict[str, np.ndarray]:
    """One seeded array per input spec, keyed by input name.

    Floats are standard normal; inputs that feed an Embedding get ids in ``[0, vocab)``
    (in the input's dtype); other integers small non-negative values (``uint8`` the full
    byte range); booleans random.

    Raises:
        UserInputError: an input has a dtype values cannot be generated for (e.g. string).
    """
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = resolve_shape(spec, samples, shapes, (layout or {}).get(spec.name))
        dtype = _np_dtype(spec)
        if (vocab and spec.name in vocab) or dtype.kind in "iu":
            low, high = _int_range(dtype, spec.name, vocab)
            arr = rng.integers(low, high, size=shape).astype(dtype)
        elif dtype.kind == "f":
            arr = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            arr = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise UserInputError(f"input {spec.name}: cannot generate values of dtype {dtype}; "
                                 "supply arrays with --inputs FILE.npz")
        feeds[spec.name] = arr
    return feeds


def layout_probe(specs: list[TensorInfo], like: Mapping[str, np.ndarray],
                 vocab: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """One sample per input whose values encode their own position.

    Each element gets ``frac(i * golden_ratio)`` of its flat index ``i`` (scaled to about
    unit variance): every position holds a distinct value and neighbours are far apart, so
    a transposed or reshaped feed cannot give the same answer as the right one.
    """
    probe: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = (1, *like[spec.name].shape[1:])
        dtype = like[spec.name].dtype
        idx = np.arange(int(np.prod(shape)), dtype=np.float64)
        frac = np.mod(idx * _GOLDEN, 1.0)
        if (vocab and spec.name in vocab) or dtype.kind in "iu":
            low, high = _int_range(dtype, spec.name, vocab)
            values = low + np.floor(frac * (high - low))
        elif dtype.kind == "b":
            values = frac > 0.5
        else:
            values = (frac * 2.0 - 1.0) * math.sqrt(3.0)
        probe[spec.name] = values.reshape(shape).astype(dtype)
    return probe


def parse_shape_overrides(items: list[str] | None) -> dict[str, list[int]]:
    """``["image=1,224,224,3"]`` -> ``{"image": [1, 224, 224, 3]}``.

    Raises:
        UserInputError: an item is not ``NAME=D1,D2,...`` with positive integers.
    """
    out: dict[str, list[int]] = {}
    for item in items or []:
        name, sep, dims = item.partition("=")
        try:
            values = [int(d) for d in dims.replace("x", ",").split(",") if d.strip()]
        except ValueError:
            values = []
        if not sep or not name.strip() or not values or min(values) <= 0:
            raise UserInputError(f"--shape {item!r}: expected NAME=D1,D2,... with positive "
                                 "integers, e.g. image=1,224,224,3")
        out[name.strip()] = values
    return out


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


def _np_dtype(spec: TensorInfo) -> np.dtype:
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
    dtype = _np_dtype(spec)
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
