"""Pictures of a model's graph with Graphviz: the Keras layers, or an artifact's tensors.

A Keras model is drawn layer by layer (each layer output with its class and shape); an
artifact is drawn from what its runner computes (``Runner.tensors()``: every tensor that
depends on an input, with its op and shape; weights and shape arithmetic are left out)
plus its inputs and outputs under the names a user feeds and fetches. Layers can be
coloured, e.g. by a drift comparison: past the tolerance in red.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from modelport.core.errors import MissingDependencyError, UserInputError
from modelport.core.text import fmt_shape

__all__ = ["GraphNode", "keras_graph", "artifact_graph", "render", "write_graph",
           "drift_colors", "FORMATS", "FAIL_FILL", "PASS_FILL", "UNSEEN_FILL"]

FORMATS = ("svg", "png", "pdf")
FAIL_FILL = "#ef9a9a"
PASS_FILL = "#c8e6c9"
UNSEEN_FILL = "#eeeeee"
IO_FILL = "#bbdefb"


@dataclass
class GraphNode:
    id: str
    name: str
    op: str
    shape: Any = None
    inputs: list[str] = field(default_factory=list)  # ids of the nodes it reads
    fill: str = "white"
    kind: str = "op"  # "input", "output" or "op"


def keras_graph(entries: Sequence[Any], inputs: Sequence[Any],
                colors: Mapping[str, str] | None = None) -> list[GraphNode]:
    """The Keras model's layer outputs (``loading.layer_outputs``) as nodes, after one
    node per model input (``TensorInfo``), each output layer marked as such."""
    nodes = [GraphNode(t.name, t.name, "Input", t.shape, [], IO_FILL, "input") for t in inputs]
    for e in entries:
        fill = (colors or {}).get(e.key, "white")
        nodes.append(GraphNode(e.key, e.key, e.class_name, e.shape, list(e.inputs), fill))
        if e.model_output:
            nodes.append(GraphNode(f"output:{e.model_output}", e.model_output, "Output",
                                   e.shape, [e.key], IO_FILL, "output"))
    return nodes


def artifact_graph(runner: Any) -> list[GraphNode]:
    """An artifact opened in its runtime (a ``converters.base.Runner`` that exposes its
    tensors) as nodes: its inputs, every computed tensor, its outputs."""
    ins, outs = runner.io_tensors()
    nodes = [GraphNode(ins.get(t.name, t.name), t.name, "Input", t.shape, [], IO_FILL,
                       "input") for t in runner.inputs]
    known = {n.id for n in nodes}
    for t in runner.tensors():
        nodes.append(GraphNode(t.name, t.name, str(t.extra.get("op", "")), t.shape,
                               [i for i in t.extra.get("inputs", []) if i], "white"))
        known.add(t.name)
    for n in nodes:
        n.inputs = [i for i in n.inputs if i in known]
    for t in runner.outputs:
        nodes.append(GraphNode(f"output:{t.name}", t.name, "Output", t.shape,
                               [outs.get(t.name, t.name)], IO_FILL, "output"))
    return nodes


def drift_colors(layers: Sequence[Any], name_map: Any = None) -> dict[str, str]:
    """Fill colours of the Keras layers from one artifact's drift rows: within the
    tolerance green, past it red, without a counterpart grey."""
    colors = {r.layer: UNSEEN_FILL for r in getattr(name_map, "rows", []) or []
              if r.status in ("fused", "none")}
    for l in layers:
        passed = l["passed"] if isinstance(l, Mapping) else l.passed
        layer = l["layer"] if isinstance(l, Mapping) else l.layer
        colors[layer] = PASS_FILL if passed else FAIL_FILL
    return colors


def _dot(nodes: Sequence[GraphNode], title: str) -> Any:
    try:
        import graphviz
    except ImportError as e:
        raise MissingDependencyError(f"drawing a graph needs the graphviz package: pip "
                                     f"install graphviz ({e})") from e
    dot = graphviz.Digraph(graph_attr={"rankdir": "TB", "label": title, "labelloc": "t",
                                       "fontname": "DejaVu Sans", "fontsize": "12"},
                           node_attr={"shape": "box", "style": "rounded,filled",
                                      "fontname": "DejaVu Sans", "fontsize": "10"},
                           edge_attr={"arrowsize": "0.6"})
    ids = {n.id: f"n{i}" for i, n in enumerate(nodes)}
    for n in nodes:
        shape = fmt_shape(n.shape, "?") if n.shape is not None else "?"
        label = f"{n.name}\n{n.op}  {shape}"
        dot.node(ids[n.id], label=label, fillcolor=n.fill,
                 shape="ellipse" if n.kind != "op" else "box")
    for n in nodes:
        for i in n.inputs:
            if i in ids:
                dot.edge(ids[i], ids[n.id])
    return dot


def render(nodes: Sequence[GraphNode], fmt: str = "svg", title: str = "") -> bytes:
    """The picture as bytes in ``fmt`` (svg, png or pdf).

    Raises:
        MissingDependencyError: the graphviz package or Graphviz's ``dot`` is missing.
    """
    import graphviz

    dot = _dot(nodes, title)
    try:
        return dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound as e:
        raise MissingDependencyError("drawing a graph needs Graphviz's dot program: install "
                                     "Graphviz (Debian: apt-get install graphviz)") from e


def write_graph(nodes: Sequence[GraphNode], dest: str | Path, title: str = "") -> Path:
    """Render to ``dest`` (the format from its suffix), written atomically.

    Raises:
        UserInputError: the suffix is not one of ``FORMATS``.
    """
    from modelport.core.atomic import atomic_path

    dest = Path(dest)
    fmt = dest.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UserInputError(f"--plot {dest}: unknown picture format {dest.suffix or '(none)'}"
                             f"; end the name with one of .{', .'.join(FORMATS)}")
    data = render(nodes, fmt, title)
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
        tmp.chmod(0o644)  # a picture to share, not a secret (mkstemp makes it 0600)
    return dest
