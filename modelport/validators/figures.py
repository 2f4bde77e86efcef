"""The report's plots, drawn with matplotlib (Agg, no display) as SVG text to inline.

Text stays text in the SVG (``svg.fonttype: none``): the browser renders it, and the
report can be searched for a layer name.
"""

from __future__ import annotations

import io
import math
from typing import Any, Mapping, Sequence

import numpy as np

from modelport.core.errors import MissingDependencyError

__all__ = ["error_histograms", "drift_curves", "PASS_COLOR", "FAIL_COLOR"]

PASS_COLOR = "#2e7d32"
FAIL_COLOR = "#c62828"
_FLOOR = 1e-12  # errors of exactly 0 are drawn here on log axes
_COLORS = ["#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#558b2f", "#ad1457"]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:
        raise MissingDependencyError(f"the HTML report's plots need matplotlib: pip install "
                                     f"matplotlib ({e})") from e
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _svg(fig: Any) -> str:
    plt = _pyplot()
    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "modelport"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog: the SVG is inlined in HTML


def error_histograms(reference: Mapping[str, np.ndarray],
                     artifacts: Sequence[tuple[str, Mapping[str, np.ndarray], Mapping[str, float]]],
                     ) -> dict[str, str]:
    """Per output, a histogram of |artifact - keras| (log scale) for each artifact, with
    each artifact's tolerance (atol) as a dashed line.

    Args:
        reference: the Keras outputs by name.
        artifacts: ``(label, outputs by name, atol by output name)`` per artifact.

    Returns:
        Output name -> SVG text.
    """
    plt = _pyplot()
    out = {}
    for name, ref in reference.items():
        ref = np.asarray(ref, np.float64)
        series = []
        for label, values, atols in artifacts:
            got = values.get(name)
            if got is None or np.size(got) != ref.size:
                continue
            d = np.abs(np.asarray(got, np.float64).reshape(ref.shape) - ref).ravel()
            d = d[np.isfinite(d)]
            series.append((label, np.maximum(d, _FLOOR), atols.get(name)))
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7.5, 2.8))
        lo = min(float(s[1].min()) for s in series)
        hi = max(max(float(s[1].max()) for s in series), lo * 10)
        bins = np.logspace(math.log10(lo), math.log10(hi) + 1e-9, 40)
        for i, (label, d, atol) in enumerate(series):
            color = _COLORS[i % len(_COLORS)]
            ax.hist(d, bins=bins, histtype="step", linewidth=1.6, color=color, label=label)
            if atol:
                ax.axvline(atol, color=color, linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel(f"|artifact - keras| for output {name!r} (dashed: atol)")
        ax.set_ylabel("elements")
        ax.legend(fontsize=8, loc="upper right")
        out[name] = _svg(fig)
    return out


def drift_curves(curves: Sequence[tuple[str, list[tuple[int, str, float, bool]], str | None]],
                 ) -> str | None:
    """The per-layer drift of each artifact, one panel each: every compared layer's
    largest error in units of its tolerance (atol) against its depth (position in the
    network), the tolerance as a line at 1, failing layers in red and the first divergent
    layer marked and named.

    Args:
        curves: ``(label, [(depth, layer, error / atol, passed)], first divergent)``.
    """
    curves = [c for c in curves if c[1]]
    if not curves:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(curves), 1, figsize=(7.5, 2.2 * len(curves)), sharex=True,
                             squeeze=False)
    for ax, (label, points, first) in zip(axes[:, 0], curves):
        x = [p[0] for p in points]
        y = [max(p[2], _FLOOR) for p in points]
        ax.plot(x, y, color="#455a64", linewidth=1)
        ok = [i for i, p in enumerate(points) if p[3]]
        bad = [i for i, p in enumerate(points) if not p[3]]
        ax.scatter([x[i] for i in ok], [y[i] for i in ok], s=14, color=PASS_COLOR, zorder=3)
        ax.scatter([x[i] for i in bad], [y[i] for i in bad], s=18, color=FAIL_COLOR, zorder=3)
        ax.axhline(1.0, color=FAIL_COLOR, linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_ylabel("error / atol")
        ax.set_title(label, fontsize=9, loc="left")
        if first is not None:
            at = next(p for p in points if p[1] == first)
            ax.axvline(at[0], color=FAIL_COLOR, linewidth=1.2)
            ax.annotate(f"first divergent: {first}", (at[0], max(at[2], _FLOOR)),
                        textcoords="offset points", xytext=(6, 6), fontsize=8,
                        color=FAIL_COLOR)
    axes[-1, 0].set_xlabel("layer depth (topological position)")
    return _svg(fig)
