"""Outputs that are random at inference (a VAE's sampling layer, a layer that calls random
ops in ``call``): compared by their distribution, since no two runs agree element-wise.

A few of the validator's samples are each repeated many times in one batch; the Keras
model and the artifact both run on that batch, and for every element of every sample the
draws' mean and spread must agree within what sampling explains: the mean difference in
standard errors, the log ratio of the spreads in its standard error (kurtosis-aware), each
tested element by element (Bonferroni) and over all elements (a chi-square sum). An
artifact whose random state was frozen at conversion still draws different noise for each
row of a batch, so it passes; that it repeats the same draws on every call is reported.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Mapping

import numpy as np

from modelport.validators.compare import NOISE_MULTIPLE, OutputComparison

__all__ = ["ALPHA", "draw_count", "repeated_feeds", "as_draws", "compare_distribution",
           "frozen_note"]

ALPHA = 1e-4  # chance that a correct artifact fails one output's test
MAX_DRAWS, MIN_DRAWS = 256, 32
_BUDGET = 1 << 22  # input elements per distribution batch


def draw_count(feeds: Mapping[str, np.ndarray], rows: int) -> int:
    """Draws per sample: as many as ``_BUDGET`` input elements allow, 32 to 256."""
    per_row = sum(int(np.prod(v.shape[1:], dtype=np.int64)) for v in feeds.values()) or 1
    return int(np.clip(_BUDGET // (per_row * max(rows, 1)), MIN_DRAWS, MAX_DRAWS))


def repeated_feeds(feeds: Mapping[str, np.ndarray], rows: int,
                   draws: int) -> dict[str, np.ndarray]:
    """The first ``rows`` samples, each repeated ``draws`` times (sample-major)."""
    return {k: np.repeat(np.asarray(v)[:rows], draws, axis=0) for k, v in feeds.items()}


def as_draws(y: np.ndarray, rows: int, draws: int) -> np.ndarray:
    """A ``[rows * draws, ...]`` output as ``[rows, draws, ...]``."""
    y = np.asarray(y)
    return y.reshape((rows, draws) + y.shape[1:])


def _threshold(n: int) -> float:
    """Two-sided z limit for ``n`` elements at family-wise error ``ALPHA``."""
    return NormalDist().inv_cdf(1.0 - ALPHA / (2.0 * max(n, 1)))


def _aggregate(z: np.ndarray) -> float:
    """``sum(z^2)`` over ``n`` elements, standardised (chi-square -> ~N(0, 1))."""
    n = z.size
    return float((np.sum(z * z) - n) / math.sqrt(2.0 * n)) if n else 0.0


def compare_distribution(name: str, ref: np.ndarray, got: np.ndarray | None,
                         artifact_name: str | None = None) -> OutputComparison:
    """Compare ``got`` with ``ref``, both ``[samples, draws, ...]``, by distribution."""
    ref = np.asarray(ref, np.float64)
    res = OutputComparison(name, artifact_name or name, False, 0.0, 0.0,
                           list(ref.shape[:1]) + list(ref.shape[2:]), size=int(ref.size),
                           rule="distribution")
    if got is None:
        res.reason = f"output {name!r} missing"
        return res
    got = np.asarray(got, np.float64)
    if got.size != ref.size:
        res.reason = (f"output {name!r} has shape {list(got.shape[1:])} per draw, the "
                      f"model's has {list(ref.shape[2:])}")
        return res
    got = got.reshape(ref.shape)
    bad = np.isfinite(ref) & ~np.isfinite(got)
    res.nonfinite = int(bad.sum())
    if res.nonfinite:
        res.reason = f"output {name!r} contains NaN/Inf ({res.nonfinite} of {got.size} draws)"
        return res
    k = ref.shape[1]
    mr, mg = ref.mean(axis=1), got.mean(axis=1)
    sr, sg = ref.std(axis=1, ddof=1), got.std(axis=1, ddof=1)
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    tiny = NOISE_MULTIPLE * float(np.finfo(np.float32).eps) * max(scale, 1e-30)
    random = sr > tiny
    fixed_ok = np.abs(mg - mr)[~random] <= tiny + 1e-3 * np.abs(mr[~random])
    fixed_ok &= sg[~random] <= tiny
    n = int(random.sum())
    se = np.sqrt((sr ** 2 + sg ** 2) / k)
    z_mean = (np.abs(mg - mr)[random] / se[random])
    # var(log s) ~ (kurtosis - 1) / (4k) for each side; heavy tails widen it
    pooled = np.concatenate([ref, got], axis=1)
    centred = pooled - pooled.mean(axis=1, keepdims=True)
    var = (centred ** 2).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kurt = (centred ** 4).mean(axis=1) / var ** 2
    # 3 (normal) where the spread is 0; at least 1.5, or a near-two-point law's log-spread
    # estimate would look exact
    kurt = np.clip(np.nan_to_num(kurt, nan=3.0, posinf=3.0), 1.5, None)
    with np.errstate(divide="ignore"):
        log_ratio = np.abs(np.log(np.maximum(sg, 1e-300) / np.maximum(sr, 1e-300)))
    z_std = (log_ratio / np.sqrt((kurt - 1.0) / (2.0 * k)))[random]
    limit = _threshold(n)
    tail = NormalDist().inv_cdf(1.0 - ALPHA)
    res.distribution = {
        "samples": int(ref.shape[0]), "draws": int(k), "random_elements": n,
        "max_mean_z": float(z_mean.max()) if n else 0.0,
        "max_std_z": float(z_std.max()) if n else 0.0,
        "mean_chi2_z": _aggregate(z_mean), "std_chi2_z": _aggregate(z_std),
        "limit": limit, "aggregate_limit": tail,
    }
    d = np.abs(got - ref)
    res.max_abs_error = float(np.abs(mg - mr).max()) if mr.size else 0.0  # of the means
    res.mean_abs_error = float(np.abs(mg - mr).mean()) if mr.size else 0.0
    problems = []
    dist = res.distribution
    if n and (dist["max_mean_z"] > limit or dist["mean_chi2_z"] > tail):
        problems.append(f"its mean over {k} draws differs by up to {dist['max_mean_z']:.1f} "
                        f"standard errors (limit {limit:.1f})")
    if n and (dist["max_std_z"] > limit or dist["std_chi2_z"] > tail):
        ratio = float(np.exp(np.log(np.maximum(sg, 1e-300) / np.maximum(sr, 1e-300))[random]
                             .mean()))
        problems.append(f"its spread differs (artifact/model {ratio:.3g}, up to "
                        f"{dist['max_std_z']:.1f} standard errors, limit {limit:.1f})")
    if not fixed_ok.all():
        problems.append(f"{int((~fixed_ok).sum())} of its non-random values differ")
    res.mismatched = len(problems)
    res.passed = not problems
    res.size = int(d.size)
    if problems:
        res.reason = (f"output {name!r} is random in the Keras model and was compared by "
                      f"distribution: " + "; ".join(problems))
    return res


def frozen_note(name: str, first: Mapping[str, Any], second: Mapping[str, Any]) -> str | None:
    """A note when an artifact returned identical values for a random output twice."""
    a, b = first.get(name), second.get(name)
    if a is None or b is None or np.shape(a) != np.shape(b):
        return None
    if np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True):
        return (f"output {name!r} is random in the Keras model but the artifact returns the "
                "same draws on every call (its random state is fixed in the artifact): "
                "each row gets different noise, every call the same")
    return None
