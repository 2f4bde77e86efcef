"""``validate``: the same inputs through the Keras model and every artifact, one verdict each.

The model is loaded once and run on the feeds (the seeded samples, drawn from the domain
each input declares, or the user's, plus one layout probe row), then a few more times to
measure its own float32 noise floor (the default rule) and to find outputs that are random
at inference; each artifact then runs in its own runtime on those very arrays, transposed
only where its manifest declares another layout.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from modelport.core.errors import UserInputError
from modelport.validators.artifacts import Target, discover, fixed_feed_shapes
from modelport.validators.check import Settings, check_artifact
from modelport.validators.diagnose import constant_layer
from modelport.validators.feeds import pick_feeds
from modelport.validators.inputs import parse_shape_overrides
from modelport.validators.layout import implied_layout, is_layout
from modelport.validators.reference import (
    DEGENERATE, Reference, check_outputs, fixed_state, layout_warnings,
)
from modelport.validators.report import ValidationReport
from modelport.validators.rule import conditioning_warnings, floor_free, measure, rule_text
from modelport.validators.tiers import QUANTIZED_SAMPLES, resolve_tiers, synthetic_note

__all__ = ["validate", "Baseline", "baseline", "check_targets"]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
InputsArg = PathLike | Mapping[str, np.ndarray] | np.ndarray | None


def validate(
    model: Any,
    artifacts: PathLike | Sequence[PathLike],
    *,
    inputs: InputsArg = None,
    samples: int | None = None,
    seed: int = 0,
    atol: float | None = None,
    rtol: float | None = None,
    tolerances: Mapping[str, Any] | None = None,
    tiers: Mapping[str, Any] | None = None,
    shapes: Mapping[str, Sequence[int]] | Sequence[str] | None = None,
    allow_degenerate: bool = False,
    save_inputs: PathLike | None = None,
    probe: bool = True,
    custom_objects: Any = None,
    trust_lambda: bool = False,
    layers: bool = False,
) -> ValidationReport:
    """Compare every artifact with the Keras model on identical inputs.

    Args:
        model: a ``.h5``/``.keras`` path or an already loaded ``SourceModel``.
        artifacts: artifact paths and/or directories (a directory means every artifact
            in it, with the layouts its ``*.manifest.json`` declares).
        inputs: a ``.npz`` (arrays by input name) or ``.npy`` path, a dict of arrays, or
            one array for a single-input model; ``None`` generates seeded inputs.
        samples: how many samples to generate (ignored with ``inputs``); default 4, or
            ``QUANTIZED_SAMPLES`` when a quantized artifact is among them.
        seed: the generator's seed.
        atol, rtol: replace the default rule (atol: ``NOISE_MULTIPLE`` times the model's
            measured noise floor per output and sample; rtol: 1e-3 for float32).
        tolerances: per-format overrides: ``{"tflite": (atol, rtol)}`` (either may be
            ``None``), ``{"tflite": {"atol": 1e-3}}`` or ``{"tflite": atol}``.
        tiers: accuracy tiers of quantized artifacts per mode, replacing the defaults'
            figures (``{"int8": {"cosine": 0.99, "top1": 0.95}}``, ``tiers.parse_tiers``).
        shapes: concrete shapes for inputs with unknown dimensions, by input name
            (``{"image": [1, 224, 224, 3]}`` or ``["image=1,224,224,3"]``); the batch
            dimension is always ``samples``. Dimensions the artifacts' manifests fix
            (``convert --input-shape``) are fed as fixed without being given here.
        allow_degenerate: pass artifacts even when the model's outputs ignore the inputs.
        save_inputs: write the inputs used (without the probe row) to this ``.npz``.
        probe: add the layout probe row (values that encode their own position).
        custom_objects, trust_lambda: as for ``modelport.loading.source.load``.
        layers: also compare every layer output (``drift.py``): each result gains the
            per-layer comparisons, the first divergent layer and the name map.

    Returns:
        The report; ``report.passed`` and ``report.exit_code`` give the verdict.

    Raises:
        UserInputError: the model, an artifact path or the inputs are unusable.
    """
    from modelport.loading.source import SourceModel, load

    if samples is not None and samples < 1:
        raise UserInputError(f"--samples must be at least 1, not {samples}")
    settings = Settings(atol, rtol, _per_format(tolerances), allow_degenerate,
                        resolve_tiers(tiers))
    overrides = _shapes(shapes)
    source = model if isinstance(model, SourceModel) else load(
        model, custom_objects=custom_objects, trust_lambda=trust_lambda)
    paths = [artifacts] if isinstance(artifacts, (str, os.PathLike)) else list(artifacts)
    if not paths:
        raise UserInputError("no artifacts given; pass artifact files or a directory of them")
    targets, warnings = discover(paths, source.stem)
    quantized = [str(t.path) for t in targets if t.quantization]
    if samples is None:
        samples = QUANTIZED_SAMPLES if quantized and inputs is None else 4
    # artifacts converted with fixed input shapes are fed those shapes
    overrides = fixed_feed_shapes(
        source.inputs, source.layout,
        [(str(t.path), t.record.inputs, t.record.layout) for t in targets if t.record],
        overrides)
    base = baseline(source, settings, inputs=inputs, samples=samples, seed=seed,
                    shapes=overrides, save_inputs=save_inputs, probe=probe)
    report = check_targets(base, targets, layers=layers)
    report.warnings[:0] = warnings
    if quantized and inputs is None:
        report.warnings.append(synthetic_note(quantized, "inputs generated from the "
                                              "model's declared input domain"))
    return report


@dataclass
class Baseline:
    """The Keras model's side of a validation, computed once and reused for every artifact
    (``validate`` checks discovered artifacts against it; ``convert`` checks each route's
    artifact before it takes its final name)."""

    source: Any
    settings: Settings
    ref: Reference
    output_layouts: dict[str, str]  # the model's layout per output name
    report: ValidationReport  # with the run's facts and warnings, no results yet
    ids: list[str] = field(default_factory=list)  # inputs holding ids (never perturbed)
    _layers: Any = None
    _predict: Any = None  # the Keras model's function the reference came from
    _picked: Any = None  # how the feeds were picked (``feeds.pick_feeds``)
    _floored: bool = False  # ``measure_floor`` ran

    @property
    def measured(self) -> bool:
        """Whether the rule rests on the measured noise floor (``baseline(lazy_floor)``)."""
        return self.ref.floor_measured

    def measure_floor(self) -> None:
        """Measure the noise floor (once): the rule, the random outputs, and what the
        reference can prove under them (the report's rule, floors and warnings)."""
        if self._floored:
            return
        self._floored = True
        self.ref.floor_measured = True
        self.ref.measured, self.ref.stochastic = {}, []
        self.judge_reference(measure(self.ref, self.source, self._predict, self.ids))

    def judge_reference(self, warnings: list[str]) -> None:
        """What the reference can prove under the current rule: degenerate, non-finite and
        barely varying outputs, invisible layouts, ill-conditioning (measured floors
        only); the report's warnings, rule and floors follow."""
        ref, source, settings, picked = self.ref, self.source, self.settings, self._picked
        ref.degenerate, ref.nonfinite, ref.warnings = [], [], []
        warnings = list(picked.warnings) + list(warnings)

        def rule(name: str, y: np.ndarray) -> Any:
            return settings.for_output(ref, name)

        check_outputs(ref, rule)
        warnings += ref.warnings
        # only inputs the model gives a layout; a "none" input is transposed only to
        # explain a failure
        with_layout = {k: v for k, v in ref.layouts.items()
                       if is_layout(source.layout.get(k))}
        warnings += layout_warnings(ref.feeds, with_layout, self._predict,
                                    {t.name: t for t in source.inputs}, rule,
                                    skip=ref.stochastic)
        if ref.degenerate:
            ref.degenerate_why = constant_layer(source, ref.feeds) or ""
            if settings.allow_degenerate:
                warnings.append(f"{DEGENERATE} ({', '.join(ref.degenerate)}); parity is not "
                                "demonstrated (allowed by --allow-degenerate)")
        if ref.floor_measured:
            warnings += conditioning_warnings(ref, source, self._predict, picked)
        r = self.report
        r.warnings, r.degenerate = warnings, list(ref.degenerate)
        r.rule = rule_text(ref, settings)
        r.noise_floors = {k: t.noise_floor for k, t in ref.measured.items()} \
            if ref.floor_measured else {}
        r.stochastic = list(ref.stochastic)

    def layer_reference(self) -> Any:
        """The Keras model's layer outputs on the feeds and their rules (computed once,
        ``drift.layer_reference``).

        Raises:
            ValueError: the model cannot be read layer by layer.
        """
        if self._layers is None:
            from modelport.validators.drift import layer_reference

            self._layers = layer_reference(self.source, self.ref.feeds, self.ids,
                                           random_outputs=bool(self.ref.stochastic))
        return self._layers


def baseline(source: Any, settings: Settings | None = None, *, inputs: InputsArg = None,
             samples: int = 4, seed: int = 0, shapes: Mapping[str, list[int]] | None = None,
             save_inputs: PathLike | None = None, probe: bool = True,
             lazy_floor: bool = False) -> Baseline:
    """Feeds (generated in the model's domain, or the user's), the Keras model's outputs
    on them, the rule each output is judged by (its measured noise floor), and the
    warnings about how much they can prove.

    ``lazy_floor``: measure the noise floor only when an artifact needs it
    (``check_targets``). Until then each float output is judged by the rule's floor-free
    minimum, ``KERNEL_RTOL`` of each sample's largest value: a measured floor only widens
    the rule (``compare.measured_tolerance`` is monotone in it), so an artifact that passes
    the minimum passes the measured rule too, and the verdicts are ``validate``'s. The
    report then says the floor was not measured.

    Raises:
        UserInputError: the inputs are unusable or the model cannot run on them.
    """
    settings = settings or Settings()
    specs = source.inputs
    predict = _reference_fn(source)
    picked = pick_feeds(source, predict, inputs=inputs, samples=samples, seed=seed,
                        shapes=shapes, probe=probe, save_inputs=save_inputs)
    feeds = picked.feeds
    layouts = {t.name: implied_layout(source.layout.get(t.name), len(t.shape or []), t.dtype)
               for t in specs}
    out_model_layouts = _output_layouts(source)
    ref = Reference(feeds, picked.outputs, picked.samples, probe, layouts, {
        t.name: implied_layout(out_model_layouts.get(t.name), len(t.shape or []), t.dtype)
        for t in source.outputs})
    report = ValidationReport(
        model=str(source.path), samples=picked.samples, probe=probe,
        seed=seed if inputs is None else None, inputs=picked.described(), source=source)
    base = Baseline(source, settings, ref, out_model_layouts, report, list(picked.ids),
                    _predict=predict, _picked=picked)
    if lazy_floor:
        ref.measured = floor_free(ref)
        ref.floor_measured = False
        base.judge_reference([])
    else:
        base.measure_floor()
    return base


def check_targets(base: Baseline, targets: Sequence[Target],
                  layers: bool = False) -> ValidationReport:
    """Run every target in its runtime on the baseline's feeds; one result each (with
    ``layers``, each also compared layer by layer). A float artifact that fails the
    floor-free minimum of a lazy baseline is judged again once the floor is measured."""
    extra: list[str] = []
    layer_ref = None
    if layers:
        try:
            layer_ref = base.layer_reference()
            extra += layer_ref.warnings
        except ValueError as e:
            extra.append(f"no layer-wise drift: {e}")
    results = []
    for target in targets:
        log.info("validating %s (%s)", target.path, target.format)
        result = check_artifact(target, base.ref, base.settings,
                                _out_layouts(target, base.output_layouts), layer_ref)
        if not result.passed and not base.measured and not target.quantization:
            base.measure_floor()
            result = check_artifact(target, base.ref, base.settings,
                                    _out_layouts(target, base.output_layouts), layer_ref)
        results.append(result)
        extra += [f"{target.path}: {w}" for w in result.warnings]
    report = copy.copy(base.report)  # after any measurement: its rule, floors, warnings
    report.results = results
    report.warnings = list(base.report.warnings) + extra
    report.degenerate = list(base.report.degenerate)
    report.stochastic = list(base.report.stochastic)
    report.noise_floors = dict(base.report.noise_floors)
    report.reference = dict(base.ref.outputs)
    return report


def _shapes(shapes: Mapping[str, Sequence[int]] | Sequence[str] | None) -> dict[str, list[int]]:
    if not shapes:
        return {}
    if isinstance(shapes, Mapping):
        return {k: [int(d) for d in v] for k, v in shapes.items()}
    return parse_shape_overrides([str(s) for s in shapes])


def _per_format(tolerances: Mapping[str, Any] | None) -> dict[str, tuple[float | None, float | None]]:
    from modelport import converters

    out: dict[str, tuple[float | None, float | None]] = {}
    for fmt, value in (tolerances or {}).items():
        names = converters.parse_formats(fmt)
        if len(names) != 1:
            raise UserInputError(f"tolerances: {fmt!r} is not one format; use one of "
                                 f"{', '.join(converters.names())}")
        name = names[0]
        if isinstance(value, Mapping):
            out[name] = (value.get("atol"), value.get("rtol"))
        elif isinstance(value, (int, float)):
            out[name] = (float(value), None)
        else:
            atol, rtol = (list(value) + [None])[:2]
            out[name] = (atol, rtol)
    return out


def _reference_fn(source: Any):
    """``source.predict``, run in chunks when the model declares a fixed batch size
    (stateful RNNs): the reference must see what such a model accepts."""
    fixed = next((t.shape[0] for t in source.inputs
                  if t.shape and isinstance(t.shape[0], int) and t.shape[0] > 0), None)
    if not fixed:
        return fixed_state(source.predict, getattr(source, "model", None))

    def predict(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = next(iter(feeds.values())).shape[0]
        if n == fixed:
            return source.predict(feeds)
        parts = []
        for start in range(0, n, fixed):
            chunk = {k: v[start:start + fixed] for k, v in feeds.items()}
            short = fixed - next(iter(chunk.values())).shape[0]
            if short:  # pad the last chunk with copies of its first row, then drop them
                chunk = {k: np.concatenate([v] + [v[:1]] * short) for k, v in chunk.items()}
            out = source.predict(chunk)
            parts.append({k: np.asarray(v)[:fixed - short] for k, v in out.items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    return fixed_state(predict, getattr(source, "model", None))


def _output_layouts(source: Any) -> dict[str, str]:
    from modelport.loading.channels_first import describe_layout

    return describe_layout(source.outputs, source.data_format)


def _out_layouts(target: Target, model: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Outputs the manifest declares in another layout than the model's (NCHW ONNX heads)."""
    declared = target.declared_layout or {}
    return {name: (declared[name], layout) for name, layout in model.items()
            if is_layout(declared.get(name)) and is_layout(layout)
            and declared[name] != layout and len(declared[name]) == len(layout)}


def saved_path(path: PathLike) -> Path:
    """Where ``save_inputs`` ends up (``.npz`` appended when missing)."""
    p = Path(path)
    return p if p.suffix == ".npz" else p.with_name(p.name + ".npz")
