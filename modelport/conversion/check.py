"""The check ``convert`` runs on every candidate before it takes its final name: a quick
probe (two seeded samples and the layout probe by default) through the validator's own
entry points, ``baseline`` once per conversion and ``check_targets`` per candidate, so
the verdict is exactly what ``validate`` would say on those inputs. The noise floor is
measured only when a candidate needs it (``baseline(lazy_floor=True)``): a candidate
within the rule's floor-free minimum passes whatever the floor, and one that is not is
judged again under the measured floor (on MobileNetV2 the measurement was 0.5 s of the
check's 2.9 s).

A quantized variant is judged by its mode's accuracy tier, which are statistics: it gets
its own baseline, on the user's ``inputs``, else the calibration set when it is real data
(up to ``QUANTIZED_CHECK_SAMPLES``), else ``QUANTIZED_SAMPLES`` generated samples; the
figures say which (``data``), and synthetic data are flagged in the manifest."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from modelport import converters
from modelport.core.errors import ModelportError
from modelport.core.records import ArtifactRecord
from modelport.core.text import one_line

__all__ = ["CheckOptions", "QuickCheck", "QUANTIZED_CHECK_SAMPLES"]

QUANTIZED_CHECK_SAMPLES = 200

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
    tiers: Mapping[str, Any] | None = None  # accuracy tiers per quantization mode


class QuickCheck:
    """The Keras side computed once (lazily), then one verdict per candidate.

    ``check`` returns the figures the manifest records: ``status`` is ``"passed"``,
    ``"failed"`` or ``"unchecked"`` (the check itself could not run: the reason says why
    and the artifact is published with a warning, as with ``--no-check``).
    """

    def __init__(self, source: Any, options: CheckOptions, calibration: Any = None) -> None:
        self.source = source
        self.options = options
        self.calibration = calibration  # core.records.Calibration, for quantized variants
        self.warnings: list[str] = []
        self._bases: dict[bool, Any] = {}
        self._unavailable: dict[bool, str] = {}
        self.data = ""  # what the quantized variants were judged on
        self._warm: threading.Thread | None = None

    def warm_up(self, serving: Any) -> None:
        """Run the Keras reference once on zeros shaped like the check's feeds, in a
        background thread, while the caller converts. Its first run is TensorFlow
        optimising and instantiating the traced function (0.35 s of MobileNetV2's check),
        work that holds no Python lock, so it takes the second core while the SavedModel
        is saved; the check's own runs then find it done. Only where that cannot change
        anything: the artifacts are traced from the reference's own function
        (``serving``, traced here first), every input's shape is known, and the function
        writes no state (variables, random generators, tables, Python callbacks) that a
        converter could read while it runs. The outputs are discarded."""
        source = self.source
        if self.options.inputs is not None or serving is not source.serving:
            return
        rows = self.options.samples + 1  # and the layout probe row
        feeds = {}
        for t in source.inputs:
            shape = list((self.options.shapes or {}).get(t.name) or t.shape or [])
            if not shape or any(not isinstance(d, int) or d < 1 for d in shape[1:]):
                return
            feeds[t.name] = (rows, *shape[1:]), t.dtype
        try:
            if writes_state(serving.concrete()):
                return
        except Exception:  # tracing fails: the formats say why
            log.debug("no warm-up: tracing failed", exc_info=True)
            return

        def run() -> None:
            import numpy as np

            try:
                source.predict({k: np.zeros(shape, dtype) for k, (shape, dtype) in feeds.items()})
            except Exception:  # only ever a head start: the check runs it for real
                log.debug("warm-up run failed", exc_info=True)

        self._warm = threading.Thread(target=run, name="modelport-warm-up", daemon=True)
        self._warm.start()

    def settle(self) -> None:
        """Wait for the warm-up (before the reference is computed, and before the
        conversion returns)."""
        warm, self._warm = self._warm, None
        if warm is not None:
            warm.join()

    def _baseline(self, quantized: bool = False) -> Any:
        self.settle()
        if quantized not in self._bases and quantized not in self._unavailable:
            from modelport.validators.check import Settings
            from modelport.validators.tiers import resolve_tiers
            from modelport.validators.validation import baseline

            o = self.options
            # a model whose outputs ignore the inputs still has outputs to compare;
            # validate is where that is judged
            per_format = {converters.get(k).NAME: v for k, v in (o.tolerances or {}).items()}
            settings = Settings(atol=o.atol, rtol=o.rtol, per_format=per_format,
                                allow_degenerate=True, tiers=resolve_tiers(o.tiers))
            inputs, samples = (self._quantized_data() if quantized else (o.inputs, o.samples))
            unavailable = None
            try:
                self._bases[quantized] = baseline(self.source, settings, inputs=inputs,
                                                  samples=samples, seed=o.seed,
                                                  shapes=o.shapes, lazy_floor=True)
            except ModelportError as e:
                unavailable = one_line(e, with_type=False)
            else:
                nonfinite = list(getattr(self._bases[quantized].ref, "nonfinite", []) or [])
                if nonfinite:
                    unavailable = (f"the Keras model itself outputs NaN/Inf for the "
                                   f"check's inputs ({', '.join(nonfinite)})")
            if unavailable:
                self._bases.pop(quantized, None)
                self._unavailable[quantized] = unavailable
                what = "quantized variants" if quantized else "artifacts"
                self.warnings.append(f"{what} not checked: {unavailable}; validate them "
                                     "with --inputs FILE.npz")
        return self._bases.get(quantized)

    def _quantized_data(self) -> tuple[Any, int]:
        """The inputs quantized variants are judged on, and says which (``data``)."""
        from modelport.validators.tiers import QUANTIZED_SAMPLES

        o, cal = self.options, self.calibration
        if o.inputs is not None:
            self.data = "the inputs given (--inputs)"
        elif cal is not None and not cal.synthetic:
            n = min(cal.samples, QUANTIZED_CHECK_SAMPLES)
            self.data = f"the calibration data ({n} samples of {cal.origin})"
            return {k: v[:n] for k, v in cal.arrays.items()}, n
        else:
            self.data = (f"synthetic data ({QUANTIZED_SAMPLES} samples generated from the "
                         "model's declared input domain)")
            self.warnings.append(f"quantized variants judged on {self.data}, not real "
                                 "inputs: their accuracy figures come from synthetic data; "
                                 "give real samples with --calibration FILE.npz|DIR")
            return None, QUANTIZED_SAMPLES
        return o.inputs, o.samples

    def check(self, fmt: str, path: Path, record: ArtifactRecord) -> dict[str, Any]:
        """Compare the candidate at ``path`` with the Keras model (a quantized variant:
        by its mode's accuracy tier)."""
        from modelport.validators.artifacts import Target
        from modelport.validators.validation import check_targets

        quantized = record.quantization is not None
        base = self._baseline(quantized)
        if base is None:
            return {"status": "unchecked", "reason": self._unavailable[quantized]}
        target = Target(path, fmt, record, notes=list(record.warnings))
        report = check_targets(base, [target])
        fig = figures(report, report.results[0])
        if quantized:
            fig["data"] = self.data
        # the candidate sits in a staging directory: its path there means nothing later
        for key in ("summary", "diagnosis"):
            fig[key] = fig[key].replace(f"{path}: ", "").replace(str(path), path.name)
        return fig


def figures(report: Any, result: Any) -> dict[str, Any]:
    """What the manifest records of one check, and a one-line ``summary``."""
    d = result.to_dict()  # NaN/Inf already reported as null
    outputs = [{k: o.get(k) for k in ("name", "passed", "max_abs_error", "cosine")}
               for o in d.get("outputs", [])]
    tier = d.get("tier")
    if tier:  # the figures a tier judges, per output
        for o, full in zip(outputs, d.get("outputs", [])):
            o.update(sqnr_db=full.get("sqnr_db"), top1_agreement=full.get("top1_agreement"))
    fig = {
        "status": "passed" if result.passed else "failed",
        "samples": report.samples, "layout_probe": report.probe, "seed": report.seed,
        "max_abs_error": d.get("max_abs_error"), "cosine": d.get("cosine"),
        "rule": _rule(report, result), "outputs": outputs,
        **({"tier": tier, "sqnr_db": d.get("sqnr_db"),
            "top1_agreement": d.get("top1_agreement")} if tier else {}),
        "diagnosis": result.diagnosis, "seconds": round(result.seconds, 3),
    }
    fig["summary"] = _summary(result, fig)
    return fig


def _rule(report: Any, result: Any) -> str:
    """The pass/fail rule the validator applied, as it states it (or as its tolerances
    imply)."""
    if getattr(result, "tier", None):
        from modelport.validators.tiers import Tier

        tier = Tier(**result.tier)
        return f"accuracy tier {tier.mode}: {tier.describe()}"
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
    if getattr(result, "tier", None) and result.diagnosis:
        return one_line(Exception(result.diagnosis), with_type=False)
    failing = [o for o in result.outputs if not o.passed and o.max_abs_error is not None]
    if failing:
        return "; ".join(f"output {o.name!r}: max abs error {_num(o.max_abs_error)}, cosine "
                         f"{_num(o.cosine, True)}" for o in failing[:3]) \
            + (f" (+{len(failing) - 3} more)" if len(failing) > 3 else "")
    return one_line(Exception(fig.get("diagnosis") or "outputs differ"), with_type=False)


# ops that change state a converter reads (variables, random generators, lookup tables)
# or run Python: a model with any of them is never run beside a conversion
_WRITES = ("Assign", "ResourceScatter", "ResourceApply", "ResourceSparseApply",
           "ResourceStridedSliceAssign", "StatefulUniform", "StatefulStandardNormal",
           "StatefulTruncatedNormal", "StatefulRandomBinomial", "RngSkip", "RngReadAndSkip",
           "LookupTableInsert", "LookupTableImport", "LookupTableRemove", "InitializeTable",
           "PyFunc", "EagerPyFunc", "MutableHashTable", "MutableDenseHashTable")


def writes_state(concrete: Any) -> bool:
    """Whether the concrete function (or any function it calls) has an op of ``_WRITES``."""
    graph_def = concrete.graph.as_graph_def()
    ops = [n.op for n in graph_def.node]
    ops += [n.op for f in graph_def.library.function for n in f.node_def]
    return any(op.startswith(_WRITES) for op in ops)
