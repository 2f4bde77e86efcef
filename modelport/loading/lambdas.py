"""Find Lambda layers in a raw config and rebuild them without running their bytecode.

A Lambda stored by Keras carries ``marshal``-ed Python bytecode. We never unmarshal it
with CPython's ``marshal`` (which is not safe against crafted data) and never run it unless
the user passes ``--trust-lambda``. ``xdis`` reads the code object of any Python version
without executing anything, which is enough to learn the function's name and the names it
uses; a Lambda whose function name matches a user-supplied custom object is rewritten in
the config to reference that function by name.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from typing import Any

from modelport.loading.config import iter_layers, layer_name

__all__ = ["LambdaInfo", "find_lambdas", "read_code", "read_stored_code", "rebind_lambdas"]

log = logging.getLogger(__name__)

# newest first; a code object parsed with the wrong version usually fails or yields junk
_VERSIONS = ("3.12", "3.11", "3.10", "3.9", "3.8", "3.7", "3.6", "3.5", "3.4", "3.13", "2.7")


@dataclass
class CodeFacts:
    """What the bytecode says about itself, read without running it."""

    name: str
    python: str
    names: list[str] = field(default_factory=list)  # globals/attributes it refers to
    code: Any = None  # the xdis code object (for Lambda recovery)
    windows: bool = False  # may have gone through Windows' "\\" -> "/" (stored_code)
    restored: bool = False  # parsed only once Windows' replacement was undone


@dataclass
class LambdaInfo:
    path: str  # layer path inside the model, e.g. "model/lambda_1"
    layer: dict[str, Any]  # the layer's config entry (mutated by rebind_lambdas)
    kind: str  # "bytecode" or "name"
    function_name: str  # "" when the bytecode cannot be read
    facts: CodeFacts | None = None
    output_shape_kind: str = "none"  # "none", "raw" or "bytecode"

    @property
    def layer_name(self) -> str:
        return layer_name(self.layer, self.path)


def _is_identifier(s: Any) -> bool:
    return isinstance(s, str) and (s.isidentifier() or s == "<lambda>")


def read_code(raw: bytes) -> CodeFacts | None:
    """Parse a marshalled code object of an unknown Python version, without executing it."""
    try:
        from xdis.magics import by_version, magic2int
        from xdis.unmarshal import load_code
    except ImportError:  # pragma: no cover - xdis is a dependency
        return None
    for version in _VERSIONS:
        magic = by_version.get(version)
        if magic is None:
            continue
        try:
            fp = io.BytesIO(raw)
            # xdis reports unknown marshal types on stdout; keep our output clean
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                code = load_code(fp, magic2int(magic))
        except Exception:  # wrong version or damaged data: try the next one
            continue
        name = getattr(code, "co_name", None)
        if not _is_identifier(name):
            continue
        if fp.tell() != len(raw):
            continue
        names = [n for n in (getattr(code, "co_names", ()) or ()) if isinstance(n, str)]
        return CodeFacts(name=name, python=version, names=list(names), code=code)
    return None


def read_stored_code(payload: Any) -> CodeFacts | None:
    """Parse a Lambda's stored ``code`` field (base64 or Keras 1 text), restoring what
    Windows' ``func_dump`` replaced when nothing else parses (``legacy/stored_code``)."""
    from modelport.loading.legacy.stored_code import (encodings, marshal_restorations,
                                                      may_be_windows)

    candidates = encodings(payload)
    for raw in candidates:
        facts = read_code(raw)
        if facts is not None:
            facts.windows = may_be_windows(raw, getattr(facts.code, "co_filename", None))
            return facts
    for raw in candidates:
        if may_be_windows(raw):
            for variant in marshal_restorations(raw):
                facts = read_code(variant)
                if facts is not None:
                    facts.windows = facts.restored = True
                    return facts
    return None


def _function_field(cfg: dict[str, Any]) -> tuple[str, Any]:
    """Classify a Lambda's stored function: ("bytecode", code) or ("name", str)."""
    fn = cfg.get("function")
    if isinstance(fn, dict):  # Keras 3
        if fn.get("class_name") == "__lambda__":
            inner = fn.get("config") or {}
            return "bytecode", inner.get("code")
        inner = fn.get("config")
        return "name", inner if isinstance(inner, str) else str(fn.get("registered_name", ""))
    if isinstance(fn, (list, tuple)) and fn:
        return "bytecode", fn[0]
    if isinstance(fn, str):
        if cfg.get("function_type", "function") == "lambda":
            return "bytecode", fn
        return "name", fn
    return "bytecode", None


def _output_shape_kind(cfg: dict[str, Any]) -> str:
    shape = cfg.get("output_shape")
    if shape is None:
        return "none"
    if isinstance(shape, dict) and shape.get("class_name") == "__lambda__":
        return "bytecode"
    if cfg.get("output_shape_type") in ("lambda",):
        return "bytecode"
    return "raw"


def find_lambdas(config: Any) -> list[LambdaInfo]:
    """Every Lambda layer in the config, with its function name read from the bytecode."""
    found = []
    for path, layer in iter_layers(config):
        if layer.get("class_name") != "Lambda":
            continue
        cfg = layer.get("config") or {}
        kind, payload = _function_field(cfg)
        facts = None
        name = ""
        if kind == "bytecode":
            facts = read_stored_code(payload)
            name = facts.name if facts else ""
        else:
            name = payload or ""
        found.append(LambdaInfo(path, layer, kind, name, facts, _output_shape_kind(cfg)))
    return found


def rebind_lambdas(lambdas: list[LambdaInfo], custom_objects: dict[str, Any]) -> list[LambdaInfo]:
    """Point every bytecode Lambda whose function name is a user custom object at it.

    The layer's config is rewritten in place so both Keras 3 and tf_keras resolve the
    function by name from ``custom_objects``; no bytecode is unmarshalled by CPython or
    run. Returns the Lambdas that still carry bytecode (the ones to refuse or trust).
    """
    remaining = []
    for info in lambdas:
        cfg = info.layer.setdefault("config", {})
        if info.kind == "name":
            continue
        fn = custom_objects.get(info.function_name) if info.function_name else None
        if fn is None or not callable(fn) or info.function_name == "<lambda>":
            remaining.append(info)
            continue
        cfg["function"] = info.function_name
        cfg["function_type"] = "function"
        cfg["module"] = getattr(fn, "__module__", None)
        cfg.pop("output_shape_module", None)  # the file's module, which is not ours
        if info.output_shape_kind == "bytecode":
            # the layer infers its output shape by tracing the function instead
            cfg["output_shape"] = None
            cfg["output_shape_type"] = "raw"
        log.info("Lambda %s: rebuilt from custom object %r", info.layer_name, info.function_name)
        info.kind = "name"
    return remaining
