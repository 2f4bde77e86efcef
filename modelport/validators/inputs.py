"""The arrays generated for the reference and every artifact: seeded samples and a probe.

Generated inputs are drawn from the domain the model declares for each input
(``loading.domain``: a leading ``Rescaling``, ``Normalization``, ``Embedding``...);
otherwise from a documented default: floats standard normal, integers small non-negative
ids (``uint8`` the byte range), booleans random. Inputs that feed an Embedding get ids
inside its vocabulary whatever their declared dtype (``Input(shape=(10,))`` is float32 by
default yet feeds ids). Generated inputs are never all-ones or all-zeros: constant inputs
hide layout and weight bugs.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from modelport.core.records import TensorInfo
from modelport.core.errors import UserInputError
from modelport.core.text import fmt_shape
from modelport.loading.domain import InputDomain
from modelport.validators.user_inputs import np_dtype

__all__ = [
    "DEFAULT_DIM", "DEFAULT_SPATIAL_DIM", "SAFER_DOMAINS", "resolve_shape", "choose_domains",
    "safer_domains", "generate_inputs", "layout_probe", "parse_shape_overrides",
]

DEFAULT_DIM = 8  # unknown non-batch dimensions: sequence lengths, feature sizes
DEFAULT_SPATIAL_DIM = 32  # unknown H/W/D of images: survives ~5 stride-2 downsamplings
DEFAULT_CHANNELS = 3
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0

# tried in turn, for the float inputs, when the Keras model outputs NaN/Inf on the first
# inputs, or outputs that do not vary with them: in range for most models, then small
# magnitudes (activations stay finite), then large ones (past thresholds and dead units)
SAFER_DOMAINS = (
    InputDomain("uniform", 0.0, 1.0, reason="retry: uniform [0, 1), inside most models' "
                "domains"),
    InputDomain("normal", mean=0.0, std=0.01, reason="retry: small magnitudes keep "
                "activations finite"),
    InputDomain("normal", mean=0.0, std=100.0, reason="retry: large magnitudes reach past "
                "thresholds and saturated units"),
)


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
    it, so every input has the same batch; ``None`` leaves a dimension to the defaults).
    Unknown dimensions become ``DEFAULT_SPATIAL_DIM`` for image height/width/depth,
    ``DEFAULT_CHANNELS`` for image channels and ``DEFAULT_DIM`` otherwise.

    Raises:
        UserInputError: an override has the wrong rank or contradicts a known dimension.
    """
    shape = list(spec.shape or [])
    rank = len(shape)
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
    if not overrides or spec.name not in overrides:
        return out
    # ``None`` in an override leaves that dimension to the rules above
    dims = [None if d is None else int(d) for d in overrides[spec.name]]
    if len(dims) == rank:
        dims = dims[1:]
    if len(dims) != rank - 1:
        raise UserInputError(
            f"--shape {spec.name}: {len(dims)} dimensions given, the input has rank {rank} "
            f"(shape {fmt_shape(shape, named=False)}); give all {rank} dimensions, batch first")
    for i, (want, have) in enumerate(zip(shape[1:], dims), start=1):
        if have is None:
            continue
        if isinstance(want, int) and want >= 0 and want != have:
            raise UserInputError(f"--shape {spec.name}: dimension {i} is fixed at {want} "
                                 f"in the model, not {have}")
        out[i] = have
    return out


def _default_domain(spec: TensorInfo, dtype: np.dtype) -> InputDomain:
    if dtype.kind == "b":
        return InputDomain("integers", 0, 2, reason="boolean input")
    if dtype == np.uint8:
        return InputDomain("integers", 0, 256, reason="uint8 input: image bytes")
    if dtype.kind in "iu":
        return InputDomain("integers", 0, 10, reason="integer input and no layer declares "
                           "its range: small non-negative ids")
    if dtype.kind == "f":
        return InputDomain("normal", mean=0.0, std=1.0, reason="default: no layer declares "
                           "this input's range")
    raise UserInputError(f"input {spec.name}: cannot generate values of dtype {dtype}; "
                         "supply arrays with --inputs FILE.npz")


def choose_domains(specs: list[TensorInfo], vocab: Mapping[str, int] | None = None,
                   domains: Mapping[str, InputDomain] | None = None) -> dict[str, InputDomain]:
    """The distribution each generated input is drawn from, and why.

    The model's declared domain (``domains``) first, then an Embedding vocabulary
    (``vocab``), then the dtype's default.

    Raises:
        UserInputError: an input has a dtype values cannot be generated for (e.g. string).
    """
    chosen: dict[str, InputDomain] = {}
    for spec in specs:
        dtype = np_dtype(spec)
        if domains and spec.name in domains:
            chosen[spec.name] = domains[spec.name]
        elif vocab and spec.name in vocab:
            size = max(int(vocab[spec.name]), 2)
            chosen[spec.name] = InputDomain("integers", 0, size, reason=(
                f"feeds an Embedding of {size} ids"))
        else:
            chosen[spec.name] = _default_domain(spec, dtype)
    return chosen


def safer_domains(specs: list[TensorInfo], chosen: Mapping[str, InputDomain],
                  fallback: InputDomain) -> dict[str, InputDomain]:
    """``chosen`` with every float input that is not drawn from ids switched to
    ``fallback`` (ids and integers keep their domain)."""
    out = dict(chosen)
    for spec in specs:
        if np_dtype(spec).kind == "f" and chosen[spec.name].kind in ("normal", "uniform"):
            out[spec.name] = fallback
    return out


def _fit(x, shape: list[int]) -> np.ndarray:
    """``x`` broadcast to ``shape``; per-channel values that do not fit collapse to their
    mean (a domain read through a reshape)."""
    a = np.asarray(x, dtype=np.float64)
    try:
        return np.broadcast_to(a, shape)
    except ValueError:
        return np.full(shape, float(a.mean()))


def _from_unit(u: np.ndarray, domain: InputDomain, shape: list[int],
               dtype: np.dtype) -> np.ndarray:
    """Map ``u`` (uniform in [0, 1)) into ``domain``, as ``dtype``."""
    if domain.kind == "values":
        values = np.asarray(domain.values)
        return values[np.minimum((u * len(values)).astype(np.int64), len(values) - 1)] \
            .astype(dtype)
    if domain.kind == "integers":
        lo, hi = _fit(domain.low, shape), _fit(domain.high, shape)
        return np.minimum(lo + np.floor(u * (hi - lo)), hi - 1).astype(dtype)
    if domain.kind == "uniform":
        lo, hi = _fit(domain.low, shape), _fit(domain.high, shape)
        values = lo + u * (hi - lo)
        return (np.floor(values) if dtype.kind in "iub" else values).astype(dtype)
    raise ValueError(f"not a bounded domain: {domain.kind}")


def _draw(rng: np.random.Generator, domain: InputDomain, shape: list[int],
          dtype: np.dtype) -> np.ndarray:
    if domain.kind == "normal":
        values = _fit(domain.mean, shape) + _fit(domain.std, shape) * rng.standard_normal(shape)
        return (np.round(values) if dtype.kind in "iub" else values).astype(dtype)
    if domain.kind == "integers" and np.ndim(domain.low) == 0 and np.ndim(domain.high) == 0:
        return rng.integers(int(domain.low), int(domain.high), size=shape).astype(dtype)
    return _from_unit(rng.random(shape), domain, shape, dtype)


def generate_inputs(
    specs: list[TensorInfo],
    samples: int = 4,
    seed: int = 0,
    vocab: Mapping[str, int] | None = None,
    shapes: Mapping[str, list[int]] | None = None,
    layout: Mapping[str, str] | None = None,
    domains: Mapping[str, InputDomain] | None = None,
) -> dict[str, np.ndarray]:
    """One seeded array per input spec, keyed by input name, each drawn from the domain
    ``choose_domains`` picks for it.

    Raises:
        UserInputError: an input has a dtype values cannot be generated for (e.g. string).
    """
    rng = np.random.default_rng(seed)
    chosen = choose_domains(specs, vocab, domains)
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = resolve_shape(spec, samples, shapes, (layout or {}).get(spec.name))
        feeds[spec.name] = _draw(rng, chosen[spec.name], shape, np_dtype(spec))
    return feeds


def layout_probe(specs: list[TensorInfo], like: Mapping[str, np.ndarray],
                 vocab: Mapping[str, int] | None = None,
                 domains: Mapping[str, InputDomain] | None = None) -> dict[str, np.ndarray]:
    """One sample per input whose values encode their own position.

    Each element gets ``frac(i * golden_ratio)`` of its flat index ``i``, mapped into the
    input's domain (a normal domain: its mean +- sqrt(3) std, which has its variance):
    every position holds a distinct value and neighbours are far apart, so a transposed or
    reshaped feed cannot give the same answer as the right one.
    """
    chosen = choose_domains(specs, vocab, domains)
    probe: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = [1, *like[spec.name].shape[1:]]
        dtype = like[spec.name].dtype
        idx = np.arange(int(np.prod(shape)), dtype=np.float64)
        frac = np.mod(idx * _GOLDEN, 1.0).reshape(shape)
        domain = chosen[spec.name]
        if domain.kind == "normal":
            values = _fit(domain.mean, shape) + _fit(domain.std, shape) * (
                frac * 2.0 - 1.0) * math.sqrt(3.0)
            values = (np.round(values) if dtype.kind in "iub" else values).astype(dtype)
        else:
            values = _from_unit(frac, domain, shape, dtype)
        probe[spec.name] = values
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
