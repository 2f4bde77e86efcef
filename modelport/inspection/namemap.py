"""``inspect --map MODEL OUT_DIR``: for every Keras layer output, the tensor that carries
it in each artifact (``validators.layermap``), how it was matched, and what was fused.

The map needs values (names alone can mislead), so the model and every artifact run on
the same generated inputs, exactly as ``validate --layers`` runs them; the map is the
by-product of that run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from modelport.core.text import table

__all__ = ["MapReport", "name_maps", "render_map_text", "render_map_json"]


@dataclass
class MapReport:
    model: str
    maps: list[Any]  # validators.layermap.NameMap, one per artifact that could run
    failed: dict[str, str] = field(default_factory=dict)  # artifact -> why it has no map
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "artifacts": [m.to_dict() for m in self.maps],
                "failed": dict(self.failed), "warnings": list(self.warnings)}


def name_maps(model: Any, artifacts: Sequence[Any], **options: Any) -> MapReport:
    """The name map of each artifact against the Keras model.

    Args:
        model: a ``.h5``/``.keras`` path or a loaded ``SourceModel``.
        artifacts: artifact paths, convert output directories or manifests.
        options: as for ``validators.validation.validate`` (``inputs``, ``samples``,
            ``seed``, ``shapes``, ``custom_objects``, ``trust_lambda``).

    Raises:
        UserInputError: the model, an artifact path or the inputs are unusable.
    """
    from modelport.validators.validation import validate

    options.setdefault("allow_degenerate", True)  # a map needs no verdict
    report = validate(model, list(artifacts), layers=True, **options)
    out = MapReport(report.model, [], warnings=[w for w in report.warnings
                                                if "no layer-wise drift" in w])
    for r in report.results:
        if r.name_map is not None:
            out.maps.append(r.name_map)
        else:
            out.failed[r.artifact] = next((w for w in r.warnings if "drift" in w),
                                          r.diagnosis or "it did not run")
    return out


def _err(x: float | None) -> str:
    return "-" if x is None else ("0" if x == 0 else f"{x:.2g}")


def render_map_text(report: MapReport) -> str:
    lines = [f"name map of {report.model}: each Keras layer output -> the tensor that "
             "carries it (matched by name and confirmed by values)"]
    for m in report.maps:
        counts = ", ".join(f"{n} {k}" for k, n in m.counts().items())
        lines.append(f"{m.format}  {m.artifact}  ({counts})")
        rows = [["layer", "class", "status", "how", "tensor", "layout", "rel. error", "note"]]
        for r in m.rows:
            tensor = r.tensor or "-"
            if r.index is not None:
                tensor = f"#{r.index} {tensor}"
            rows.append([r.layer, r.class_name, r.status, r.method or "-", tensor,
                         r.layout or "-", _err(r.relative_error), r.note])
        lines += table(rows, header=True, indent="  ")
    for artifact, why in report.failed.items():
        lines.append(f"{artifact}: no map ({why})")
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines)


def render_map_json(report: MapReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)
