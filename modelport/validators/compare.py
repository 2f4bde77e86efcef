"""Numeric comparison of one artifact output against the reference output.

An output passes when every element satisfies ``|a - b| <= atol + rtol * |b|`` (``b`` the
reference, as ``numpy.isclose``) and the artifact produced no NaN or Inf where the
reference is finite. The other numbers (relative error, cosine, p99, top-1) explain a
verdict; they do not decide it.

The default ``atol`` of a float output is measured, not fixed (``measured_tolerance``):
``NOISE_MULTIPLE`` times the reference's own float32 noise floor on each sample (how far
the Keras model moves when its inputs and weights are perturbed by one float32 rounding,
``noise.py``), and never below ``NOISE_MULTIPLE`` roundings nor ``KERNEL_RTOL`` of the
sample's largest value (optimized kernels' own approximations).
Deep nets whose logits reach hundreds get an atol of their size; a small model with
outputs near 1e-3 gets one of its size. ``rtol`` stays the dtype's (float32: 1e-3).
Explicit ``atol``/``rtol`` (per format or global) replace the measured values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

__all__ = [
    "Tolerance", "OutputComparison", "DTYPE_TOLERANCES", "FORMAT_TOLERANCES",
    "NOISE_MULTIPLE", "resolve_tolerance", "measured_tolerance", "compare_output",
    "is_degenerate", "barely_varies",
]


@dataclass(frozen=True)
class Tolerance:
    """``|a - b| <= atol + rtol*|b|``; ``rows`` (when set) gives each sample its own atol
    (the measured rule), ``atol`` is then their largest."""

    atol: float
    rtol: float
    rows: tuple[float, ...] | None = None
    rule: str = "fixed"  # "measured", "explicit" or "fixed" (the dtype's default)
    noise_floor: float | None = None  # the largest measured noise floor, when measured

    def atol_for(self, ref: np.ndarray) -> np.ndarray | float:
        """The atol of every element of ``ref`` (per sample under the measured rule)."""
        if self.rows is None or ref.ndim == 0 or ref.shape[0] != len(self.rows):
            return self.atol
        return np.asarray(self.rows, np.float64).reshape((-1,) + (1,) * (ref.ndim - 1))


# defaults by the reference output's dtype; integers and booleans must match exactly
DTYPE_TOLERANCES: dict[str, Tolerance] = {
    "float16": Tolerance(1e-2, 1e-2),
    "bfloat16": Tolerance(1e-2, 5e-2),
    "float32": Tolerance(1e-4, 1e-3),
    "float64": Tolerance(1e-4, 1e-3),  # artifacts may compute in float32
}
EXACT = Tolerance(0.0, 0.0)

# per-format defaults that replace the dtype defaults; every runtime we ship computes in
# float32 and stays well inside them today, so this is only the hook for a looser format
FORMAT_TOLERANCES: dict[str, dict[str, Tolerance]] = {}

# variation below this fraction of an output's magnitude is float noise, not dependence
DEGENERATE_SPREAD = 1e-6

# the measured atol is this many noise floors. Measured on the public corpora (185
# outputs of correct .pb/TFLite/ONNX ports) and Keras Applications with calibrated
# BatchNorm (ResNet50, DenseNet121, InceptionV3, NASNetMobile, MobileNetV2/V3Small,
# EfficientNetB0): correct float32 ports stay within 4 floors of their sample; one middle
# layer's weights x1.02 moves outputs by 1,100 to 150,000 floors, a wrong TFLite LSTM by
# 100,000 and more. 32 leaves room for runtimes' own activation approximations.
NOISE_MULTIPLE = 32.0
# ... and never below this fraction of the sample's largest value: optimized CPU kernels
# approximate transcendental functions past IEEE rounding, which a perturbation of inputs
# and weights cannot model (measured: a tf.keras transformer's .pb in a TF1 session with
# oneDNN's fused ops differs from Keras by 1.4e-4 on unit-scale softmax outputs, by 1e-7
# with TF_ENABLE_ONEDNN_OPTS=0). One middle layer's weights x1.02 still moves deep nets'
# outputs by 5e-3 of their scale and more.
KERNEL_RTOL = 1e-4


def _dtype_name(dtype: Any) -> str:
    return str(np.dtype(dtype)) if str(dtype) != "bfloat16" else "bfloat16"


def measured_tolerance(dtype: Any, ref: np.ndarray, floors: Any) -> Tolerance:
    """The default rule for a float output: per sample, ``atol = max(NOISE_MULTIPLE *
    max(noise floor, median sample's floor, eps * max|ref|), KERNEL_RTOL * max|ref|)``
    (``eps`` of the output's dtype, at least float32's), ``rtol`` the dtype's. Integer and boolean outputs must
    match exactly.

    Args:
        dtype: the reference output's dtype.
        ref: the reference output (samples first).
        floors: the measured noise floor, one per sample or one for the output.
    """
    name = _dtype_name(dtype)
    base = DTYPE_TOLERANCES.get(name)
    if base is None:
        return EXACT
    b = np.abs(np.asarray(ref, np.float64))
    b = np.where(np.isfinite(b), b, 0.0)
    eps = max(float(np.finfo(np.float32).eps),
              float(np.finfo(np.float16).eps) if name in ("float16", "bfloat16") else 0.0)
    per_row = b.ndim >= 1 and b.shape[0] > 0
    scale = b.reshape(b.shape[0], -1).max(axis=1) if per_row and b.size else np.zeros(1)
    fl = np.asarray(floors, np.float64).ravel()
    if fl.size != scale.size:
        fl = np.full(scale.shape, float(fl.max()) if fl.size else 0.0)
    # a few draws of a small output can all land near 0 by chance on one sample: no sample
    # gets less than the median sample's floor (the probe row, often the worst conditioned,
    # still does not loosen the others)
    fl = np.maximum(fl, float(np.median(fl))) if fl.size else fl
    rows = np.maximum(NOISE_MULTIPLE * np.maximum(fl, eps * scale), KERNEL_RTOL * scale)
    return Tolerance(float(rows.max()), base.rtol, tuple(float(r) for r in rows)
                     if per_row else None, "measured", float(fl.max()))


def resolve_tolerance(
    dtype: Any,
    fmt: str = "",
    atol: float | None = None,
    rtol: float | None = None,
    per_format: Mapping[str, tuple[float | None, float | None]] | None = None,
    measured: Tolerance | None = None,
) -> Tolerance:
    """The tolerance for one output of one artifact.

    Precedence: ``per_format[fmt]`` > ``atol``/``rtol`` > ``FORMAT_TOLERANCES`` > the
    ``measured`` rule (``measured_tolerance``) > the dtype default (exact for integers and
    booleans). An explicit atol replaces the measured per-sample atols.
    """
    name = _dtype_name(dtype)
    fixed = FORMAT_TOLERANCES.get(fmt, {}).get(name)
    base = fixed or (measured if measured is not None and name in DTYPE_TOLERANCES
                     else DTYPE_TOLERANCES.get(name, EXACT))
    fa, fr = (per_format or {}).get(fmt, (None, None))
    a = fa if fa is not None else atol
    r = fr if fr is not None else rtol
    if a is None and r is None:
        return base
    explicit_atol = a is not None or base.rows is None
    return Tolerance(float(a) if a is not None else base.atol,
                     float(r) if r is not None else base.rtol,
                     None if explicit_atol else base.rows,
                     "explicit", base.noise_floor)


@dataclass
class OutputComparison:
    """How one artifact output compares with the reference output of the same name."""

    name: str
    artifact_name: str
    passed: bool
    atol: float
    rtol: float
    shape: list[int]
    artifact_shape: list[int] | None = None
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    mean_abs_error: float | None = None
    p99_abs_error: float | None = None
    min_passing_atol: float | None = None  # the smallest atol (at this rtol) that passes
    cosine: float | None = None
    top1_agreement: float | None = None
    mismatched: int = 0  # elements outside the tolerance
    nonfinite: int = 0  # NaN/Inf in the artifact where the reference is finite
    size: int = 0
    reason: str = ""
    rule: str = "fixed"  # "measured", "explicit", "fixed" or "distribution"
    noise_floor: float | None = None  # the largest measured noise floor of the output
    noise_ratio: float | None = None  # the largest error, in noise floors of its sample
    distribution: dict[str, Any] | None = None  # how a random output's samples compare
    sqnr_db: float | None = None  # signal-to-error ratio, for outputs judged by a tier
    tier: dict[str, Any] | None = None  # the accuracy tier a quantized artifact is judged by

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where both are non-finite and equal (NaN with NaN, +Inf with +Inf)."""
    return (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b)))


def _is_classifier(ref: np.ndarray) -> bool:
    return ref.ndim >= 2 and ref.shape[-1] >= 2 and ref.dtype.kind == "f"


def _conform(name: str, ref: np.ndarray, got: np.ndarray) -> tuple[np.ndarray | None, str]:
    """``got`` in ``ref``'s shape, or ``None`` and why not (``[N, 1]`` vs ``[N]`` is fine)."""
    if got.shape == ref.shape:
        return got, ""
    if got.size == ref.size and np.squeeze(got).shape == np.squeeze(ref).shape:
        return got.reshape(ref.shape), ""
    return None, f"output {name!r} has shape {list(got.shape)}, the model's has {list(ref.shape)}"


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


def _error_sizes(res: OutputComparison, a: np.ndarray, b: np.ndarray, mask: np.ndarray,
                 tol: Tolerance) -> None:
    """Fill the error statistics over the elements where both sides are finite."""
    if not mask.any():
        if b.size == 0:
            res.max_abs_error = res.mean_abs_error = res.p99_abs_error = 0.0
            res.max_rel_error = res.min_passing_atol = 0.0
            res.cosine = 1.0
        return
    d = np.abs(a - b)[mask]
    bb = np.abs(b[mask])
    res.max_abs_error = float(d.max())
    res.mean_abs_error = float(d.mean())
    res.p99_abs_error = float(np.percentile(d, 99))
    res.max_rel_error = float((d / np.maximum(bb, float(np.finfo(np.float32).eps))).max())
    res.min_passing_atol = float(max(0.0, (d - tol.rtol * bb).max()))
    res.cosine = _cosine(a[mask], b[mask])
    if tol.rule in ("measured", "explicit") and tol.rows is not None:
        floors = np.broadcast_to(tol.atol_for(b) / NOISE_MULTIPLE, b.shape)[mask]
        res.noise_ratio = float((d / np.maximum(floors, np.finfo(np.float64).tiny)).max())


def _nonfinite_reason(name: str, got: np.ndarray, bad: np.ndarray, size: int) -> str:
    nan, inf = bool(np.isnan(got[bad]).any()), bool(np.isinf(got[bad]).any())
    kinds = "NaN/Inf" if nan and inf else "NaN" if nan else "Inf"
    return f"output {name!r} contains {kinds} ({int(bad.sum())} of {size} values)"


def compare_output(name: str, ref: np.ndarray, got: np.ndarray | None, tol: Tolerance,
                   artifact_name: str | None = None) -> OutputComparison:
    """Compare an artifact output ``got`` with the reference ``ref``."""
    ref = np.asarray(ref)
    res = OutputComparison(name, artifact_name or name, False, tol.atol, tol.rtol,
                           list(ref.shape), size=int(ref.size), rule=tol.rule,
                           noise_floor=tol.noise_floor)
    if got is None:
        res.reason = f"output {name!r} missing"
        return res
    got = np.asarray(got)
    res.artifact_shape = list(got.shape)
    conformed, res.reason = _conform(name, ref, got)
    if conformed is None:
        return res
    if ref.dtype.kind == "b" or conformed.dtype.kind == "b":
        ref, conformed = ref.astype(np.int8), conformed.astype(np.int8)
    a, b = conformed.astype(np.float64), ref.astype(np.float64)
    ref_finite, got_finite = np.isfinite(b), np.isfinite(a)
    bad = ref_finite & ~got_finite
    res.nonfinite = int(bad.sum())
    mask = ref_finite & got_finite
    _error_sizes(res, a, b, mask, tol)
    if res.nonfinite:
        # numbers over the finite part would look good; an output with NaN has no error size
        res.max_abs_error = res.max_rel_error = res.cosine = res.min_passing_atol = math.nan
        res.mean_abs_error = res.p99_abs_error = math.nan
        res.noise_ratio = None if res.noise_ratio is None else math.nan
    elif _is_classifier(ref) and ref_finite.all():
        res.top1_agreement = float(np.mean(np.argmax(a, axis=-1) == np.argmax(b, axis=-1)))
    within = np.where(mask, np.abs(a - b) <= tol.atol_for(b) + tol.rtol * np.abs(b),
                      ~ref_finite & _finite_equal(a, b))
    res.mismatched = int((~within).sum())
    res.passed = res.mismatched == 0
    if res.nonfinite:
        res.reason = _nonfinite_reason(name, a, bad, ref.size)
    elif not res.passed:
        atol = f"atol={tol.atol:.3g}" if tol.rows is None else (
            f"atol={NOISE_MULTIPLE:g} noise floors (up to {tol.atol:.3g})")
        floors = "" if res.noise_ratio is None else f", {res.noise_ratio:.3g} noise floors"
        res.reason = (f"output {name!r}: {res.mismatched} of {ref.size} values outside "
                      f"{atol} + rtol={tol.rtol:g}*|ref| (max abs error "
                      f"{_g(res.max_abs_error)}{floors}; atol {_g(res.min_passing_atol)} "
                      "would pass)")
    return res


def _g(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _spread(ref: np.ndarray) -> np.ndarray:
    b = ref.astype(np.float64)
    return np.abs(b - b[:1])


def is_degenerate(ref: np.ndarray, noise_floor: float | None = None) -> bool:
    """True when a float output is the same for every sample (up to float noise: a
    millionth of its magnitude, or its measured ``noise_floor``): such an output does not
    depend on the inputs and a wrong artifact could still match it."""
    ref = np.asarray(ref)
    if ref.ndim == 0 or ref.shape[0] < 2 or ref.dtype.kind != "f" or ref.size == 0:
        return False
    b = ref.astype(np.float64)
    if not np.isfinite(b).all():
        return False
    scale = max(1.0, float(np.abs(b).max()))
    return float(_spread(b).max()) <= max(DEGENERATE_SPREAD * scale, noise_floor or 0.0)


def barely_varies(ref: np.ndarray, tol: Tolerance) -> bool:
    """True when every sample is within ``tol`` of the first: a constant artifact would pass."""
    ref = np.asarray(ref)
    if ref.ndim == 0 or ref.shape[0] < 2 or ref.size == 0:
        return False
    b = ref.astype(np.float64)
    if not np.isfinite(b).all():
        return False
    return bool(np.all(_spread(b) <= tol.atol_for(b) + tol.rtol * np.abs(b)))
