"""``inspect``: the names that really work for feeding and fetching, for every format.

Built on each converter's ``describe()``; ``.h5``/``.keras`` files are described from their
stored config (``modelport.loading.describe``) and a ``convert`` output directory from its
manifest. Only the module of the format being inspected is imported, so inspecting an
``.onnx``, ``.tflite`` or Keras file never imports TensorFlow.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from modelport import converters
from modelport.core.errors import MissingDependencyError, ModelFileError, UserInputError
from modelport.core.manifest import MANIFEST_SUFFIX
from modelport.core.records import Description, TensorInfo
from modelport.core.text import fmt_shape, table

__all__ = ["inspect", "summarize_manifest", "render_text", "render_json", "KERAS_SUFFIXES"]

KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
MANIFEST_FORMAT = "convert-output"


def inspect(path: str | Path, nodes: bool = True, find: str | None = None,
            ops: bool = False) -> Description:
    """Describe a model file, an artifact, or a ``convert`` output directory.

    Args:
        path: ``.h5``/``.hdf5``/``.keras``, a SavedModel directory, ``.pb``, ``.tflite``,
            ``.onnx``, a ``convert`` output directory or its ``.manifest.json``.
        nodes: keep the node (layer) list in the result.
        find: keep only nodes whose name or op matches this regular expression (implies
            ``nodes``); TFLite tensors are filtered by name too.
        ops: add ``details["op_histogram"]``: op type -> count over the kept nodes.

    Returns:
        A ``Description``; ``inputs``/``outputs`` carry the names to feed and fetch.

    Raises:
        UserInputError: the path is missing, of an unknown kind, or ``find`` is not a regex.
        ModelFileError: the file is damaged.
        MissingDependencyError: the format needs a package that is not installed.
    """
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{p}: no such file or directory; check the path")
    pattern = _compile(find)
    want_nodes = nodes or ops or pattern is not None
    desc = _describe(p, want_nodes)
    if want_nodes and desc.format != MANIFEST_FORMAT:
        desc.details.setdefault("node_count", len(desc.nodes))
    if pattern is not None:
        desc.nodes = [n for n in desc.nodes if pattern.search(n.name) or pattern.search(n.op)]
        desc.details["find"] = find
        desc.details["matched_nodes"] = len(desc.nodes)
        if isinstance(desc.details.get("tensors"), list):
            desc.details["tensors"] = [t for t in desc.details["tensors"]
                                       if pattern.search(str(t.get("name", "")))]
    if ops and desc.format != MANIFEST_FORMAT:
        desc.details["op_histogram"] = dict(Counter(n.op for n in desc.nodes).most_common())
    if not nodes and pattern is None:
        desc.nodes = []
        if "tensors" in desc.details:
            desc.details["tensors"] = []
    return desc


def _compile(find: str | None) -> re.Pattern[str] | None:
    if find is None:
        return None
    try:
        return re.compile(find)
    except re.error as e:
        raise UserInputError(f"--find {find!r} is not a valid regular expression ({e})") from None


def _describe(p: Path, nodes: bool) -> Description:
    if p.is_file() and p.name.endswith(MANIFEST_SUFFIX):
        return summarize_manifest(p)
    fmt = converters.detect(p)
    if fmt is not None:
        try:
            return converters.get(fmt).describe(p, nodes=nodes)
        except ImportError as e:
            raise MissingDependencyError(
                f"inspecting a {fmt} artifact needs {e.name or 'a missing package'} "
                f"({e}); install it, e.g. pip install tensorflow") from e
    if p.is_dir():
        manifests = sorted(p.glob("*" + MANIFEST_SUFFIX))
        if len(manifests) == 1:
            return summarize_manifest(manifests[0])
        if manifests:
            raise UserInputError(f"{p}: holds several manifests; pass one of: "
                                 + ", ".join(m.name for m in manifests))
        raise UserInputError(f"{p}: a directory that is neither a SavedModel (no saved_model.pb) "
                             "nor a 'modelport convert' output (no *.manifest.json)")
    if p.suffix.lower() in KERAS_SUFFIXES:
        from modelport.loading.describe import describe

        return describe(p, nodes=nodes)
    raise UserInputError(
        f"{p}: unsupported file type {p.suffix or '(no extension)'}; inspect reads "
        ".h5/.hdf5/.keras, SavedModel directories, .pb, .tflite, .onnx and convert output "
        "directories")


def summarize_manifest(path: str | Path) -> Description:
    """A ``convert`` output directory, from its manifest: source I/O and each artifact."""
    from modelport.core.manifest import read_manifest

    path = Path(path)
    try:
        manifest = read_manifest(path)
    except (ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"{path}: not a readable modelport manifest ({e}); "
                             "re-run 'modelport convert'") from None
    base = path.parent
    src = manifest.source

    def tensors(items: Any) -> list[TensorInfo]:
        return [TensorInfo(t["name"], t.get("shape"), t.get("dtype", "")) for t in items or []]

    artifacts = []
    for a in manifest.artifacts:
        d = a.to_dict()
        d["exists"] = (base / a.path).exists()
        artifacts.append(d)
    details = {
        "manifest": str(path),
        "source": {k: src.get(k) for k in ("path", "keras_version", "backend", "loaded_with",
                                           "data_format", "layout", "lambdas") if k in src},
        "options": manifest.options, "artifacts": artifacts, "warnings": list(manifest.warnings),
    }
    return Description(MANIFEST_FORMAT, str(base), tensors(src.get("inputs")),
                       tensors(src.get("outputs")), [], details)


# ----------------------------------------------------------------------------- rendering


def render_json(desc: Description) -> str:
    return json.dumps(desc.to_dict(), indent=2, default=str)


def _table(rows: list[list[str]]) -> list[str]:
    return table(rows, indent="  ")


def _tensor_rows(items: list[TensorInfo]) -> list[list[str]]:
    rows = []
    for t in items:
        row = [t.name, fmt_shape(t.shape), t.dtype or "?"]
        tensor = t.extra.get("tensor")
        if tensor and tensor != t.name:
            row.append(f"tensor {tensor}")
        if t.extra.get("quantization"):
            row.append(_quant(t.extra["quantization"]))
        rows.append(row)
    return rows


def render_text(desc: Description, show_nodes: bool = False) -> str:
    """A human-readable listing; ``show_nodes`` adds the node table (and TFLite tensors)."""
    d = desc.details
    lines = [f"{desc.path}  ({desc.format})"]
    lines += _HEADERS.get(desc.format, _artifact_header)(d)
    feed = "feed by these names" if desc.format != MANIFEST_FORMAT else "Keras source"
    lines.append(f"inputs ({feed}):")
    lines += _table(_tensor_rows(desc.inputs)) or ["  (none)"]
    fetch = "fetch by these names" if desc.format != MANIFEST_FORMAT else "Keras source"
    lines.append(f"outputs ({fetch}):")
    lines += _table(_tensor_rows(desc.outputs)) or ["  (none)"]
    lines += _SECTIONS.get(desc.format, _artifact_sections)(d)
    if show_nodes:
        total = d.get("node_count", len(desc.nodes))
        label = f"{len(desc.nodes)} of {total} nodes match {d['find']!r}" if "find" in d \
            else f"nodes ({len(desc.nodes)}):"
        lines.append(label)
        lines += _table([[n.name, n.op, ("<- " + ", ".join(n.inputs)) if n.inputs else ""]
                         for n in desc.nodes])
        if d.get("tensors"):
            lines.append(f"tensors ({len(d['tensors'])}):")
            lines += _table([[str(t.get("index")), t["name"], fmt_shape(t.get("shape")),
                              str(t.get("dtype")), _quant(t.get("quantization"))]
                             for t in d["tensors"]])
    elif d.get("node_count") is not None and desc.format != MANIFEST_FORMAT:
        lines.append(f"{d['node_count']} nodes (list them with --nodes, filter with --find REGEX)")
    if "op_histogram" in d:
        lines.append("op types:")
        lines += _table([[op, str(n)] for op, n in d["op_histogram"].items()])
    return "\n".join(lines)


def _quant(q: Any) -> str:
    return f"scale {q['scale']} zero_point {q['zero_point']}" if q else ""


def _keras_header(d: dict[str, Any]) -> list[str]:
    out = [f"  written by Keras {d.get('keras_version')} (backend {d.get('backend')})"]
    legacy = d.get("legacy") or {}
    if legacy.get("era"):
        note = f" ({legacy['backend_note']})" if legacy.get("backend_note") else ""
        out.append(f"  era {legacy['era']}, backend {legacy.get('backend') or 'unknown'}{note}")
    for rule in legacy.get("rules") or []:
        out.append(f"  {rule}")
    for lam in legacy.get("lambdas") or []:
        out.append("  lambda: " + ", ".join(f"{k}={v}" for k, v in lam.items()))
    for blocker in legacy.get("blockers") or []:
        out.append(f"  BLOCKS LOADING: {blocker}")
    if d.get("weights_only"):
        out.append("  weights only: no architecture stored; layers with weights: "
                   + ", ".join(d.get("weight_layers", [])))
        return out
    out.append(f"  {d.get('model_class')} {d.get('model_name')!r}, {d.get('layer_count')} layers, "
               f"data_format {d.get('data_format')}")
    return out


def _keras_sections(d: dict[str, Any]) -> list[str]:
    out = []
    custom = d.get("custom_classes") or []
    if custom:
        out.append("custom classes (pass them with --custom-objects):")
        out += _table([[c["class"], f"registered as {c['registered_name']}"
                        if c.get("registered_name") else "", "layers: " + ", ".join(c["layers"])]
                       for c in custom])
    lambdas = d.get("lambdas") or []
    if lambdas:
        out.append("Lambda layers:")
        out += _table([[l["layer"], f"function {l['function'] or '(unreadable bytecode)'}",
                        f"stored as {l['stored_as']}",
                        ("uses " + ", ".join(l["uses"])) if l.get("uses") else ""]
                       for l in lambdas])
    return out


def _signatures(d: dict[str, Any]) -> list[str]:
    out = []
    for key, sig in (d.get("signatures") or {}).items():
        out.append(f"signature {key!r} (key -> graph tensor):")
        out += _table([[kind[:-1], t["name"], "->", str(t.get("tensor", "")),
                        fmt_shape(t.get("shape")), str(t.get("dtype"))]
                       for kind in ("inputs", "outputs") for t in sig.get(kind, [])])
    return out


def _artifact_header(d: dict[str, Any]) -> list[str]:
    out = []
    if d.get("opsets"):
        opsets = ", ".join(f"{k} {v}" for k, v in d["opsets"].items())
        out.append(f"  opset {opsets}; IR version {d.get('ir_version')}; "
                   f"producer {d.get('producer')}")
    if d.get("named_dimensions"):
        out.append("  named dimensions: " + ", ".join(d["named_dimensions"]))
    return out


def _artifact_sections(d: dict[str, Any]) -> list[str]:
    """What a format's describe() adds, rendered by the keys it sets."""
    out = []
    if d.get("usage"):
        out.append(f"  ({d['usage']})")
    out += _signatures(d)
    if d.get("flex_ops"):
        out.append("Flex ops (need the Flex delegate): " + ", ".join(d["flex_ops"]))
    if d.get("unused_placeholders"):
        out.append("unused placeholders (no output depends on them; not inputs): "
                   + ", ".join(d["unused_placeholders"]))
    if d.get("functions"):
        out.append("functions: " + ", ".join(d["functions"]))
    return out


def _manifest_sections(d: dict[str, Any]) -> list[str]:
    src = d.get("source", {})
    out = [f"source: {src.get('path')} (Keras {src.get('keras_version')}, loaded with "
           f"{src.get('loaded_with')}, data_format {src.get('data_format')})", "artifacts:"]
    rows = []
    for a in d.get("artifacts", []):
        if not a.get("ok", True):
            rows.append([a["format"], a["path"], "FAILED: " + str(a.get("error", ""))[:100]])
            continue
        # shapes as the artifact has them (--input-shape), and a layout that is not the
        # source's (--layout channels_last)
        moved = {k: v for k, v in (a.get("layout") or {}).items()
                 if v != (src.get("layout") or {}).get(k, v)}
        ins = ", ".join(f"{t['name']}{fmt_shape(t.get('shape'))}"
                        + (f" {moved[t['name']]}" if t["name"] in moved else "")
                        for t in a.get("inputs", []))
        outs = ", ".join(t["name"] for t in a.get("outputs", []))
        note = "" if a.get("exists", True) else "  MISSING on disk"
        rows.append([a["format"], a["path"], f"in: {ins}  out: {outs}{note}"])
    out += _table(rows)
    out += [f"warning: {w}" for w in d.get("warnings", [])]
    return out


# Keras files (by their kind) and convert outputs have their own sections; every artifact
# format is rendered from the details its describe() returns
_HEADERS = {"h5": _keras_header, "keras": _keras_header,
            MANIFEST_FORMAT: lambda d: [f"  manifest {d.get('manifest')}"]}
_SECTIONS = {"h5": _keras_sections, "keras": _keras_sections, MANIFEST_FORMAT: _manifest_sections}
