"""``inspect PATH --plot graph.svg|png|pdf``: a picture of the Keras model or of any
artifact, with names and shapes, drawn by Graphviz (``validators.graphs``).

A Keras file is loaded (safely, as ``convert`` loads it) to know its layers' shapes; an
artifact is opened in its runtime and drawn from the tensors it computes. With a drift
report (``validate --layers --json``), the Keras layers are coloured: past the tolerance
in any artifact red, within it green, without a counterpart grey.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelport import converters
from modelport.core.errors import ModelFileError, UserInputError

__all__ = ["plot", "colors_from_report"]

KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")


def colors_from_report(path: str | Path) -> dict[str, str]:
    """Layer colours from a ``validate --layers --json`` report: a layer is red when any
    artifact's comparison of it failed.

    Raises:
        UserInputError: the file is not such a report.
    """
    from modelport.validators.graphs import FAIL_FILL, PASS_FILL

    try:
        data = json.loads(Path(path).read_text())
        results = data["results"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserInputError(f"--drift {path}: not a 'validate --json' report ({e})") from None
    colors: dict[str, str] = {}
    for r in results:
        for layer in r.get("layers") or []:
            if not layer.get("passed"):
                colors[layer["layer"]] = FAIL_FILL
            else:
                colors.setdefault(layer["layer"], PASS_FILL)
    if not any(r.get("layers") for r in results):
        raise UserInputError(f"--drift {path}: the report has no layers; make it with "
                             "'modelport validate --layers --json REPORT.json'")
    return colors


def plot(path: str | Path, dest: str | Path, *, custom_objects: Any = None,
         trust_lambda: bool = False, drift: str | Path | None = None) -> Path:
    """Draw ``path`` (a Keras file or an artifact) to ``dest``.

    Raises:
        UserInputError: unknown kind of path or picture format, or a bad drift report.
        MissingDependencyError: Graphviz (or the graphviz package) is missing.
    """
    from modelport.validators.graphs import artifact_graph, keras_graph, write_graph

    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{p}: no such file or directory; check the path")
    fmt = converters.detect(p)
    if fmt is not None:
        if drift is not None:
            raise UserInputError("--drift colours the Keras model's layers; pass the model "
                                 "file, not an artifact")
        nodes = artifact_graph(converters.get(fmt).load(p))
        return write_graph(nodes, dest, f"{p.name} ({fmt})")
    if p.suffix.lower() not in KERAS_SUFFIXES:
        raise UserInputError(f"{p}: --plot draws .h5/.hdf5/.keras models and artifacts "
                             "(.savedmodel/, .pb, .tflite, .onnx)")
    from modelport.loading.layer_outputs import layer_outputs
    from modelport.loading.source import load

    source = load(p, custom_objects=custom_objects, trust_lambda=trust_lambda)
    colors = colors_from_report(drift) if drift is not None else None
    nodes = keras_graph(layer_outputs(source), source.inputs, colors)
    return write_graph(nodes, dest, f"{p.name} (Keras, loaded with {source.framework})")
