"""The values each model input expects, as the model itself declares them.

A model often says what its inputs are: a leading ``Rescaling(1/255)`` takes pixel values
in [0, 255], a ``Normalization`` layer carries the mean and variance of its training data,
an ``Embedding`` or ``CategoryEncoding`` takes ids below its size. Inputs drawn from that
domain exercise the model the way its users do; inputs far outside it (standard-normal
"pixels" of ±3 fed through calibrated BatchNorms) can push activations to magnitudes where
float32 rounding decides the outputs, and then no port can match the model.

The walk starts at each input and follows the layers that consume it, through layers that
only move values around (reshapes, dropout, inference-time augmentation, nested models), to
the first layer that declares a domain. Both Keras 3 and tf_keras model objects are read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from modelport.loading.tensors import history_name, unique_names

__all__ = ["InputDomain", "input_domains", "producer_of", "node_inputs", "consumers"]

log = logging.getLogger(__name__)

# layers whose output holds their input's values (moved, cropped, padded or passed
# unchanged at inference): the domain is declared further on
PASS_THROUGH = frozenset({
    "InputLayer", "Reshape", "Flatten", "Permute", "RepeatVector", "Masking", "Identity",
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
    "GaussianNoise", "GaussianDropout", "ActivityRegularization",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D",
    "Cropping3D", "CenterCrop", "Resizing", "UpSampling1D", "UpSampling2D", "UpSampling3D",
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomCrop",
    "RandomContrast", "RandomBrightness", "RandomHeight", "RandomWidth",
})
_THROUGH = object()  # a walk that reached the model's outputs through pass-through layers
_MAX_DEPTH = 8


@dataclass(eq=False)
class InputDomain:
    """Where one input's values live.

    ``kind`` is ``"uniform"`` (``low``/``high``), ``"normal"`` (``mean``/``std``),
    ``"integers"`` (``low`` inclusive, ``high`` exclusive) or ``"values"`` (drawn from
    ``values``). Bounds and moments are scalars or arrays that broadcast against the
    input's shape (per-channel statistics).
    """

    kind: str
    low: Any = None
    high: Any = None
    mean: Any = None
    std: Any = None
    values: tuple = ()
    reason: str = ""

    def describe(self) -> str:
        """``"uniform [0, 255]"``, ``"normal (mean 0.5, std 0.2)"``, ``"integers [0, 30)"``."""
        if self.kind == "uniform":
            return f"uniform [{_num(self.low)}, {_num(self.high)}]"
        if self.kind == "normal":
            return f"normal (mean {_num(self.mean)}, std {_num(self.std)})"
        if self.kind == "integers":
            return f"integers [{_num(self.low)}, {_num(self.high)})"
        return f"values from a vocabulary of {len(self.values)}"


def _num(x: Any) -> str:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        return "?"
    if np.allclose(a, a[0]):
        return f"{a[0]:.4g}"
    shown = ", ".join(f"{v:.4g}" for v in a[:4])
    return f"[{shown}{', ...' if a.size > 4 else ''}]"


def producer_of(t: Any) -> Any:
    """The layer (Keras 3 operation) that produced a symbolic tensor, or ``None``."""
    hist = getattr(t, "_keras_history", None)
    return hist[0] if isinstance(hist, tuple) and hist else None


def node_inputs(node: Any) -> list[Any]:
    """A call node's input tensors, flattened (tf_keras ``keras_inputs``, Keras 3
    ``input_tensors``); never truth-test a tensor: tf_keras KerasTensors refuse bool()."""
    tensors = getattr(node, "keras_inputs", None)
    if tensors is None:
        tensors = getattr(node, "input_tensors", None)
    if tensors is None:
        return []
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


def consumers(model: Any, producer: Any) -> Iterator[tuple[Any, int]]:
    """``(layer, position)`` for every call in ``model`` that reads ``producer``'s output."""
    for layer in getattr(model, "layers", []) or []:
        for node in getattr(layer, "_inbound_nodes", []) or []:
            for i, t in enumerate(node_inputs(node)):
                if producer_of(t) is producer:
                    yield layer, i


def _model_inputs(layer: Any) -> list[Any] | None:
    """A nested model's input tensors; ``None`` for a plain layer."""
    if not isinstance(getattr(layer, "layers", None), list):
        return None
    try:
        return list(layer.inputs or [])
    except Exception:  # an unbuilt model has no inputs
        return None


def _array(x: Any) -> np.ndarray | None:
    if x is None:
        return None
    try:
        return np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _rescaling(layer: Any) -> InputDomain | None:
    scale, offset = _array(getattr(layer, "scale", None)), _array(getattr(layer, "offset", 0.0))
    if scale is None or offset is None or not np.all(np.isfinite(scale)) or np.any(scale == 0):
        return None
    mag = np.abs(scale)
    if np.all(mag >= 1):
        # a magnifying Rescaling (e.g. 255: [0, 1] -> bytes) takes unit-range values
        high: Any = np.ones_like(mag)
    else:
        # [0, R] lands on [offset, offset + scale*R]: R spans one unit from 0 (offset 0) or
        # is centred on 0 (offset -1: [-1, 1]; ImageNet mean/std written as a Rescaling)
        high = np.maximum(1.0, 2.0 * np.maximum(0.0, -offset)) / mag
    high = _squeeze(high)
    what = "pixel values" if np.allclose(high, 255.0, rtol=0.02) else "values"
    return InputDomain("uniform", 0.0, high, reason=(
        f"Rescaling {layer.name!r} (scale {_num(scale)}, offset {_num(offset)}) takes "
        f"{what} in [0, {_num(high)}]"))


def _squeeze(a: np.ndarray) -> Any:
    return float(a.ravel()[0]) if a.size == 1 or np.allclose(a, a.ravel()[0]) else a


def _normalization(layer: Any) -> InputDomain | None:
    if getattr(layer, "invert", False):
        return None  # it denormalises: its input is already normalised
    mean, var = _array(getattr(layer, "mean", None)), _array(getattr(layer, "variance", None))
    if mean is None or var is None or not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var))):
        return None
    std = np.sqrt(np.maximum(var, 0.0))
    return InputDomain("normal", mean=_squeeze(mean), std=_squeeze(std), reason=(
        f"Normalization {layer.name!r}: values with its mean and variance, which it "
        "normalises to ~N(0, 1)"))


def _ids(layer: Any, attr: str, what: str) -> InputDomain | None:
    size = getattr(layer, attr, None)
    if not isinstance(size, (int, np.integer)) or size < 1:
        return None
    return InputDomain("integers", 0, max(int(size), 2),
                       reason=f"{type(layer).__name__} {layer.name!r} takes {what} below {size}")


def _discretization(layer: Any) -> InputDomain | None:
    bounds = _array(getattr(layer, "bin_boundaries", None))
    if bounds is None or bounds.size == 0 or not np.all(np.isfinite(bounds)):
        return None
    lo, hi = float(bounds.min()), float(bounds.max())
    margin = (hi - lo) / max(bounds.size, 1) if hi > lo else max(1.0, abs(lo))
    return InputDomain("uniform", lo - margin, hi + margin, reason=(
        f"Discretization {layer.name!r}: values across its bins [{lo:.4g}, {hi:.4g}]"))


def _lookup(layer: Any) -> InputDomain | None:
    try:
        vocab = list(layer.get_vocabulary())
    except Exception:  # not adapted, or a file-backed vocabulary it cannot read
        return None
    skip = {getattr(layer, "oov_token", None), getattr(layer, "mask_token", None)}
    values = tuple(int(v) for v in vocab if isinstance(v, (int, np.integer)) and v not in skip)
    if len(values) < 2:
        return None
    return InputDomain("values", values=values, reason=(
        f"IntegerLookup {layer.name!r}: values from its vocabulary of {len(values)}"))


_DECLARING = {
    "Rescaling": _rescaling,
    "Normalization": _normalization,
    "Embedding": lambda l: _ids(l, "input_dim", "ids"),
    "CategoryEncoding": lambda l: _ids(l, "num_tokens", "token ids"),
    "Discretization": _discretization,
    "IntegerLookup": _lookup,
}


def _declared(layer: Any) -> InputDomain | None:
    reader = _DECLARING.get(type(layer).__name__)
    if reader is None:
        return None
    try:
        return reader(layer)
    except Exception:  # a layer version without these attributes: no declared domain
        log.debug("reading %s's domain failed", getattr(layer, "name", "?"), exc_info=True)
        return None


def _follow(model: Any, producer: Any, depth: int, seen: set[int]) -> Any:
    """The first domain declared downstream of ``producer`` in ``model``; ``_THROUGH``
    when only pass-through layers lead to the model's outputs; ``None`` otherwise."""
    found = list(consumers(model, producer))
    if not found:
        return _THROUGH
    through = False
    for layer, pos in found:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        domain = _declared(layer)
        if domain is not None:
            return domain
        result = None
        inner = _model_inputs(layer)
        if inner is not None and depth < _MAX_DEPTH:
            if pos < len(inner):
                result = _follow(layer, producer_of(inner[pos]), depth + 1, seen)
                if result is _THROUGH:
                    result = _follow(model, layer, depth, seen)
        elif type(layer).__name__ in PASS_THROUGH:
            result = _follow(model, layer, depth, seen)
        if isinstance(result, InputDomain):
            return result
        through = through or result is _THROUGH
    return _THROUGH if through else None


def input_domains(model: Any) -> dict[str, InputDomain]:
    """The declared domain of each model input, by input name (as ``io_records`` names
    them); inputs whose first consumers declare nothing are left out."""
    domains: dict[str, InputDomain] = {}
    try:
        tensors = list(model.inputs)
        names = unique_names([history_name(t) for t in tensors])
        for name, t in zip(names, tensors):
            found = _follow(model, producer_of(t), 0, set())
            if isinstance(found, InputDomain):
                domains[name] = found
    except Exception:  # best effort: the validator falls back to its documented default
        log.debug("reading the input domains failed", exc_info=True)
    return domains
