"""The validation report: per-artifact verdicts, the JSON form and the terminal table."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.core.errors import EXIT_MISMATCH, EXIT_OK
from modelport.core.text import table
from modelport.validators.compare import OutputComparison
from modelport.validators.tiers import Tier

__all__ = ["ArtifactResult", "ValidationReport", "format_report", "write_json"]


def _clean(x: Any) -> Any:
    """JSON has no NaN/Inf: report them as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _worst(values: list[float | None], pick=max) -> float | None:
    known = [v for v in values if v is not None]
    if any(math.isnan(v) for v in known):
        return float("nan")  # an output with NaN/Inf has no meaningful error size
    return pick(known) if known else None


@dataclass
class ArtifactResult:
    """The verdict on one artifact; the error numbers are the worst over its outputs."""

    artifact: str
    format: str
    passed: bool = False
    outputs: list[OutputComparison] = field(default_factory=list)
    diagnosis: str = ""
    layout: dict[str, str] = field(default_factory=dict)  # the layout it was fed in
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    tier: dict[str, Any] | None = None  # the accuracy tier of a quantized artifact
    # with --layers: each mapped layer's comparison (drift.LayerDrift), the first that
    # fails, where the error grows the most, and the name map (layermap.NameMap)
    layers: list[Any] | None = None
    first_divergent_layer: str | None = None
    layer_growth: list[dict[str, Any]] = field(default_factory=list)
    name_map: Any = None
    # the artifact's outputs by model output name (for the HTML report; not in JSON)
    values: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def max_abs_error(self) -> float | None:
        return _worst([o.max_abs_error for o in self.outputs])

    @property
    def max_rel_error(self) -> float | None:
        return _worst([o.max_rel_error for o in self.outputs])

    @property
    def mean_abs_error(self) -> float | None:
        return _worst([o.mean_abs_error for o in self.outputs])

    @property
    def p99_abs_error(self) -> float | None:
        return _worst([o.p99_abs_error for o in self.outputs])

    @property
    def min_passing_atol(self) -> float | None:
        """The smallest atol (at the rtol used) with which every output would pass."""
        return _worst([o.min_passing_atol for o in self.outputs])

    @property
    def noise_ratio(self) -> float | None:
        """The largest error in noise floors of its sample (measured rule only)."""
        return _worst([o.noise_ratio for o in self.outputs])

    @property
    def cosine(self) -> float | None:
        return _worst([o.cosine for o in self.outputs], min)

    @property
    def top1_agreement(self) -> float | None:
        return _worst([o.top1_agreement for o in self.outputs], min)

    @property
    def sqnr_db(self) -> float | None:
        """The lowest SQNR over the outputs (computed for quantized artifacts)."""
        return _worst([o.sqnr_db for o in self.outputs], min)

    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "artifact": self.artifact, "format": self.format, "passed": self.passed,
            "max_abs_error": self.max_abs_error, "max_rel_error": self.max_rel_error,
            "mean_abs_error": self.mean_abs_error, "p99_abs_error": self.p99_abs_error,
            "min_passing_atol": self.min_passing_atol, "noise_ratio": self.noise_ratio,
            "cosine": self.cosine,
            "top1_agreement": self.top1_agreement, "sqnr_db": self.sqnr_db,
            "tier": self.tier, "diagnosis": self.diagnosis,
            "layout": dict(self.layout), "warnings": list(self.warnings),
            "seconds": round(self.seconds, 3),
            "outputs": [o.to_dict() for o in self.outputs],
            **self._layers_dict(),
        })

    def _layers_dict(self) -> dict[str, Any]:
        if self.layers is None:
            return {}
        return {"layers": [l.to_dict() for l in self.layers],
                "first_divergent_layer": self.first_divergent_layer,
                "layer_growth": list(self.layer_growth),
                "name_map": self.name_map.to_dict() if self.name_map is not None else None}


@dataclass
class ValidationReport:
    """Everything ``validate`` found; ``passed`` only when every artifact passed.

    ``warnings`` holds the run's warnings and, prefixed with the artifact path, each
    artifact's own (also kept on its result).
    """

    model: str
    results: list[ArtifactResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    samples: int = 0
    probe: bool = True
    seed: int | None = None
    # name -> shape, dtype, distribution (what the values were drawn from) and why
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    degenerate: list[str] = field(default_factory=list)  # outputs that ignore the inputs
    rule: str = ""  # the pass/fail rule applied, in words
    noise_floors: dict[str, float | None] = field(default_factory=dict)  # per float output
    stochastic: list[str] = field(default_factory=list)  # outputs compared by distribution
    # the Keras model's outputs on the feeds (for the HTML report; not in JSON)
    reference: dict[str, Any] | None = field(default=None, repr=False)
    source: Any = field(default=None, repr=False)  # the loaded model (not in JSON)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.passed else EXIT_MISMATCH

    def result(self, fmt: str) -> ArtifactResult | None:
        """The first result for format ``fmt`` (convenient when there is one per format)."""
        return next((r for r in self.results if r.format == fmt), None)

    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "passed": self.passed, "model": self.model,
            "results": [r.to_dict() for r in self.results],
            "warnings": list(self.warnings), "samples": self.samples,
            "layout_probe": self.probe, "seed": self.seed, "inputs": self.inputs,
            "degenerate_outputs": list(self.degenerate), "rule": self.rule,
            "noise_floors": dict(self.noise_floors), "random_outputs": list(self.stochastic),
        })

    def to_json(self) -> str:
        """Strict JSON (NaN and Inf are reported as null)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def write_json(self, path: str | Path) -> Path:
        return write_json(self, path)


def write_json(report: ValidationReport, path: str | Path) -> Path:
    from modelport.core.atomic import atomic_path

    p = Path(path)
    with atomic_path(p) as tmp:
        tmp.write_text(report.to_json())
    return p


def _num(x: float | None, cosine: bool = False) -> str:
    if x is None:
        return "-"
    if math.isnan(x):
        return "nan"
    if cosine:
        return f"{x:.6f}"
    return "0" if x == 0 else f"{x:.2e}"


def layer_lines(r: ArtifactResult) -> list[str]:
    """The layer-wise summary of one artifact (nothing without ``--layers``)."""
    if r.layers is None:
        return []
    if not r.layers:
        return [f"layers {r.format}: not compared (see warnings)"]
    counts = r.name_map.counts() if r.name_map is not None else {}
    total = sum(counts.values())
    fused = counts.get("fused", 0) + counts.get("none", 0)
    head = (f"layers {r.format}: {len(r.layers)} of {total} layer outputs compared"
            + (f" ({fused} fused or without counterpart)" if fused else ""))
    first = next((l for l in r.layers if l.layer == r.first_divergent_layer), None)
    if first is None:
        head += "; every one within tolerance"
    else:
        sq = "exact" if first.sqnr_db is None else f"{first.sqnr_db:.1f} dB"
        head += (f"; first divergent: {first.layer} ({first.class_name}, cosine "
                 f"{_num(first.cosine, True)}, SQNR {sq}, max abs {_num(first.max_abs_error)})")
        if first.fused:
            head += f", its tensor also carries the fused {', '.join(first.fused)}"
    lines = [head]
    if r.layer_growth and first is not None:
        lines.append("    error grows most at: " + ", ".join(
            f"{g['layer']} (relative error {g['before']:.2g} -> {g['relative_error']:.2g})"
            for g in r.layer_growth))
    return lines


def format_report(report: ValidationReport) -> str:
    """A table (one row per artifact), then the diagnoses of failures and the warnings."""
    rows = [("artifact", "format", "result", "max abs", "max rel", "p99 abs", "cosine",
             "top-1", "atol to pass", "noise floors", "SQNR dB")]
    for r in report.results:
        top1 = "-" if r.top1_agreement is None else f"{r.top1_agreement:.1%}"
        ratio = "-" if r.noise_ratio is None or r.tier else f"{r.noise_ratio:.3g}"
        sqnr = "-" if r.sqnr_db is None else f"{r.sqnr_db:.1f}"
        rows.append((r.artifact, r.format, "PASS" if r.passed else "FAIL",
                     _num(r.max_abs_error), _num(r.max_rel_error), _num(r.p99_abs_error),
                     _num(r.cosine, True), top1,
                     "-" if r.tier else _num(r.min_passing_atol), ratio, sqnr))
    lines = [f"input {k}: {v['distribution']} ({v['why']})" for k, v in report.inputs.items()
             if "distribution" in v]
    lines += table(rows, header=True)
    failed = [r for r in report.results if not r.passed]
    for r in failed:
        lines.append(f"FAIL {r.artifact}: {r.diagnosis or 'outputs differ'}")
        for o in r.outputs:
            if not o.passed and o.reason and o.reason not in r.diagnosis:
                lines.append(f"    {o.reason}")
    lines += _tier_lines(report)
    for r in report.results:
        lines += layer_lines(r)
    if report.rule:
        floors = ", ".join(f"{k} {v:.3g}" for k, v in report.noise_floors.items()
                           if v is not None)
        lines.append(f"rule: {report.rule}" + (f" (noise floors: {floors})" if floors else ""))
    if report.warnings:
        lines.append("warnings:")
        lines += [f"  - {w}" for w in report.warnings]
    feed = f"{report.samples} sample(s)" + (" + 1 layout probe" if report.probe else "")
    seed = "" if report.seed is None else f", seed {report.seed}"
    n_ok = len(report.results) - len(failed)
    verdict = "PASSED" if report.passed else "FAILED"
    lines.append(f"{verdict}: {n_ok} of {len(report.results)} artifact(s) match the Keras "
                 f"model ({feed}{seed})")
    return "\n".join(lines)


def _tier_lines(report: ValidationReport) -> list[str]:
    """One line per quantized artifact: the tier it was judged by and its figures."""
    lines = []
    for r in report.results:
        if not r.tier:
            continue
        tier = Tier(**r.tier)
        got = [f"cosine {_num(r.cosine, True)}",
               f"SQNR {'-' if r.sqnr_db is None else f'{r.sqnr_db:.1f}'} dB",
               f"max abs error {_num(r.max_abs_error)}"]
        if r.top1_agreement is not None:
            got.append(f"top-1 agreement {r.top1_agreement:.1%}")
        lines.append(f"tier {tier.mode} ({tier.describe()}) for {r.artifact}: "
                     + ", ".join(got))
    return lines
