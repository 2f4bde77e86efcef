"""The verdict on one artifact: feed it the reference feeds in its declared layout, compare
every output by name, and when it fails, find out why.

A pass requires the declared layout. Other layouts are tried only to explain a failure
("artifact expects NCHW input but the model is NHWC"), never to pass an artifact: a
permutation that happens to fit is exactly the bug this is here to catch.

A quantized artifact (its manifest names the mode) is judged by its mode's accuracy tier
(``tiers.py``) instead of the element-wise rule; the element-wise figures are still given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from modelport.core.text import fmt_shape
from modelport.validators.artifacts import Target
from modelport.validators.compare import (
    NOISE_MULTIPLE, OutputComparison, Tolerance, compare_output, resolve_tolerance,
)
from modelport.validators.layout import (
    alternatives, expected_shape, flipped, is_layout, shape_conflicts, to_layout,
)
from modelport.validators.reference import DEGENERATE, Reference
from modelport.validators.report import ArtifactResult
from modelport.validators.run import ArtifactRunError, Binding, bind, open_runner, run_artifact
from modelport.validators.stochastic import as_draws, compare_distribution, frozen_note
from modelport.validators.tiers import Tier, judge, resolve_tiers, tier_for

__all__ = ["Settings", "check_artifact"]

REAL_INPUTS_HINT = "supply real inputs with --inputs FILE.npz"


@dataclass
class Settings:
    """Tolerances and policies shared by every artifact of one run."""

    atol: float | None = None
    rtol: float | None = None
    per_format: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    allow_degenerate: bool = False
    tiers: dict[str, Tier] = field(default_factory=resolve_tiers)  # per quantization mode

    def tolerance(self, dtype, fmt: str = "", measured: Tolerance | None = None) -> Tolerance:
        """The rule for an output of ``dtype`` in format ``fmt``: the explicit tolerances
        given, else ``measured`` (the output's noise-floor rule), else the dtype's."""
        return resolve_tolerance(dtype, fmt, self.atol, self.rtol, self.per_format, measured)

    def for_output(self, ref: Reference, name: str, fmt: str = "") -> Tolerance:
        """The rule for the reference output ``name`` in format ``fmt``."""
        return self.tolerance(ref.outputs[name].dtype, fmt, ref.measured.get(name))

    def compare(self, ref: Reference, name: str, got: np.ndarray | None, fmt: str = "",
                tier: Tier | None = None, artifact_name: str | None = None,
                ) -> OutputComparison:
        """Output ``name`` of an artifact against the reference: by the element-wise
        rule, or by ``tier`` (a quantized artifact)."""
        y = ref.outputs[name]
        c = compare_output(name, y, got, self.for_output(ref, name, fmt), artifact_name)
        if tier is not None:
            judge(c, y, got, tier)
        return c


def _declared(target: Target, ref: Reference) -> dict[str, str | None]:
    """The layout to feed each input in: the manifest's, else the model's."""
    declared = target.declared_layout or {}
    out: dict[str, str | None] = {}
    for name, model_layout in ref.layouts.items():
        d = declared.get(name)
        out[name] = d if is_layout(d) and model_layout and len(d) == len(model_layout) \
            else model_layout
    return out


def _compare_all(ref: Reference, got: Mapping[str, np.ndarray], binding: Binding,
                 settings: Settings, fmt: str, draws: Mapping[str, np.ndarray] | None = None,
                 tier: Tier | None = None) -> list[OutputComparison]:
    """Every output by name: element-wise, or by distribution for random ones."""
    out = []
    for name, y in ref.outputs.items():
        if name in ref.stochastic:
            got_draws = None if draws is None or name not in draws else as_draws(
                draws[name], *ref.draws[name].shape[:2])
            out.append(compare_distribution(name, ref.draws[name], got_draws,
                                            binding.outputs.get(name)))
        else:
            out.append(settings.compare(ref, name, got.get(name), fmt, tier,
                                        binding.outputs.get(name)))
    return out


def _shape_problems(declared: Mapping[str, list | None], ref: Reference,
                    feed_layout: dict[str, str | None], who: str) -> list[str]:
    """Declared input shapes (the artifact's, or its manifest's) against the model's input
    shapes re-laid out as declared; the batch dimension is ignored."""
    problems = []
    for name, x in ref.feeds.items():
        if name not in declared:
            continue
        have, layout = declared[name], feed_layout.get(name)
        want = expected_shape(list(x.shape), ref.layouts.get(name), layout)
        if not shape_conflicts(have, want):
            continue
        msg = (f"input {name!r}: {who} declares shape {fmt_shape(have, '[]', named=False)}, "
               f"the model's is {fmt_shape(want, '[]', named=False)}"
               + (f" in {layout}" if layout else ""))
        other = flipped(layout)
        if other and not shape_conflicts(have, expected_shape(list(x.shape),
                                                              ref.layouts.get(name), other)):
            msg += f" (that is the {other} shape)"
        problems.append(msg)
    return problems


def _flipped_outputs(ref: Reference, got: Mapping[str, np.ndarray], settings: Settings,
                     fmt: str, tier: Tier | None = None) -> list[str] | None:
    """``None`` unless every output matches, read as is or in its flipped layout; then
    the names of the outputs that needed the flip."""
    flips = []
    for name, y in ref.outputs.items():
        if name in ref.stochastic:
            continue
        g = got.get(name)
        if g is None:
            return None
        if settings.compare(ref, name, g, fmt, tier).passed:
            continue
        layout = ref.output_layouts.get(name)
        other = flipped(layout)
        if other is None or np.ndim(g) != len(other):
            return None
        moved = to_layout(np.asarray(g), other, layout)
        if moved.shape != y.shape or not settings.compare(ref, name, moved, fmt, tier).passed:
            return None
        flips.append(name)
    return flips


def _layout_diagnosis(binding: Binding, target: Target, ref: Reference, feed_layout,
                      out_layouts, settings: Settings, got: Mapping[str, np.ndarray],
                      tier: Tier | None = None) -> str | None:
    """Try the channels-first/-last flips of the inputs (and of the outputs); describe
    the combination that matches."""
    for alt in [{}] + alternatives(feed_layout):
        if alt:
            try:
                got = run_artifact(binding, ref.feeds, ref.layouts, {**feed_layout, **alt},
                                   out_layouts, target.fixed_batch)
            except ArtifactRunError:
                continue
        flips = _flipped_outputs(ref, got, settings, target.format, tier) if got else None
        if flips is None or not (alt or flips):
            continue
        single = len(ref.feeds) == 1
        parts = []
        for name, layout in alt.items():
            was = feed_layout[name]
            whose = "the model is" if was == ref.layouts.get(name) else "its manifest declares"
            parts.append(f"artifact expects {layout} input but {whose} {was}" if single else
                         f"artifact expects input {name!r} in {layout} but {whose} {was}")
        for name in flips:
            layout = ref.output_layouts[name]
            parts.append(f"artifact returns output {name!r} in {flipped(layout)} but the "
                         f"model's is {layout}")
        return "; ".join(parts)
    return None


def _swapped_outputs(ref: Reference, got: Mapping[str, np.ndarray],
                     comparisons: list[OutputComparison], settings: Settings,
                     fmt: str, tier: Tier | None = None) -> list[str]:
    """Failing outputs whose values match another model output: bound to the wrong name."""
    notes = []
    for c in comparisons:
        if c.passed or c.name not in got or c.name in ref.stochastic:
            continue
        for other, y in ref.outputs.items():
            if other == c.name or other in ref.stochastic or y.shape != np.shape(got[c.name]):
                continue
            if settings.compare(ref, other, got[c.name], fmt, tier).passed:
                notes.append(f"output {c.name!r} holds the values of the model's {other!r}: "
                             "the artifact binds its outputs to the wrong names")
                break
    return notes


def _numeric_diagnosis(comparisons: list[OutputComparison], tier: Tier | None = None) -> str:
    failing = [c for c in comparisons if not c.passed]
    nonfinite = [c.reason for c in failing if c.nonfinite]
    if nonfinite:
        return "; ".join(nonfinite)
    texts = [c.reason for c in failing]
    if tier is not None:  # the figures that fall short of the tier say it all
        return "; ".join(texts)
    cosines = [c.cosine for c in failing if c.cosine is not None]
    ratios = [c.noise_ratio for c in failing if c.noise_ratio is not None]
    if ratios and max(ratios) <= 4 * NOISE_MULTIPLE:
        texts.append(f"within {max(ratios):.3g} noise floors of the model: float32 rounding "
                     "amplified by the model rather than a wrong artifact; loosen "
                     "--atol/--rtol if acceptable")
    elif cosines and min(cosines) >= 0.9999:
        texts.append("the outputs agree in direction (cosine >= 0.9999): a precision "
                     "difference rather than wrong weights; loosen --atol/--rtol if acceptable")
    elif cosines:
        texts.append(f"cosine {min(cosines):.6f} < 0.9999: beyond precision noise, the "
                     "artifact computes something else (weights or an op differ from the model)")
    return "; ".join(texts)


def check_artifact(target: Target, ref: Reference, settings: Settings,
                   out_layouts: Mapping[str, tuple[str | None, str | None]] | None = None,
                   layers: Any = None) -> ArtifactResult:
    """Validate one artifact against the reference; never raises for a bad artifact.
    With ``layers`` (a ``drift.LayerReference``), also compare it layer by layer."""
    t0 = time.monotonic()
    result = ArtifactResult(str(target.path), target.format, warnings=list(target.notes))
    tier = tier_for(settings.tiers, target.quantization) if target.quantization else None
    result.tier = tier.to_dict() if tier else None
    feed_layout = _declared(target, ref)
    result.layout = {n: (l or "none") for n, l in feed_layout.items()}
    try:
        binding = bind(open_runner(str(target.path), target.format),
                       list(ref.feeds), list(ref.outputs))
    except ArtifactRunError as e:
        result.diagnosis = str(e)
        result.seconds = time.monotonic() - t0
        return result
    result.warnings += binding.notes
    problems = _shape_problems({n: binding.artifact_input(n).shape for n in binding.inputs},
                               ref, feed_layout, "the artifact")
    if target.record is not None:  # a manifest that contradicts the model misleads users
        result.warnings += _shape_problems({t.name: t.shape for t in target.record.inputs},
                                           ref, feed_layout, "the manifest")
    got: dict[str, np.ndarray] = {}
    try:
        got = run_artifact(binding, ref.feeds, ref.layouts, feed_layout, out_layouts,
                           target.fixed_batch)
        draws = None
        if ref.stochastic:
            draws = run_artifact(binding, ref.draw_feeds, ref.layouts, feed_layout,
                                 out_layouts, target.fixed_batch)
            again = run_artifact(binding, ref.feeds, ref.layouts, feed_layout, out_layouts,
                                 target.fixed_batch)
            result.warnings += [n for n in (frozen_note(k, got, again)
                                            for k in ref.stochastic) if n]
        result.outputs = _compare_all(ref, got, binding, settings, target.format, draws, tier)
    except ArtifactRunError as e:
        problems.append(str(e))
        result.outputs = [settings.compare(ref, n, None, target.format, tier)
                          for n in ref.outputs]
        for c in result.outputs:
            c.reason = "not produced: the run failed"
    result.values = dict(got)
    numeric_ok = not problems and all(c.passed for c in result.outputs)
    reasons: list[str] = []
    if ref.nonfinite:
        reasons.append(f"the Keras model itself outputs NaN/Inf for these inputs "
                       f"({', '.join(ref.nonfinite)}); {REAL_INPUTS_HINT}")
    if ref.degenerate and not settings.allow_degenerate:
        verb = "is" if len(ref.degenerate) == 1 else "are"
        if ref.degenerate_why:  # the model itself is constant: no input can help
            reasons.append(f"{DEGENERATE} ({', '.join(ref.degenerate)} {verb} the same for "
                           f"every sample): {ref.degenerate_why}; no input can show parity, "
                           "pass --allow-degenerate to accept a matching constant")
        else:
            reasons.append(f"{DEGENERATE} ({', '.join(ref.degenerate)} {verb} the same for "
                           f"every sample), so parity is not demonstrated; "
                           f"{REAL_INPUTS_HINT}, or pass --allow-degenerate")
    if not numeric_ok:
        nan = any(c.nonfinite for c in result.outputs)
        layout = None if nan else _layout_diagnosis(binding, target, ref, feed_layout,
                                                    out_layouts, settings, got, tier)
        if layout:
            reasons.append(layout)
        else:
            reasons += problems
            swapped = _swapped_outputs(ref, got, result.outputs, settings, target.format, tier)
            reasons += swapped or ([_numeric_diagnosis(result.outputs, tier)] if got else [])
    result.passed = numeric_ok and not reasons
    result.diagnosis = "; ".join(r for r in reasons if r)
    if layers is not None:
        _add_drift(result, binding, target, ref, layers, settings, feed_layout, out_layouts)
    result.seconds = time.monotonic() - t0
    return result


def _add_drift(result: ArtifactResult, binding: Binding, target: Target, ref: Reference,
               layers: Any, settings: Settings, feed_layout: Mapping[str, str | None],
               out_layouts: Mapping[str, tuple[str | None, str | None]] | None) -> None:
    from modelport.validators.drift import artifact_drift

    try:
        drift = artifact_drift(binding, target, ref, layers, settings, feed_layout, out_layouts)
    except (ArtifactRunError, NotImplementedError) as e:
        result.warnings.append(f"no layer-wise drift: {e}")
        result.layers = []
        return
    result.layers = drift.layers
    result.first_divergent_layer = drift.first_divergent
    result.layer_growth = drift.growth
    result.name_map = drift.map
