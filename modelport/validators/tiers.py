"""Accuracy tiers: how a quantized artifact is judged. A quantized model is not meant to
match the Keras model to float32 rounding, so instead of the element-wise rule each
quantization mode has a tier of aggregate figures an output must reach:

- ``cosine``: cosine similarity of the whole output with the Keras output (minimum);
- ``sqnr``: signal-to-quantization-noise ratio in dB, ``10*log10(sum(keras^2) /
  sum((artifact - keras)^2))`` (minimum);
- ``max_abs``: the largest ``|artifact - keras|`` (maximum; unset by default, since
  it depends on the output's scale);
- ``top1``: the fraction of samples whose arg-max class agrees with Keras (minimum;
  outputs of shape ``[N, classes]`` only).

The defaults (``DEFAULT_TIERS``) are documented in the README and can be overridden per mode
(``--tier int8=cosine:0.99,sqnr:20,top1:0.98``; ``KEY:off`` drops a figure). Which
mode an artifact has comes from its manifest entry (``details["quantization"]["mode"]``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

import numpy as np

from modelport.core.errors import UserInputError
from modelport.validators.compare import OutputComparison

__all__ = ["Tier", "DEFAULT_TIERS", "KEYS", "QUANTIZED_SAMPLES", "parse_tiers",
           "resolve_tiers", "tier_for", "sqnr_db", "judge", "synthetic_note"]

SQNR_CAP = 200.0  # dB reported for an output identical to float64 rounding
# samples generated when quantized artifacts are judged: tiers are statistics (top-1
# agreement over 4 samples could only be 0, 25, 50, 75 or 100%)
QUANTIZED_SAMPLES = 32


@dataclass(frozen=True)
class Tier:
    """The figures an output of a ``mode`` artifact must reach (``None``: not judged)."""

    mode: str
    cosine: float | None = None
    sqnr: float | None = None
    max_abs: float | None = None
    top1: float | None = None

    def describe(self) -> str:
        """``"cosine >= 0.99, SQNR >= 20 dB, top-1 >= 98%"``."""
        parts = []
        if self.cosine is not None:
            parts.append(f"cosine >= {self.cosine:g}")
        if self.sqnr is not None:
            parts.append(f"SQNR >= {self.sqnr:g} dB")
        if self.max_abs is not None:
            parts.append(f"max abs error <= {self.max_abs:g}")
        if self.top1 is not None:
            parts.append(f"top-1 >= {self.top1:.0%}")
        return ", ".join(parts) or "no figure"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# measured on the trained fixture (held-out set; TFLite / ONNX): float16 cosine 1.000000
# and SQNR 71 dB; dynamic 0.99996 / 41 dB; int8 0.99985 / 35 dB, top-1 99.2%; int16x8
# 0.99995 / 40 dB. Each default leaves a margin a sound variant of another model keeps,
# and a wrong one (transposed weights, a dropped layer, raw int8 feeds) cannot reach.
DEFAULT_TIERS: dict[str, Tier] = {
    "float16": Tier("float16", cosine=0.9999, sqnr=40.0, top1=0.99),
    "dynamic": Tier("dynamic", cosine=0.999, sqnr=25.0, top1=0.98),
    "int8": Tier("int8", cosine=0.99, sqnr=20.0, top1=0.98),
    "int8-full": Tier("int8-full", cosine=0.99, sqnr=20.0, top1=0.98),
    "int16x8": Tier("int16x8", cosine=0.999, sqnr=30.0, top1=0.98),
}
KEYS = ("cosine", "sqnr", "max_abs", "top1")
_FALLBACK = Tier("", cosine=0.99, sqnr=20.0, top1=0.98)  # a mode without its own tier


def parse_tiers(items: list[str] | None) -> dict[str, dict[str, float | None]]:
    """``["int8=cosine:0.99,top1:0.95", "float16=sqnr:off"]`` ->
    ``{"int8": {"cosine": 0.99, "top1": 0.95}, "float16": {"sqnr": None}}``.

    Raises:
        UserInputError: an item is not ``MODE=KEY:VALUE,...`` with known keys.
    """
    out: dict[str, dict[str, float | None]] = {}
    for item in items or []:
        mode, sep, rest = item.partition("=")
        mode = mode.strip().lower().replace("_", "-")
        figures: dict[str, float | None] = {}
        ok = bool(sep and mode and rest.strip())
        for part in rest.split(",") if ok else []:
            key, colon, value = part.strip().partition(":")
            key = key.strip().lower().replace("-", "_")
            try:
                number = None if value.strip().lower() in ("off", "none") else float(value)
            except ValueError:
                ok = False
                break
            if not colon or key not in KEYS or (number is not None and not math.isfinite(number)):
                ok = False
                break
            figures[key] = number
        if not ok:
            raise UserInputError(f"--tier {item!r}: expected MODE=KEY:VALUE,... with keys "
                                 f"{', '.join(KEYS)} (VALUE a number or off), e.g. "
                                 "int8=cosine:0.99,sqnr:20,top1:0.98")
        out.setdefault(mode, {}).update(figures)
    return out


def resolve_tiers(overrides: Mapping[str, Any] | None = None) -> dict[str, Tier]:
    """``DEFAULT_TIERS`` with the user's figures (``parse_tiers`` output, or ``Tier``s)."""
    tiers = dict(DEFAULT_TIERS)
    for mode, given in (overrides or {}).items():
        base = tiers.get(mode, replace(_FALLBACK, mode=mode))
        tiers[mode] = given if isinstance(given, Tier) else replace(base, **dict(given))
    return tiers


def tier_for(tiers: Mapping[str, Tier], mode: str) -> Tier:
    """The tier of ``mode`` (a mode without one gets the int8 figures)."""
    return tiers.get(mode) or replace(_FALLBACK, mode=mode)


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """``10*log10(signal power / error power)`` over the whole output, capped at
    ``SQNR_CAP``; 0 for a zero reference with any error."""
    b = np.asarray(ref, np.float64).ravel()
    a = np.asarray(got, np.float64).ravel()
    noise = float(np.sum((a - b) ** 2))
    signal = float(np.sum(b ** 2))
    if noise == 0.0:
        return SQNR_CAP
    if signal == 0.0:
        return 0.0
    return float(min(SQNR_CAP, 10.0 * math.log10(signal / noise)))


def judge(c: OutputComparison, ref: np.ndarray, got: np.ndarray | None, tier: Tier) -> None:
    """Judge one output comparison by ``tier`` instead of the element-wise rule: sets
    ``passed``, ``rule``, ``sqnr_db``, ``tier`` and, on failure, ``reason`` (the figures
    that fall short)."""
    c.rule = f"tier {tier.mode}"
    c.tier = tier.to_dict()
    if got is None or c.artifact_shape is None or c.nonfinite or c.cosine is None or (
            c.reason and c.max_abs_error is None):
        c.passed = False  # missing, misshapen or NaN: the reason already says so
        return
    ref = np.asarray(ref)
    conformed = np.asarray(got).reshape(ref.shape)
    if ref.dtype.kind not in "fc":  # integer outputs (ids, classes): agreement only
        agree = float(np.mean(conformed == ref)) if ref.size else 1.0
        need = 1.0 if tier.top1 is None else tier.top1
        c.passed = agree >= need
        c.reason = "" if c.passed else (f"output {c.name!r}: {agree:.1%} of values agree, "
                                        f"{tier.mode} tier needs {need:.0%}")
        return
    c.sqnr_db = sqnr_db(ref, conformed)
    short = []
    if tier.cosine is not None and c.cosine < tier.cosine:
        short.append(f"cosine {c.cosine:.6f} < {tier.cosine:g}")
    if tier.sqnr is not None and c.sqnr_db < tier.sqnr:
        short.append(f"SQNR {c.sqnr_db:.1f} dB < {tier.sqnr:g} dB")
    if tier.max_abs is not None and c.max_abs_error is not None and c.max_abs_error > tier.max_abs:
        short.append(f"max abs error {c.max_abs_error:.3g} > {tier.max_abs:g}")
    if tier.top1 is not None and c.top1_agreement is not None and ref.ndim == 2 and \
            c.top1_agreement < tier.top1:
        short.append(f"top-1 agreement {c.top1_agreement:.1%} < {tier.top1:.0%}")
    c.passed = not short
    c.reason = "" if c.passed else f"output {c.name!r}: {', '.join(short)} ({tier.mode} tier)"


def synthetic_note(artifacts: list[str], origin: str) -> str:
    """The warning every report carries when quantized artifacts were judged on generated
    inputs: their accuracy figures say nothing certain about real data."""
    return (f"the accuracy figures of the quantized artifact(s) {', '.join(artifacts)} come "
            f"from synthetic data ({origin}), not real inputs; give real samples (e.g. a "
            "held-out set) with --inputs FILE.npz")
