"""The pass/fail rule of one validation, measured on the reference before any artifact
runs: each float output's noise floor (``noise.py``) and the tolerance it implies
(``compare.measured_tolerance``), the outputs that are random at inference and their
distribution samples (``stochastic.py``), and the warnings when the floor itself says the
comparison is weak (an output that moves by percents on one float32 rounding)."""

from __future__ import annotations

import logging
from typing import Any, Callable, Collection

import numpy as np

from modelport.core.text import one_line
from modelport.validators.compare import (
    KERNEL_RTOL, NOISE_MULTIPLE, compare_output, measured_tolerance,
)
from modelport.validators.diagnose import amplifying_layers
from modelport.validators.noise import EPS32, measure_noise, perturbed_feeds
from modelport.validators.reference import Reference
from modelport.validators.stochastic import (
    ALPHA, as_draws, draw_count, repeated_feeds,
)

__all__ = ["measure", "floor_free", "rule_text", "conditioning_warnings", "ILL_CONDITIONED"]

log = logging.getLogger(__name__)

# an output whose noise floor exceeds this fraction of its magnitude is ill-conditioned:
# a 2% weight error can hide in the rounding
ILL_CONDITIONED = 1e-3
DISTRIBUTION_ROWS = 2

Predict = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def measure(ref: Reference, source: Any, predict: Predict, ids: Collection[str]) -> list[str]:
    """Fill ``ref.measured`` (the rule per float output), ``ref.stochastic`` and the
    distribution samples; returns warnings (a measurement that could not run). The
    perturbations are seeded alike in every run, so the same feeds (a replay with
    ``--inputs``) give the same rule."""

    def random_if(name: str, a: np.ndarray, b: np.ndarray) -> bool:
        # random: a plain rerun fails the rule an artifact is judged by, floor aside
        return not compare_output(name, a, b, measured_tolerance(a.dtype, a, 0.0)).passed

    try:
        noise = measure_noise(predict, ref.feeds, ref.outputs, getattr(source, "model", None),
                              fixed=ids, random_if=random_if)
    except Exception as e:  # the model refuses perturbed feeds: keep the fixed rule
        log.debug("noise floor not measured", exc_info=True)
        return [f"the noise floor could not be measured ({one_line(e)}); the fixed default "
                "tolerances apply"]
    ref.stochastic = list(noise.stochastic)
    ref.measured = {k: measured_tolerance(ref.outputs[k].dtype, ref.outputs[k], f)
                    for k, f in noise.floors.items() if k not in ref.stochastic}
    if not ref.stochastic:
        return []
    rows = max(1, min(DISTRIBUTION_ROWS, ref.samples))
    draws = draw_count(ref.feeds, rows)
    ref.draw_feeds = repeated_feeds(ref.feeds, rows, draws)
    out = predict(ref.draw_feeds)
    ref.draws = {k: as_draws(out[k], rows, draws) for k in ref.stochastic}
    return [f"output(s) {', '.join(ref.stochastic)} are random at inference (two runs on the "
            f"same inputs differ): compared by distribution over {draws} draws of each of "
            f"{rows} sample(s) (mean and spread per element, family-wise error {ALPHA:g}), "
            "not element by element"]


def floor_free(ref: Reference) -> dict[str, Any]:
    """The measured rule of every float output at a zero noise floor: its minimum, which
    any measured floor only widens (``measured_tolerance`` is monotone in the floor)."""
    return {k: measured_tolerance(y.dtype, y, 0.0) for k, y in ref.outputs.items()
            if np.asarray(y).dtype.kind == "f"}


def rule_text(ref: Reference, settings: Any) -> str:
    """The rule applied by default, in one line (explicit tolerances noted)."""
    parts = [f"every element |artifact - keras| <= atol + rtol*|keras|; default atol = "
             f"{NOISE_MULTIPLE:g} x the Keras model's own noise floor on each sample "
             f"(how far it moves when its inputs and weights are perturbed by one float32 "
             f"rounding), at least {NOISE_MULTIPLE:g} roundings and {KERNEL_RTOL:g} of the "
             "sample's largest value (kernels' own approximations); rtol = 1e-3 (float32)"]
    if not ref.floor_measured:
        parts.append(f"the noise floor was not measured: the artifacts were judged by "
                     f"the rule's minimum ({KERNEL_RTOL:g} of each sample's largest value), "
                     "which a measured floor only widens; one that failed it would have "
                     "been judged again under the measured floor")
    if settings.atol is not None or settings.rtol is not None or settings.per_format:
        given = [f"{k}={v}" for k, v in (("atol", settings.atol), ("rtol", settings.rtol))
                 if v is not None]
        given += [f"{fmt}: atol={a}, rtol={r}" for fmt, (a, r) in settings.per_format.items()]
        parts.append("explicit tolerances replace it: " + "; ".join(given))
    if ref.stochastic:
        parts.append(f"random outputs ({', '.join(ref.stochastic)}) by distribution")
    return "; ".join(parts)


def conditioning_warnings(ref: Reference, source: Any, predict: Predict,
                          picked: Any) -> list[str]:
    """A warning per ill-conditioned output, naming the layers that amplify rounding."""
    weak = []
    for name, tol in ref.measured.items():
        y = np.asarray(ref.outputs[name], np.float64)
        finite = np.abs(y[np.isfinite(y)])
        scale = float(finite.max()) if finite.size else 0.0
        if tol.noise_floor and scale and tol.noise_floor > ILL_CONDITIONED * scale:
            weak.append((name, tol.noise_floor, scale))
    if not weak:
        return []
    moved = perturbed_feeds(ref.feeds, np.random.default_rng(1), EPS32 * 16,
                            fixed=picked.ids)
    layers = amplifying_layers(source, ref.feeds, moved)
    default = any(d.reason.startswith("default") for d in (picked.domains or {}).values())
    out = []
    for name, floor, scale in weak:
        text = (f"output {name!r} is ill-conditioned on these inputs: one float32 rounding "
                f"of the inputs and weights moves it by {floor:.3g} ({floor / scale:.2%} of "
                f"its largest value {scale:.3g}), so artifacts can only match it that well "
                "and a small weight error could hide in it")
        if layers:
            text += f"; the rounding is amplified most by layers {', '.join(layers)}"
        if default or picked.domains is None:
            text += ("; the inputs may be outside the model's domain: supply representative "
                     "inputs with --inputs FILE.npz")
        out.append(text)
    return out
