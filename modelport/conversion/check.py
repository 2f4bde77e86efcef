"""The check ``convert`` runs on every candidate before it takes its final name: a quick
probe (two seeded samples and the layout probe by default) through the validator's own
entry points, ``baseline`` once per conversion and ``check_targets`` per candidate, so
the verdict is exactly what ``validate`` would say on those inputs."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from modelport import converters
from modelport.core.errors import ModelportError
from modelport.core.records import ArtifactRecord
from modelport.core.text import one_line

__all__ = ["CheckOptions", "QuickCheck"]

log = logging.getLogger(__name__)


@dataclass
class CheckOptions:
    """How ``convert`` checks each candidate.

    ``inputs``, ``shapes``, ``atol``, ``rtol`` and ``tolerances`` mean what they mean for
    ``validate`` (``tolerances``: ``{"tflite": (atol, rtol)}``).
    """

    samples: int = 2
    seed: int = 0
    inputs: Any = None
    shapes: Mapping[str, list[int]] | None = None
    atol: float | None = None
    rtol: float | None = None
    tolerances: Mapping[str, tuple[float | None, float | None]] | None = None


class QuickCheck:
    """The Keras side computed once (lazily), then one verdict per candidate.

    ``check`` returns the figures the manifest records: ``status`` is ``"passed"``,
    ``"failed"`` or ``"unchecked"`` (the check itself could not run: the reason says why
    and the artifact is published with a warning, as with ``--no-check``).
    """

    def __init__(self, source: Any, options: CheckOptions) -> None:
        self.source = source
        self.options = options
        self.warnings: list[str] = []
        self._base: Any = None
        self._unavailable: str | None = None

    def _baseline(self) -> Any:
        if self._base is None and self._unavailable is None:
            from modelport.validators.check import Settings
            from modelport.validators.validation import baseline

            o = self.options
            # a model whose outputs ignore the inputs still has outputs to compare;
            # validate is where that is judged
            per_format = {converters.get(k).NAME: v for k, v in (o.tolerances or {}).items()}
            settings = Settings(atol=o.atol, rtol=o.rtol, per_format=per_format,
                                allow_degenerate=True)
            try:
                self._base = baseline(self.source, settings, inputs=o.inputs,
                                      samples=o.samples, seed=o.seed, shapes=o.shapes)
            except ModelportError as e:
                self._unavailable = one_line(e, with_type=False)
            else:
                nonfinite = list(getattr(self._base.ref, "nonfinite", []) or [])
                if nonfinite:
                    self._unavailable = (f"the Keras model itself outputs NaN/Inf for the "
                                         f"check's inputs ({', '.join(nonfinite)})")
            if self._unavailable:
                self.warnings.append(f"artifacts not checked: {self._unavailable}; validate "
                                     "them with --inputs FILE.npz")
        return self._base

    def check(self, fmt: str, path: Path, record: ArtifactRecord) -> dict[str, Any]:
        """Compare the candidate at ``path`` with the Keras model."""
        from modelport.validators.artifacts import Target
        from modelport.validators.validation import check_targets

        base = self._baseline()
        if base is None:
            return {"status": "unchecked", "reason": self._unavailable}
        target = Target(path, fmt, record, notes=list(record.warnings))
        report = check_targets(base, [target])
        fig = figures(report, report.results[0])
        # the candidate sits in a staging directory: its path there means nothing later
        for key in ("summary", "diagnosis"):
            fig[key] = fig[key].replace(f"{path}: ", "").replace(str(path), path.name)
        return fig


def figures(report: Any, result: Any) -> dict[str, Any]:
    """What the manifest records of one check, and a one-line ``summary``."""
    d = result.to_dict()  # NaN/Inf already reported as null
    outputs = [{k: o.get(k) for k in ("name", "passed", "max_abs_error", "cosine")}
               for o in d.get("outputs", [])]
    fig = {
        "status": "passed" if result.passed else "failed",
        "samples": report.samples, "layout_probe": report.probe, "seed": report.seed,
        "max_abs_error": d.get("max_abs_error"), "cosine": d.get("cosine"),
        "rule": _rule(report, result), "outputs": outputs,
        "diagnosis": result.diagnosis, "seconds": round(result.seconds, 3),
    }
    fig["summary"] = _summary(result, fig)
    return fig


def _rule(report: Any, result: Any) -> str:
    """The pass/fail rule the validator applied, as it states it (or as its tolerances
    imply)."""
    stated = getattr(result, "rule", None) or getattr(report, "rule", None)
    if stated:
        return str(stated)
    tols = sorted({(o.atol, o.rtol) for o in result.outputs
                   if getattr(o, "atol", None) is not None})
    if not tols:
        return ""
    parts = ", ".join(f"atol={a:g}, rtol={r:g}" for a, r in tols)
    return f"every element |artifact - keras| <= atol + rtol*|keras| ({parts})"


def _num(x: Any, cosine: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.6f}" if cosine else f"{x:.3g}"


def _summary(result: Any, fig: dict[str, Any]) -> str:
    """``"output 'y': max abs error 0.0194, cosine 0.998813"`` for the outputs that differ,
    else the validator's diagnosis."""
    if result.passed:
        return "matches"
    failing = [o for o in result.outputs if not o.passed and o.max_abs_error is not None]
    if failing:
        return "; ".join(f"output {o.name!r}: max abs error {_num(o.max_abs_error)}, cosine "
                         f"{_num(o.cosine, True)}" for o in failing[:3]) \
            + (f" (+{len(failing) - 3} more)" if len(failing) > 3 else "")
    return one_line(Exception(fig.get("diagnosis") or "outputs differ"), with_type=False)
