"""Recover Lambda functions from bytecode without running it (translated to Keras ops).

A Lambda saved by Keras 1/2 (or Keras 3) carries marshalled bytecode of whatever Python
wrote it; loading it with ``marshal`` needs that same Python and runs arbitrary code.
Here ``xdis`` has already parsed the code object (``lambdas.read_code``); we read its
instructions for each Python version the marshal format allows, translate straight-line
arithmetic, comparisons, indexing and calls of vetted ``K.*``/``tf.*``/``keras.ops.*``
functions into an expression tree, and compute that tree with ``keras.ops``. The result
is registered as a custom object and the layer config points at it by name, exactly as
``lambdas.rebind_lambdas`` does for user-supplied functions.
"""

from __future__ import annotations

import copy
import logging
import re
import sys
from typing import Any, Callable

from modelport.loading.lambdas import LambdaInfo
from modelport.loading.legacy.recovery.bytecode import candidate_versions
from modelport.loading.legacy.stored_code import code_restorations
from modelport.loading.legacy.recovery.handlers import translate
from modelport.loading.legacy.recovery.machine import Refused, Undecodable
from modelport.loading.legacy.recovery.nodes import Node, called, evaluate, show
from modelport.loading.legacy.recovery.randomness import STOCHASTIC

__all__ = ["recover_lambdas", "recover", "Recovered", "Refused"]

log = logging.getLogger(__name__)


class Recovered:
    """A translated Lambda: the callable plus what it computes, for notes and tests."""

    def __init__(self, fn: Callable[..., Any], expression: str, python: str,
                 restored: bool = False, random: tuple[str, ...] = ()) -> None:
        self.fn = fn
        self.expression = expression
        self.python = python
        self.restored = restored  # read with Windows' "\\" -> "/" replacement undone
        self.random = random  # the random ops it calls: its output is stochastic


def _stored_function(cfg: Any) -> tuple[list[Any], list[Any]]:
    """``(defaults, closure)`` stored next to the bytecode (Keras 1/2 list, Keras 3 dict)."""
    fn = cfg.get("function") if isinstance(cfg, dict) else None
    if isinstance(fn, dict) and isinstance(fn.get("config"), dict):
        defaults, closure = fn["config"].get("defaults"), fn["config"].get("closure")
    elif isinstance(fn, (list, tuple)):
        defaults, closure = (fn[1] if len(fn) > 1 else None), (fn[2] if len(fn) > 2 else None)
    else:
        defaults, closure = None, None
    for what, value in (("defaults", defaults), ("closure", closure)):
        if value is not None and not isinstance(value, (list, tuple)):
            raise Refused(f"the stored {what} are a {type(value).__name__}, not a list")
    return list(defaults or []), list(closure or [])


def _closure(code: Any, values: Any) -> dict[str, Any]:
    if not values:
        return {}
    # xdis files free variables of some versions under co_cellvars; a Lambda has no cells
    names = list(getattr(code, "co_freevars", ()) or ()) or list(getattr(code, "co_cellvars", ()))
    return dict(zip(names, values))


def _defaults(params: list[str], values: Any) -> dict[str, Any]:
    values = list(values or [])
    return dict(zip(params[len(params) - len(values):], values)) if values else {}


def _code_readings(code: Any, windows: bool) -> list[Any]:
    """The code object, then (for bytes that went through Windows' replacement) the same
    code with each restoration of its instruction bytes."""
    if not windows:
        return [code]
    readings = []
    for co_code in code_restorations(bytes(code.co_code)):
        variant = copy.copy(code)
        variant.co_code = co_code
        readings.append(variant)
    return readings


def _translate_any_version(code: Any, python: str, closure: dict[str, Any],
                           windows: bool = False) -> tuple[Node, list[str], str, bool]:
    """``(tree, params, version, restored)`` from every reading that makes sense; refused
    unless they all compute the same thing."""
    readings: dict[tuple[int, str], tuple[Node, list[str]]] = {}
    errors: list[Refused] = []
    for i, variant in enumerate(_code_readings(code, windows)):
        for version in candidate_versions(python):
            try:
                readings[(i, version)] = translate(variant, version, closure)
            except Refused as e:
                errors.append(e)
    if not readings:
        best = next((e for e in errors if not isinstance(e, Undecodable)), None) or \
            (errors[0] if errors else Refused(f"no instruction set known for Python {python}"))
        raise best
    trees = {show(tree) for tree, _ in readings.values()}
    if len(trees) > 1:
        if any(i for i, _ in readings):
            raise Refused("the bytecode went through Windows' '\\' -> '/' replacement "
                          "(Keras' func_dump on Windows) and its possible restorations "
                          "compute different things")
        raise Refused("the bytecode reads differently as Python "
                      f"{', '.join(v for _, v in readings)}")
    (index, version), (tree, params) = next(iter(readings.items()))
    return tree, params, version, index > 0


def _make_function(name: str, tree: Node, params: list[str], defaults: dict[str, Any],
                   doc: str) -> Callable[..., Any]:
    first, rest = params[0], params[1:]

    def fn(inputs: Any, **kwargs: Any) -> Any:
        env = {**defaults, **{k: v for k, v in kwargs.items() if k in rest}, first: inputs}
        missing = [p for p in rest if p not in env]
        if missing:
            raise TypeError(f"{name}: no value for parameter(s) {missing}")
        return evaluate(tree, env)

    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = __name__
    fn.__doc__ = doc
    return fn


def recover(info: LambdaInfo, name: str) -> Recovered:
    """Translate one Lambda; raises ``Refused`` with the reason when it cannot."""
    if info.facts is None or info.facts.code is None:
        raise Refused("its bytecode could not be parsed for any known Python version")
    defaults, closure_values = _stored_function(info.layer.get("config"))
    code = info.facts.code
    tree, params, version, restored = _translate_any_version(
        code, info.facts.python, _closure(code, closure_values), info.facts.windows)
    expression = show(tree)
    doc = f"Lambda {info.layer_name} recovered from Python {version} bytecode: {expression}"
    restored = restored or info.facts.restored
    if restored:
        doc += " (bytes restored from Windows' '\\' -> '/' replacement)"
    fn = _make_function(name, tree, params, _defaults(params, defaults), doc)
    return Recovered(fn, expression, version, restored, tuple(sorted(called(tree) & STOCHASTIC)))


def _unique_name(info: LambdaInfo, taken: dict[str, Any]) -> str:
    base = "modelport_lambda_" + re.sub(r"\W", "_", info.layer_name)
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def _rebind(info: LambdaInfo, name: str, fn: Callable[..., Any]) -> None:
    """Point the layer at ``name`` the way ``lambdas.rebind_lambdas`` does. A Keras 3
    config keeps Keras 3's own spelling of a named function: its Lambda takes no
    ``function_type``/``module`` and its .h5 reader cannot resolve a bare string."""
    cfg = info.layer.setdefault("config", {})
    if info.output_shape_kind == "bytecode":
        cfg["output_shape"] = None  # inferred by tracing the recovered function
    if isinstance(cfg.get("function"), dict):
        cfg["function"] = {"class_name": "function", "config": name, "module": None,
                           "registered_name": name}
        return
    cfg["function"] = name
    cfg["function_type"] = "function"
    cfg["module"] = fn.__module__
    if info.output_shape_kind == "bytecode":
        cfg["output_shape_type"] = "raw"


def refusal_message(info: LambdaInfo, reason: str) -> str:
    """What a user needs: which Lambda, what its bytecode uses, why, and the remedies."""
    fn = info.function_name or "<unreadable>"
    names = ", ".join(info.facts.names) if info.facts and info.facts.names else "no global names"
    python = info.facts.python if info.facts else "unknown"
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    example = fn if fn.isidentifier() else "my_function"
    return (f"Lambda {info.layer_name} ({fn}, Python {python}-family bytecode using {names}) "
            f"could not be translated: {reason}; pass --custom-objects FILE.py defining "
            f"'def {example}(x): ...'"
            + ("" if fn.isidentifier() else " and name the Lambda's function accordingly")
            + f", or --trust-lambda if you trust the file and it was saved with Python {here}")


def recover_lambdas(lambdas: list[LambdaInfo], custom_objects: dict[str, Any]) -> list[LambdaInfo]:
    """Translate what can be translated; returns the Lambdas that could not be recovered.

    Each recovered Lambda's function is added to ``custom_objects`` under a unique name,
    its layer config is rewritten to reference it, and ``info.kind`` becomes
    ``"recovered"`` (with ``info.recovered``). Each refused one gets ``info.refusal``, a
    one-line message naming the Lambda, the names its bytecode uses and the remedies.
    """
    remaining = []
    for info in lambdas:
        name = _unique_name(info, custom_objects)
        try:
            result = recover(info, name)
        except Refused as e:
            info.refusal = refusal_message(info, str(e))  # type: ignore[attr-defined]
            log.info("%s", info.refusal)  # type: ignore[attr-defined]
            remaining.append(info)
            continue
        custom_objects[name] = result.fn
        _rebind(info, name, result.fn)
        info.kind = "recovered"
        info.recovered = result  # type: ignore[attr-defined]
        log.info("Lambda %s: recovered from Python %s bytecode as %s%s", info.layer_name,
                 result.python, result.expression,
                 " (written on Windows: '\\' bytes restored)" if result.restored else "")
    return remaining
