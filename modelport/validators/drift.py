"""Layer-wise drift: where, inside the network, an artifact starts to differ.

The Keras side is every layer output (``loading.layer_outputs``) on the validation's feeds,
with its own measured noise floor (``noise.measure_noise`` over the same sub-model, so each
layer is judged by the rule the outputs are judged by). The artifact side is the tensor the
name map (``layermap``) found for each layer, read through the runner's optional
``run_with`` (ONNX: extra graph outputs on a copy; TFLite: an interpreter that preserves
every tensor, quantized ones dequantized; ``.pb`` and SavedModel: a session over the graph).

Per layer: cosine, SQNR (dB), max abs error and whether every element is within the
tolerance; per artifact: the first layer, in topological order, that is not, and the
layers where the relative error grows the most over their inputs'.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from modelport.core.text import one_line
from modelport.validators.compare import Tolerance, measured_tolerance
from modelport.validators.layermap import NameMap, build_map
from modelport.validators.run import Binding, run_artifact_with

__all__ = ["LayerDrift", "LayerReference", "Drift", "layer_reference", "artifact_drift",
           "sqnr_db", "GROWTH_TOP"]

log = logging.getLogger(__name__)

GROWTH_TOP = 3  # how many layers "where error grows the most" are reported
LAYER_DRAWS = 1  # perturbed runs measuring the layers' noise floors


@dataclass
class LayerDrift:
    """One layer output compared in one artifact."""

    layer: str
    tensor: str | None
    cosine: float | None
    sqnr_db: float | None  # None: no error at all (infinite SQNR)
    max_abs_error: float | None
    passed: bool
    class_name: str = ""
    method: str = ""  # how the tensor was found (the name map's method)
    index: int | None = None  # TFLite tensor index
    relative_error: float | None = None
    atol: float | None = None
    fused: list[str] = field(default_factory=list)  # layers whose output this tensor hides

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LayerReference:
    """The Keras model's layer outputs on the validation's feeds, and each one's rule."""

    entries: list[Any]
    values: dict[str, np.ndarray]
    tolerances: dict[str, Tolerance]
    stochastic: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    energy: dict[str, float] = field(default_factory=dict)  # sum of squares, once per layer


@dataclass
class Drift:
    """One artifact's layer-wise comparison."""

    map: NameMap
    layers: list[LayerDrift]
    first_divergent: str | None
    growth: list[dict[str, Any]]  # {layer, relative_error, before, jump}, largest first

    @property
    def largest_jump(self) -> str | None:
        return self.growth[0]["layer"] if self.growth else None


def sqnr_db(got: np.ndarray, ref: np.ndarray) -> float | None:
    """Signal-to-quantization-noise ratio ``10 log10(sum ref^2 / sum (got - ref)^2)``;
    ``None`` when the two are equal."""
    a, b = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    noise = float(np.sum((a[ok] - b[ok]) ** 2))
    signal = float(np.sum(b[ok] ** 2))
    if not ok.all():
        return -math.inf
    if noise == 0:
        return None
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def layer_reference(source: Any, feeds: Mapping[str, np.ndarray],
                    ids: Sequence[str] = (), random_outputs: bool = True) -> LayerReference:
    """Every layer output of the Keras model on ``feeds``, and its measured rule
    (``random_outputs``: whether some model output is random at inference; when none is,
    no layer is looked for randomness).

    Raises:
        ValueError: the model has no functional graph to cut into layers.
    """
    from modelport.loading.layer_outputs import layer_outputs, layer_values
    from modelport.validators.noise import measure_noise

    entries = layer_outputs(source)
    if not entries:
        raise ValueError("the model is not a functional graph (a subclassed model): its "
                         "layer outputs cannot be read")
    values = layer_values(source, feeds, entries)
    floats = {k: v for k, v in values.items() if v.dtype.kind == "f"}
    warnings: list[str] = []
    try:
        # one perturbed run, not the outputs' three: every layer of a deep net gets its
        # floor from the same run, and the rule's 32x multiple leaves room for the rest
        noise = measure_noise(lambda f: layer_values(source, f, entries), feeds, floats,
                              getattr(source, "model", None), draws=LAYER_DRAWS, fixed=ids,
                              rerun=random_outputs)
        stochastic = list(noise.stochastic)
        tolerances = {k: measured_tolerance(v.dtype, _row_peaks(v), noise.floors[k])
                      for k, v in floats.items() if k in noise.floors and k not in stochastic}
    except Exception as e:  # the sub-model refuses perturbed feeds: the dtype rule
        log.debug("layer noise floors not measured", exc_info=True)
        warnings.append(f"the layers' noise floors could not be measured ({one_line(e)}); "
                        "the fixed default tolerances apply to them")
        stochastic, tolerances = [], {}
    if stochastic:
        warnings.append(f"layer output(s) {', '.join(stochastic)} are random at inference: "
                        "not compared layer by layer")
    return LayerReference(entries, values, tolerances, stochastic, warnings)


def _row_peaks(v: np.ndarray) -> np.ndarray:
    """Each sample's largest finite |value|, shaped ``[samples, 1]``: all the measured
    rule reads of a reference (a layer can hold millions of values)."""
    a = np.abs(np.asarray(v))
    if a.ndim == 0 or a.shape[0] == 0 or a.size == 0:
        return a
    a = np.where(np.isfinite(a), a, 0) if not np.isfinite(a).all() else a
    return a.reshape(a.shape[0], -1).max(axis=1, keepdims=True)


def artifact_drift(binding: Binding, target: Any, ref: Any, layers: LayerReference,
                   settings: Any, feed_layout: Mapping[str, str | None],
                   out_layouts: Mapping[str, tuple[str | None, str | None]] | None = None,
                   ) -> Drift:
    """Map the artifact's tensors onto the layers and compare each one.

    Raises:
        ArtifactRunError: the artifact cannot run with its tensors exposed.
        NotImplementedError: its runner cannot expose intermediate tensors.
    """
    runner = binding.runner
    if not runner.exposes_tensors:
        raise NotImplementedError(f"the {runner.format} runner cannot expose intermediate "
                                  "tensors")
    tensors = runner.tensors()
    first: dict[str, np.ndarray] = {}

    def fetch(names: list[str]) -> dict[str, np.ndarray]:
        out, got = run_artifact_with(binding, ref.feeds, ref.layouts, feed_layout, names,
                                     out_layouts, target.fixed_batch)
        first.update({k: v for k, v in out.items() if k not in first})
        return got

    _, graph_outputs = runner.io_tensors()

    def outputs() -> dict[str, tuple[str, np.ndarray]]:
        if not first:
            fetch([])
        return {m: (graph_outputs.get(binding.outputs[m], binding.outputs[m]), first[m])
                for m in first}

    compared = {k: v for k, v in layers.values.items() if k not in layers.stochastic}
    name_map = build_map(layers.entries, compared, tensors, fetch, str(target.path),
                         target.format, outputs)
    rows = _compare(name_map, layers, settings, target.format)
    for row in name_map.rows:  # identities carry their source's numbers
        src = name_map.row(row.note.rsplit(" ", 1)[-1]) if row.status == "identity" else None
        if src is not None:
            row.relative_error = src.relative_error
    failed = next((r.layer for r in rows if not r.passed), None)
    return Drift(name_map, rows, failed, _growth(rows, layers.entries, name_map))


def _compare(name_map: NameMap, layers: LayerReference, settings: Any,
             fmt: str) -> list[LayerDrift]:
    fused_into: dict[str, list[str]] = {}
    for r in name_map.rows:
        if r.status == "fused" and r.note.startswith("fused into "):
            fused_into.setdefault(r.note[len("fused into "):].split("'s tensor")[0],
                                  []).append(r.layer)
    matched = [r for r in name_map.rows
               if r.status == "matched" and r.layer in name_map.values]

    def one(row: Any) -> LayerDrift:
        want = layers.values[row.layer]
        got = name_map.values[row.layer]
        tol = settings.tolerance(want.dtype, fmt, layers.tolerances.get(row.layer))
        if row.layer not in layers.energy:
            flat = np.asarray(want, np.float32).reshape(-1)
            layers.energy[row.layer] = float(np.einsum("i,i->", flat, flat, dtype=np.float64))
        passed, max_abs, cosine, sqnr, rel = _stats(got, want, tol, layers.energy[row.layer])
        row.relative_error = rel  # the map chose on a spread of elements; this is all
        return LayerDrift(row.layer, row.tensor, cosine, sqnr, max_abs, passed,
                          row.class_name, row.method, row.index, rel, tol.atol,
                          fused_into.get(row.layer, []))

    # numpy lets go of the GIL in its loops: the layers are compared on every core
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, matched))


def _stats(got: np.ndarray, want: np.ndarray, tol: Tolerance, ww: float | None = None,
           ) -> tuple[bool, float | None, float | None, float | None, float | None]:
    """``(passed, max abs error, cosine, SQNR dB, relative error)`` of one layer, by the
    rule outputs are judged by (``compare.compare_output``: every element within
    ``atol + rtol*|keras|``, no NaN/Inf where Keras is finite). A deep net's layers hold
    millions of values, so this takes few passes: the difference once, three float64
    sums (``|w|^2``, ``w.d``, ``|d|^2``; ``|g|^2`` and ``g.w`` follow from ``g = w + d``),
    its extremes, and the element-wise rule only when the largest error is not already
    within the smallest atol. ``ww``: ``|want|^2`` when known (the same for every
    artifact)."""
    w = np.asarray(want, np.float32)
    g = np.asarray(got, np.float32).reshape(w.shape)
    d = g - w
    dd = float(np.einsum("i,i->", d.reshape(-1), d.reshape(-1), dtype=np.float64))
    if not math.isfinite(dd):
        fg, fw = np.isfinite(g), np.isfinite(w)
        if not (np.array_equal(fg, fw) and np.array_equal(g[~fg], w[~fw])):
            return False, math.nan, math.nan, -math.inf, math.inf  # NaN/Inf Keras lacks
        g, w = g[fw], w[fw]
        return _stats(g, w, Tolerance(tol.atol, tol.rtol, None, tol.rule))
    max_abs = float(max(d.max(), -d.min())) if d.size else 0.0
    rows = tol.atol_for(want) if g.shape == np.shape(want) else tol.atol
    passed = max_abs <= float(np.min(rows))
    if not passed:
        bound = np.abs(w) * np.float32(tol.rtol)
        bound += np.asarray(rows, np.float32)
        passed = bool((np.abs(d) <= bound).all())
    flat_w, flat_d = w.reshape(-1), d.reshape(-1)
    if ww is None:
        ww = float(np.einsum("i,i->", flat_w, flat_w, dtype=np.float64))
    wd = float(np.einsum("i,i->", flat_w, flat_d, dtype=np.float64))
    gg, gw = max(ww + 2 * wd + dd, 0.0), ww + wd
    if gg == 0 or ww == 0:
        cosine = 1.0 if gg == ww == 0 else 0.0
    else:
        cosine = max(-1.0, min(1.0, gw / math.sqrt(gg * ww)))
    sqnr = None if dd == 0 else (10.0 * math.log10(ww / dd) if ww > 0 else -math.inf)
    rel = math.sqrt(dd / ww) if ww > 0 else (0.0 if dd == 0 else math.inf)
    return passed, max_abs, cosine, sqnr, rel


def _growth(rows: list[LayerDrift], entries: Sequence[Any],
            name_map: NameMap) -> list[dict[str, Any]]:
    """Per compared layer, its relative error minus the largest of its nearest compared
    inputs' (model inputs count as exact); the largest increases first."""
    err = {r.layer: r.relative_error for r in rows if r.relative_error is not None}
    by_key = {e.key: e for e in entries}

    def before(key: str, seen: set[str]) -> float:
        worst = 0.0
        for i in by_key[key].inputs if key in by_key else []:
            if i in seen:
                continue
            seen.add(i)
            worst = max(worst, err[i] if i in err else before(i, seen))
        return worst

    found = []
    for r in rows:
        if r.relative_error is None or not math.isfinite(r.relative_error):
            continue
        prior = before(r.layer, set())
        jump = r.relative_error - prior
        if jump > 0:
            found.append({"layer": r.layer, "relative_error": r.relative_error,
                          "before": prior, "jump": jump})
    return sorted(found, key=lambda g: -g["jump"])[:GROWTH_TOP]
