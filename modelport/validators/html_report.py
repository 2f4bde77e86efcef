"""``validate --report report.html``: one self-contained HTML file to look at.

Everything is inlined (CSS, the SVG plots, the graph pictures); no script and no link to
fetch, so the file opens offline and can be attached to a ticket. Sections: the verdict
table, per-output error histograms, the per-layer drift curves (first divergent layer
marked), the Keras graph coloured by each diverging artifact's drift, the name maps, the
inputs used, versions and hashes, and the warnings.
"""

from __future__ import annotations

import hashlib
import html
import logging
import math
import platform
from pathlib import Path
from typing import Any

from modelport.core.errors import MissingDependencyError
from modelport.core.text import fmt_shape
from modelport.validators.figures import FAIL_COLOR, PASS_COLOR, drift_curves, error_histograms
from modelport.validators.report import ValidationReport

__all__ = ["write_html", "render_html", "file_sha256"]

log = logging.getLogger(__name__)

_CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:24px;color:#212121;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;
border-bottom:1px solid #ccc;padding-bottom:3px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eceff1}.pass{background:%s;color:white;font-weight:bold}
.fail{background:%s;color:white;font-weight:bold}.verdict{font-size:18px;padding:6px 12px;
display:inline-block;margin:8px 0}.muted{color:#757575}code{font-size:11px}
.figure svg{max-width:100%%;height:auto}details{margin:6px 0}summary{cursor:pointer}
""" % (PASS_COLOR, FAIL_COLOR)


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, or of a directory's files (names and bytes, sorted)."""
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            h.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return "0" if x == 0 else f"{x:.{digits}g}"


def _table(header: list[str], rows: list[list[str]], raw: set[int] | None = None) -> str:
    """An HTML table; cells are escaped except the columns in ``raw``."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if i in (raw or set()) else _e(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _verdicts(report: ValidationReport) -> str:
    rows = []
    for r in report.results:
        verdict = f'<span class="{"pass" if r.passed else "fail"}">' \
                  f'{"PASS" if r.passed else "FAIL"}</span>'
        rows.append([_e(r.artifact), _e(r.format), verdict, _num(r.max_abs_error),
                     _num(r.max_rel_error), _num(r.cosine, 7),
                     "-" if r.top1_agreement is None else f"{r.top1_agreement:.0%}",
                     _num(r.noise_ratio), _e(r.first_divergent_layer or "-"),
                     _e(r.diagnosis or "")])
    return _table(["artifact", "format", "result", "max abs", "max rel", "cosine", "top-1",
                   "noise floors", "first divergent layer", "diagnosis"], rows,
                  raw=set(range(10)))


def _histograms(report: ValidationReport) -> str:
    if not report.reference:
        return "<p class='muted'>no outputs to compare</p>"
    series = [(f"{r.format}: {Path(r.artifact).name}", r.values or {},
               {o.name: o.atol for o in r.outputs}) for r in report.results]
    figs = error_histograms(report.reference, series)
    return "".join(f"<h3>output {_e(k)}</h3><div class='figure'>{svg}</div>"
                   for k, svg in figs.items()) or "<p class='muted'>no float outputs</p>"


def _grows(r: Any) -> str:
    if not r.first_divergent_layer:
        return ""
    return ", ".join(f"{g['layer']} ({g['before']:.2g} &rarr; {g['relative_error']:.2g})"
                     for g in r.layer_growth)


def _depths(r: Any) -> dict[str, int]:
    rows = r.name_map.rows if r.name_map is not None else []
    return {row.layer: i for i, row in enumerate(rows)}


def _drift(report: ValidationReport) -> str:
    with_layers = [r for r in report.results if r.layers]
    if not with_layers:
        return "<p class='muted'>not compared layer by layer (run with --layers)</p>"
    curves = []
    for r in with_layers:
        depth = _depths(r)
        points = [(depth.get(l.layer, i), l.layer,
                   (l.max_abs_error or 0.0) / l.atol if l.atol else 0.0, l.passed)
                  for i, l in enumerate(r.layers)
                  if l.max_abs_error is not None and math.isfinite(l.max_abs_error)]
        curves.append((f"{r.format}: {Path(r.artifact).name}", points,
                       r.first_divergent_layer))
    svg = drift_curves(curves) or ""
    parts = [f"<div class='figure'>{svg}</div>"]
    for r in with_layers:
        grows = _grows(r)
        parts.append(f"<p><b>{_e(r.format)}</b>: first divergent layer "
                     f"<b>{_e(r.first_divergent_layer or 'none')}</b>"
                     + (f"; relative error grows most at {grows}" if grows else "") + "</p>")
        rows = [[l.layer, l.class_name, l.tensor or "-", _num(l.cosine, 7),
                 "exact" if l.sqnr_db is None else f"{l.sqnr_db:.1f}", _num(l.max_abs_error),
                 _num(l.atol), _num(l.relative_error), "yes" if l.passed else "NO",
                 ", ".join(l.fused)] for l in r.layers]
        parts.append(f"<details><summary>{_e(r.format)}: {len(r.layers)} layers compared"
                     "</summary>" + _table(["layer", "class", "tensor", "cosine", "SQNR dB",
                                            "max abs", "atol", "rel. error", "within",
                                            "fused into it"], rows) + "</details>")
    return "".join(parts)


def _graphs(report: ValidationReport, source: Any) -> str:
    """The Keras graph coloured by each artifact whose layers diverge."""
    diverging = [r for r in report.results if r.layers and r.first_divergent_layer]
    if not diverging or source is None:
        return "<p class='muted'>no layer past the tolerance</p>"
    from modelport.validators.graphs import drift_colors, keras_graph, render

    from modelport.loading.layer_outputs import layer_outputs

    entries = layer_outputs(source)
    parts = []
    for k, r in enumerate(diverging):
        try:
            svg = render(keras_graph(entries, source.inputs, drift_colors(r.layers, r.name_map)),
                         "svg", f"{r.format}: layers past the tolerance in red").decode()
        except MissingDependencyError as e:
            return f"<p class='muted'>{_e(e)}</p>"
        parts.append(f"<details{' open' if k == 0 else ''}><summary>{_e(r.format)}: the "
                     "Keras graph coloured by its "
                     f"drift</summary><div class='figure'>{svg[svg.index('<svg'):]}</div>"
                     "</details>")
    return "".join(parts)


def _maps(report: ValidationReport) -> str:
    parts = []
    for r in report.results:
        if r.name_map is None:
            continue
        counts = ", ".join(f"{n} {k}" for k, n in r.name_map.counts().items())
        rows = [[row.layer, row.class_name, row.status, row.method, row.tensor or "-",
                 "" if row.index is None else str(row.index), row.layout,
                 _num(row.relative_error), row.note] for row in r.name_map.rows]
        parts.append(f"<details><summary>{_e(r.format)} {_e(r.artifact)} ({_e(counts)})"
                     "</summary>" + _table(["layer", "class", "status", "how", "tensor",
                                            "index", "layout", "rel. error", "note"], rows)
                     + "</details>")
    return "".join(parts) or "<p class='muted'>no name map (run with --layers)</p>"


def _inputs(report: ValidationReport) -> str:
    rows = [[k, fmt_shape(v.get("shape")), str(v.get("dtype")), str(v.get("distribution")),
             str(v.get("why"))] for k, v in report.inputs.items()]
    feed = f"{report.samples} sample(s)" + (" + 1 layout probe" if report.probe else "") + (
        "" if report.seed is None else f", seed {report.seed}")
    return f"<p>{_e(feed)}</p>" + _table(["input", "shape", "dtype", "distribution", "why"],
                                         rows) + f"<p class='muted'>rule: {_e(report.rule)}</p>"


def _provenance(report: ValidationReport) -> str:
    from modelport.core.manifest import tool_versions

    versions = dict(tool_versions())
    versions.setdefault("python", platform.python_version())
    for name in ("matplotlib", "graphviz"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # not installed: the section says so by omission
            pass
    hashes = [["model", report.model, _hash(report.model)]]
    hashes += [[r.format, r.artifact, _hash(r.artifact)] for r in report.results]
    return (_table(["package", "version"], [[k, str(v)] for k, v in versions.items()])
            + _table(["what", "path", "sha256"], hashes))


def _hash(path: str) -> str:
    try:
        return file_sha256(path)
    except OSError as e:
        return f"unreadable ({e.strerror})"


def render_html(report: ValidationReport, source: Any = None) -> str:
    """The report as one HTML document (``source``: the ``SourceModel``, for the graph)."""
    verdict = "PASSED" if report.passed else "FAILED"
    n_ok = sum(r.passed for r in report.results)
    warnings = "".join(f"<li>{_e(w)}</li>" for w in report.warnings)
    sections = [
        ("Verdicts", _verdicts(report)),
        ("Output errors", _histograms(report)),
        ("Layer-wise drift", _drift(report)),
        ("Graph", _graphs(report, source)),
        ("Name map (Keras layer output -> tensor)", _maps(report)),
        ("Inputs", _inputs(report)),
        ("Versions and hashes", _provenance(report)),
        ("Warnings", f"<ul>{warnings}</ul>" if warnings else "<p class='muted'>none</p>"),
    ]
    body = "".join(f"<h2>{_e(title)}</h2>{content}" for title, content in sections)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>modelport validation: {_e(Path(report.model).name)}</title>"
            f"<style>{_CSS}</style></head><body>"
            f"<h1>modelport validation of {_e(report.model)}</h1>"
            f"<div class='verdict {'pass' if report.passed else 'fail'}'>{verdict}: {n_ok} of "
            f"{len(report.results)} artifact(s) match</div>{body}</body></html>\n")


def write_html(report: ValidationReport, path: str | Path, source: Any = None) -> Path:
    """Write ``render_html`` to ``path`` atomically.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    from modelport.core.atomic import atomic_path

    p = Path(path)
    text = render_html(report, source if source is not None else report_source(report))
    with atomic_path(p) as tmp:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)  # a report to share, not a secret (mkstemp makes it 0600)
    return p


def report_source(report: ValidationReport) -> Any:
    """The loaded model a report was made from, when the validation kept it."""
    return getattr(report, "source", None)
