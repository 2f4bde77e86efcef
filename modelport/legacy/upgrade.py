"""Rewrite configs and weights written by older Keras versions into what current loaders accept.

``upgrade_config`` runs the rules in ``legacy/rules`` (one small function per known format
change); ``upgrade_weights`` converts the arrays in a writable copy of the file with the
functions in ``legacy/weights.py``. Neither builds a model or runs code from the file.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any

import numpy as np

from modelport.errors import ModelFileError
from modelport.legacy.configwalk import iter_layers
from modelport.legacy.rules import RULES, Context, Rule
from modelport.legacy.weights import convert_layer_weights
from modelport.modelfile import RawModel

__all__ = ["upgrade_config", "needs_weight_upgrade", "upgrade_weights", "applicable_rules",
           "source_backend"]

log = logging.getLogger(__name__)

# Keras 1 files do not record their backend; this lets a user say which one trained it.
BACKEND_ENV = "MODELPORT_KERAS1_BACKEND"
_CONTAINERS = ("Sequential", "Model", "Functional")
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


def _layer_name(path: str, layer: dict[str, Any]) -> str:
    cfg = layer.get("config")
    return str(cfg.get("name") or path) if isinstance(cfg, dict) else path


def _run(r: Rule, config: dict[str, Any], ctx: Context) -> list[str]:
    if r.model:
        return ["model"] if r.fix(config, ctx) else []
    touched = []
    for path, layer in list(iter_layers(config)):
        if r.classes and layer.get("class_name") not in r.classes:
            continue
        if r.fix(layer, ctx):
            touched.append(_layer_name(path, layer))
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


def applicable_rules(raw: RawModel) -> list[str]:
    """The notes ``upgrade_config`` would give, computed on a copy (for ``inspect``)."""
    if raw.config is None:
        return []
    return upgrade_config(raw, copy.deepcopy(raw.config))


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
    return any(l.get("class_name") in _CUDNN for _, l in iter_layers(raw.config))


def _read_names(group: Any, name: str) -> list[str]:
    """A Keras string-list attribute, possibly split over ``name0``, ``name1``, ..."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _write_names(group: Any, name: str, values: list[str]) -> None:
    for key in [k for k in group.attrs if k == name or
                (k.startswith(name) and k[len(name):].isdigit())]:
        del group.attrs[key]
    group.attrs[name] = np.array([v.encode("utf8") for v in values])


def _top_layers(config: dict[str, Any]) -> list[dict[str, Any]]:
    inner = config.get("config")
    layers = inner.get("layers") if isinstance(inner, dict) else inner
    return [l for l in layers or [] if isinstance(l, dict)]


def _owner(layers: list[dict[str, Any]], weight: str) -> dict[str, Any] | None:
    """The sublayer a weight name belongs to: the longest ``name/`` or ``name_`` prefix."""
    best, size = None, -1
    for layer in layers:
        name = str((layer.get("config") or {}).get("name", ""))
        if name and weight.startswith((f"{name}/", f"{name}_")) and len(name) > size:
            best, size = layer, len(name)
    return best


def _split(layer: dict[str, Any], names: list[str]) -> list[tuple[dict[str, Any], list[str]]]:
    if layer.get("class_name") not in _CONTAINERS:
        return [(layer, names)]
    leaves = [l for _, l in iter_layers(layer) if l.get("class_name") not in _CONTAINERS]
    parts: dict[int, tuple[dict[str, Any], list[str]]] = {}
    for n in names:
        owner = _owner(leaves, n)
        if owner is None:
            raise ModelFileError(f"weight {n} matches no layer of the nested model "
                                 f"{(layer.get('config') or {}).get('name')}")
        parts.setdefault(id(owner), (owner, []))[1].append(n)
    return list(parts.values())


_RNN_PARTS = ("kernel", "recurrent_kernel", "bias")


def _rewrite(group: Any, layer: dict[str, Any], names: list[str],
             arrays: list[np.ndarray]) -> list[str]:
    for n in names:
        del group[n]
    if len(arrays) == len(names):
        new_names = names
    else:
        base = str((layer.get("config") or {}).get("name", "layer"))
        parts = _RNN_PARTS if len(arrays) == 3 else [f"w{i}" for i in range(len(arrays))]
        new_names = [f"{base}/{p}:0" for p in parts]
    for n, a in zip(new_names, arrays):
        group.create_dataset(n, data=a)
    return new_names


def upgrade_weights(raw: RawModel, config: dict[str, Any], h5file: Any) -> list[str]:
    """Rewrite weights in ``h5file`` (a writable copy of the model file) in place."""
    group = h5file["model_weights"] if "model_weights" in h5file else h5file
    originals = {_layer_name(p, l): l for p, l in iter_layers(raw.config)}
    top = {_layer_name("", l): l for l in _top_layers(config)}
    keras1 = raw.major <= 1
    theano = source_backend(raw)[0] == "theano"
    converted = []
    for lname in _read_names(group, "layer_names"):
        if lname not in group or lname not in top:
            continue
        g = group[lname]
        names = _read_names(g, "weight_names")
        new_names: list[str] = []
        for layer, part in _split(top[lname], names):
            arrays = [np.asarray(g[n]) for n in part]
            original = originals.get(_layer_name("", layer), layer)
            out = convert_layer_weights(layer, original, arrays, keras1, theano)
            if len(out) == len(arrays) and all(a is b for a, b in zip(out, arrays)):
                new_names += part
                continue
            new_names += _rewrite(g, layer, part, out)
            converted.append(_layer_name("", layer))
        _write_names(g, "weight_names", new_names)
    group.attrs["keras_version"] = STAMP_VERSION
    group.attrs["backend"] = b"tensorflow"
    notes = [f"weights converted to the Keras 2 layout for: {', '.join(converted)}"] if converted else []
    for note in notes:
        log.info("%s: %s", raw.path.name, note)
    return notes
