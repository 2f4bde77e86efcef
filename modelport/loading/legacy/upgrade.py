"""Rewrite configs and weights written by older Keras versions into what current loaders accept.

``upgrade_config`` runs the rules in ``legacy/rules`` (one small function per known format
change); ``upgrade_weights`` converts the arrays in a writable copy of the file with the
functions in ``legacy/weights.py``. Neither builds a model or runs code from the file.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from modelport.core.errors import ModelFileError
from modelport.loading.config import iter_layers, layer_name, top_layers
from modelport.loading.hdf5 import read_names, write_names
from modelport.loading.legacy.rules import RULES, Context, Rule
from modelport.loading.legacy.rules.structure import merge_branches
from modelport.loading.legacy.weights import (convert_layer_weights, regroup_branches, rewrite,
                                              split_nested)
from modelport.loading.raw import RawModel

__all__ = ["upgrade_config", "needs_weight_upgrade", "upgrade_weights", "applicable_rules",
           "source_backend", "compat_objects", "era", "LegacyPlan", "plan"]

log = logging.getLogger(__name__)

# Keras 1 files do not record their backend; this lets a user say which one trained it.
BACKEND_ENV = "MODELPORT_KERAS1_BACKEND"
_CUDNN = ("CuDNNLSTM", "CuDNNGRU")
_CONV_PREFIXES = ("Conv", "Convolution", "AtrousConvolution", "Deconvolution",
                  "SeparableConvolution")
STAMP_VERSION = b"2.0.0+modelport"  # loaders only special-case "1": no second conversion


def source_backend(raw: RawModel) -> tuple[str, str]:
    """``(backend, why)``: the backend that trained the weights and, when guessed, why."""
    if raw.backend:
        return raw.backend, ""
    if raw.major >= 2 or raw.config is None:
        return "tensorflow", ""
    forced = os.environ.get(BACKEND_ENV, "").strip().lower()
    if forced in ("theano", "tensorflow"):
        return forced, f"set by {BACKEND_ENV}"
    if any(layer.get("config", {}).get("dim_ordering") == "th"
           for _, layer in iter_layers(raw.config) if isinstance(layer.get("config"), dict)):
        return "theano", ("Keras 1 files do not record the backend; layers use "
                          "dim_ordering='th', Theano's default, so Theano is assumed and "
                          f"conv kernels are flipped (set {BACKEND_ENV}=tensorflow if not)")
    return "tensorflow", ""


def _context(raw: RawModel, config: dict[str, Any]) -> Context:
    return Context(raw.keras_version, source_backend(raw)[0], raw.major, config)


# what a rule raises when a config has the right keys with values of the wrong shape
_MALFORMED = (TypeError, ValueError, KeyError, AttributeError, IndexError)


def _fix(r: Rule, node: dict[str, Any], ctx: Context, where: str) -> bool:
    try:
        return bool(r.fix(node, ctx))
    except _MALFORMED as e:
        raise ModelFileError(
            f"{where}: unexpected values for rule {r.name} ({type(e).__name__}: {e}); the "
            "config is damaged or from a Keras variant modelport does not know") from None


def _run(r: Rule, config: dict[str, Any], ctx: Context) -> list[str]:
    if r.model:
        return ["model"] if _fix(r, config, ctx, "model config") else []
    touched = []
    for path, layer in list(iter_layers(config)):
        cls = layer.get("class_name")
        if r.classes and (not isinstance(cls, str) or cls not in r.classes):
            continue
        name = layer_name(layer, path)
        if _fix(r, layer, ctx, f"layer {name}"):
            touched.append(name)
    return touched


def _note(r: Rule, touched: list[str]) -> str:
    where = "" if touched == ["model"] else (
        f" [{', '.join(touched[:4])}{', ...' if len(touched) > 4 else ''}]")
    return f"upgrade {r.name}: {r.summary}{where}"


def upgrade_config(raw: RawModel, config: dict[str, Any]) -> list[str]:
    """Apply every upgrade rule that matches, in place; returns one note per rule applied.

    Raises:
        ModelFileError: the config uses something no current Keras can express.
    """
    if raw.kind != "h5" or raw.major >= 3:
        return []
    ctx = _context(raw, config)
    notes = []
    for r in RULES:
        if not r.applies(ctx):
            continue
        try:
            touched = _run(r, config, ctx)
        except ModelFileError as e:
            raise ModelFileError(f"{raw.path}: {e}") from None
        if touched:
            notes.append(_note(r, touched))
    why = source_backend(raw)[1]
    if why and needs_weight_upgrade(raw, config):
        notes.append(f"backend: {why}")
    for note in notes:
        log.info("%s: %s", raw.path.name, note)
    return notes


def applicable_rules(raw: RawModel) -> list[str]:  # kept small for callers that want only this
    """The notes ``upgrade_config`` would give, computed on a copy (for ``inspect``)."""
    if raw.config is None:
        return []
    return upgrade_config(raw, copy.deepcopy(raw.config))


def era(raw: RawModel) -> str:
    """``keras1``, ``keras2.0-2.3``, ``tf.keras1.x`` (``2.x-tf``), ``tf.keras2.4+``, ``keras3``."""
    if raw.major <= 1:
        return "keras1"
    if raw.major >= 3:
        return "keras3"
    if raw.keras_version.endswith("-tf"):
        return "tf.keras1.x"
    minor = raw.keras_version.split(".")[1:2]
    return "keras2.0-2.3" if minor and minor[0].isdigit() and int(minor[0]) <= 3 else "tf.keras2.4+"


@dataclass
class LegacyPlan:
    """What ``inspect`` reports before anything is built (no TensorFlow import needed)."""

    era: str
    keras_version: str
    backend: str
    backend_note: str = ""
    rules: list[str] = field(default_factory=list)
    lambdas: list[dict[str, str]] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _lambda_plan(config: dict[str, Any], custom: dict[str, Any]) -> list[dict[str, str]]:
    from modelport.loading.lambdas import find_lambdas, rebind_lambdas
    from modelport.loading.legacy.recovery import recover_lambdas

    infos = find_lambdas(config)
    remaining = recover_lambdas(rebind_lambdas(infos, dict(custom)), {})
    out = []
    for info in infos:
        entry = {"layer": info.layer_name, "function": info.function_name,
                 "python": info.facts.python if info.facts else ""}
        if info in remaining:
            entry.update(status="refused", reason=getattr(info, "refusal", ""))
        elif info.kind == "recovered":
            recovered = info.recovered  # type: ignore[attr-defined]
            entry.update(status="recovered", python=recovered.python,
                         expression=recovered.expression)
            if recovered.random:  # its output changes from run to run
                entry["random"] = ", ".join(recovered.random)
            if recovered.restored:
                entry["saved_on_windows"] = "'\\' bytes restored"
        else:
            entry.update(status="custom_object")
        out.append(entry)
    return out


def plan(raw: RawModel, custom_objects: dict[str, Any] | None = None) -> LegacyPlan:
    """Era, backend, the upgrade rules that apply, Lambda recovery and what blocks loading."""
    backend, why = source_backend(raw)
    result = LegacyPlan(era(raw), raw.keras_version, raw.backend or backend, why)
    if raw.config is None:
        result.blockers.append("weights only (no model config): rebuild the architecture and "
                               "save the full model with model.save()")
        return result
    config = copy.deepcopy(raw.config)
    try:
        result.rules = upgrade_config(raw, config)
    except ModelFileError as e:
        result.blockers.append(str(e))
    try:
        result.lambdas = _lambda_plan(config, custom_objects or {})
    except _MALFORMED as e:
        result.blockers.append(f"a Lambda layer's config is malformed ({type(e).__name__}: {e})")
    result.blockers += [l["reason"] for l in result.lambdas if l["status"] == "refused"]
    return result


def _keras2_gelu(x: Any) -> Any:
    import keras

    return keras.ops.gelu(x, approximate=False)  # tf.keras's default; Keras 3 approximates


def compat_objects(raw: RawModel) -> dict[str, Any]:
    """Custom objects that make *Keras 3* compute what Keras <= 2 computed for the same
    activation name. Only for the Keras 3 loader: tf_keras already has these semantics.

    ``hard_sigmoid`` was ``clip(0.2 x + 0.5)`` in Keras 1/2 (LSTM/GRU's default recurrent
    activation there) but is ``clip(x / 6 + 0.5)`` in Keras 3; ``gelu`` was exact.
    """
    if raw.kind != "h5" or raw.major >= 3:
        return {}
    from modelport.loading.legacy.recovery.kbackend import k_hard_sigmoid

    return {"hard_sigmoid": k_hard_sigmoid, "gelu": _keras2_gelu}


# --------------------------------------------------------------------------- weights


def _has_conv(config: Any) -> bool:
    return any(str(l.get("class_name", "")).startswith(_CONV_PREFIXES)
               for _, l in iter_layers(config))


def needs_weight_upgrade(raw: RawModel, config: dict[str, Any]) -> bool:
    """True when the stored weights must be rewritten (e.g. Theano-ordered kernels)."""
    if raw.kind != "h5" or raw.config is None or raw.major >= 3:
        return False
    if raw.major <= 1:
        return True  # per-gate RNN arrays, Conv1D as Conv2D, 'th' kernels; and the stamp
    if source_backend(raw)[0] == "theano" and _has_conv(raw.config):
        return True
    if merge_branches(raw.config):
        return True  # Keras 2.0's legacy Merge of branch models: weights saved flat
    return any(l.get("class_name") in _CUDNN for _, l in iter_layers(raw.config))


def _upgrade_group(g: Any, top: dict[str, Any], originals: dict[str, Any], keras1: bool,
                   theano: bool) -> list[str]:
    """Convert one top-level layer's weight group in place; returns the layers converted.
    Converted arrays take the place of the first of the names they replace, so the group
    keeps its order (a nested model lists all trainable arrays before the frozen ones)."""
    names = read_names(g.attrs, "weight_names")
    replaced: dict[str, list[str]] = {}
    dropped: set[str] = set()
    converted = []
    for layer, part in split_nested(top, names):
        arrays = [np.asarray(g[n]) for n in part]
        original = originals.get(layer_name(layer), layer)
        out = convert_layer_weights(layer, original, arrays, keras1, theano)
        if len(out) == len(arrays) and all(a is b for a, b in zip(out, arrays)):
            continue
        replaced[part[0]] = rewrite(g, layer, part, out)
        dropped.update(part)
        converted.append(layer_name(layer))
    new_names = [m for n in names
                 for m in (replaced.get(n, []) if n in dropped else [n])]
    write_names(g.attrs, "weight_names", new_names)
    return converted


def upgrade_weights(raw: RawModel, config: dict[str, Any], h5file: Any) -> list[str]:
    """Rewrite weights in ``h5file`` (a writable copy of the model file) in place."""
    group = h5file["model_weights"] if "model_weights" in h5file else h5file
    branches = merge_branches(raw.config)
    if branches:
        regroup_branches(group, branches)
    originals = {layer_name(l, p): l for p, l in iter_layers(raw.config)}
    top = {layer_name(l): l for l in top_layers(config)}
    keras1 = raw.major <= 1
    theano = source_backend(raw)[0] == "theano"
    converted = []
    for lname in read_names(group.attrs, "layer_names"):
        if lname not in group or lname not in top:
            continue
        try:
            converted += _upgrade_group(group[lname], top[lname], originals, keras1, theano)
        except (*_MALFORMED, OSError) as e:
            raise ModelFileError(
                f"{raw.path}: the weights of layer {lname} are not laid out the way Keras "
                f"{raw.keras_version or '1'} wrote them ({type(e).__name__}: {e})") from None
    group.attrs["keras_version"] = STAMP_VERSION
    group.attrs["backend"] = b"tensorflow"
    notes = ([f"weights converted to the Keras 2 layout for: {', '.join(converted)}"]
             if converted else [])
    for note in notes:
        log.info("%s: %s", raw.path.name, note)
    return notes
