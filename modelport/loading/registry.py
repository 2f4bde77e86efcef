"""What the real Keras registries know: the one place that decides whether a class or
function a config names is Keras's own (or the user's) or something nobody provides.

Asked, never copied: the tables Keras 3 and tf_keras deserialize from (their layer
tables, ``keras.saving``/``tf_keras.saving`` registries, the public API each exports,
the initializer/regularizer/constraint/activation tables), plus Keras-owned classes the
loaders only find through a module path: Keras 3 operations (``keras.src.ops``), which a
Keras 3 ``.keras`` config names by module and its ``.h5`` writer stores under a bare
name, and the layers Keras Applications define for themselves (ConvNeXt's
``LayerScale``). Only Keras's own packages (``config.KERAS_MODULE_ROOTS``) are ever
imported here; a module a file names otherwise is never imported.

``inspect`` must not import TensorFlow, so it reads ``registry_names.py``: the layer class
names this module finds, written by ``python -m modelport.loading.registry`` and compared
with the live registries by ``tests/loading/test_registry.py``.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import inspect
import logging
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from modelport.loading.config import is_keras_module

__all__ = ["Tables", "keras3", "tf_keras", "is_known_class", "is_known_function",
           "keras_object", "keras_owned_classes", "is_python_builtin", "layer_class_names"]

log = logging.getLogger(__name__)

# API sections whose symbols a model config may name (not callbacks, utils, datasets...)
_API_SECTIONS = ("layers", "initializers", "regularizers", "constraints", "activations",
                 "models", "dtype_policies", "mixed_precision", "losses", "metrics",
                 "optimizers", "ops", "random")


@dataclass(frozen=True)
class Tables:
    """One framework's registries, by bare name."""

    layers: frozenset[str]  # what its .h5 reader resolves a layer's class_name in
    classes: frozenset[str]  # every class a config may name (layers included)
    functions: frozenset[str]  # activations and other functions a config may name
    owned: dict[str, type] = field(default_factory=dict)  # Keras-owned classes the
    # reader's tables lack (operations, Applications' layers), by bare name
    registered: Callable[[str], Any] = lambda name: None  # its serialization registry


def _bare(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _api(names: Any, prefix: str) -> tuple[set[str], set[str]]:
    """``(classes, functions)`` among exported ``prefix<section>.<name>`` symbols."""
    classes: set[str] = set()
    functions: set[str] = set()
    for path, obj in names:
        parts = path.split(".")
        if not path.startswith(prefix) or len(parts) < 3 or parts[1] not in _API_SECTIONS:
            continue
        (classes if inspect.isclass(obj) else functions if callable(obj) else set()).add(
            _bare(path))
    return classes, functions


def _classes_of(package: str, base: type, skip: tuple[str, ...] = ("_test",)) -> dict[str, type]:
    """Classes derived from ``base`` defined in the modules of a Keras-owned package."""
    found: dict[str, type] = {}
    try:
        pkg = importlib.import_module(package)
    except ImportError:  # pragma: no cover - part of the pinned stack
        return found
    for info in pkgutil.iter_modules(getattr(pkg, "__path__", [])):
        if info.ispkg or info.name.endswith(skip):
            continue
        try:
            mod = importlib.import_module(f"{package}.{info.name}")
        except Exception:  # an optional backend module: not something a config names
            log.debug("cannot import %s.%s", package, info.name, exc_info=True)
            continue
        for name, obj in vars(mod).items():
            if inspect.isclass(obj) and issubclass(obj, base) and obj.__module__ == mod.__name__:
                found.setdefault(name, obj)
    return found


@functools.lru_cache(maxsize=1)
def keras3() -> Tables | None:
    """Keras 3's registries (``None`` when Keras 3 is not installed)."""
    try:
        import keras
        from keras.src import (activations, api_export, constraints, dtype_policies,
                               initializers, regularizers)
        from keras.src.legacy.saving import saving_utils
        from keras.src.ops.operation import Operation
    except ImportError:  # pragma: no cover - part of the pinned stack
        return None
    # what its .h5 reader (saving_utils.model_from_config) resolves layer names in
    layer_table = {n for n, v in vars(keras.src.layers).items() if inspect.isclass(v)}
    layer_table |= {"InputLayer", "Functional", "Model", "Sequential"}
    classes, functions = _api(api_export.REGISTERED_NAMES_TO_OBJS.items(), "keras.")
    for table in (initializers, regularizers, constraints, dtype_policies):
        classes |= set(table.ALL_OBJECTS_DICT)
    functions |= set(activations.ALL_OBJECTS_DICT)
    owned = {**_classes_of("keras.src.ops", Operation),
             **_classes_of("keras.src.applications", keras.layers.Layer)}
    del saving_utils  # imported to fail early if the reader moved
    return Tables(frozenset(layer_table), frozenset(classes | layer_table),
                  frozenset(functions), owned, keras.saving.get_registered_object)


@functools.lru_cache(maxsize=1)
def tf_keras() -> Tables | None:
    """tf_keras's registries (``None`` when tf_keras is not installed)."""
    try:
        import tf_keras as tfk
        from tensorflow.python.util import tf_export
        from tf_keras.src import activations
        from tf_keras.src import initializers
        from tf_keras.src.layers import serialization
    except ImportError:  # pragma: no cover - part of the pinned stack
        return None
    serialization.populate_deserializable_objects()
    initializers.populate_deserializable_objects()
    # TFOpLambda, SlicingOpLambda, TensorFlowOpLayer and the V1/V2 aliases live here
    layer_table = set(serialization.LOCAL.ALL_OBJECTS)
    classes, functions = _api(tf_export._NAME_TO_SYMBOL_MAPPING.items(), "keras.")
    classes |= set(initializers.LOCAL.ALL_OBJECTS) | layer_table
    functions |= {n for n, v in vars(activations).items()
                  if inspect.isfunction(v) and not n.startswith("_")}
    owned = _classes_of("tf_keras.src.applications", tfk.layers.Layer)
    return Tables(frozenset(layer_table), frozenset(classes), frozenset(functions), owned,
                  tfk.saving.get_registered_object)


def _frameworks() -> list[Tables]:
    return [t for t in (keras3(), tf_keras()) if t is not None]


def keras_object(module: str, name: str) -> Any:
    """The object ``module.name`` if ``module`` is Keras's own and defines it, else ``None``.

    Resolves the way Keras 3 does for a config's ``module``: the exported API first,
    then the module itself; only Keras-owned modules are imported.
    """
    if not is_keras_module(module):
        return None
    if module == "keras" or module.startswith("keras."):
        try:
            from keras.src import api_export

            obj = api_export.get_symbol_from_name(f"{module}.{name}")
        except ImportError:  # pragma: no cover
            obj = None
        if obj is not None:
            return obj
    try:
        mod = importlib.import_module(module)
    except Exception:  # not a module of the installed Keras (renamed, optional)
        return None
    return vars(mod).get(name)


def _registered(name: str) -> bool:
    for tables in _frameworks():
        try:
            if tables.registered(name) is not None:
                return True
        except Exception:  # a registry lookup never needs to fail the check
            continue
    return False


def is_known_class(name: str, module: Any = None) -> bool:
    """Whether Keras 3 or tf_keras can deserialize class ``name`` without the user.

    ``module`` is the config's ``module`` (Keras 3 configs): a Keras-owned module must
    define the class; any other module means a class of its author's.
    """
    if isinstance(module, str) and module:
        if not is_keras_module(module):
            return False
        if module.startswith("keras.src.ops") or module.startswith("keras.src.applications"):
            return inspect.isclass(keras_object(module, name))
        return keras_object(module, name) is not None or _registered(name) or any(
            name in t.classes for t in _frameworks())
    if ">" in name:  # "package>Name": a registration, Keras's own or the author's
        return _registered(name) or _owned_registered(name) is not None
    return any(name in t.classes or name in t.owned for t in _frameworks()) or _registered(name)


def is_known_function(name: str, module: Any = None) -> bool:
    """Whether a function (activation, ...) ``name`` is one Keras resolves by itself."""
    if isinstance(module, str) and module and module != "builtins":
        return is_keras_module(module) and callable(keras_object(module, name))
    return any(name in t.functions for t in _frameworks()) or _registered(name)


def _owned_registered(name: str) -> type | None:
    """``keras.src.ops.numpy>Add``: how modelport names a Keras-owned class by module."""
    module, _, bare = name.rpartition(">")
    obj = keras_object(module, bare) if module else None
    return obj if inspect.isclass(obj) else None


def keras_owned_classes(names: Any, framework: str) -> dict[str, type]:
    """Keras-owned classes for ``names`` that ``framework``'s reader does not find by
    itself: Applications' layers by bare name, and ``module>Name`` references."""
    tables = keras3() if framework == "keras3" else tf_keras()
    found: dict[str, type] = {}
    for name in names:
        if not isinstance(name, str):
            continue
        if ">" in name:
            cls = _owned_registered(name)
            if cls is not None and cls.__module__.split(".")[0] == (
                    "keras" if framework == "keras3" else "tf_keras"):
                found[name] = cls
        elif tables is not None and name not in tables.layers and name in tables.owned \
                and tables.registered(name) is None \
                and hasattr(tables.owned[name], "add_weight"):
            # a layer (Applications'); a bare operation name is only trusted where Keras 3
            # wrote it, which keras3_h5 names by module
            found[name] = tables.owned[name]
    return found


def is_python_builtin(name: str) -> bool:
    """``eval``, ``exec``, ``open``...: a builtin of Python, never of Keras."""
    return hasattr(builtins, name)


def layer_class_names() -> frozenset[str]:
    """Every class name either framework resolves for a layer entry of a config
    (``registry_names.LAYER_CLASSES`` is this, written down for ``inspect``)."""
    names: set[str] = set()
    for tables in _frameworks():
        names |= tables.layers | set(tables.owned)
    return frozenset(n for n in names if not n.startswith("_"))


def _write_snapshot(dest: Path) -> None:
    names = sorted(layer_class_names())
    lines = ['"""Layer class names the Keras registries resolve (for ``inspect``, which does',
             "not import TensorFlow). Generated by ``python -m modelport.loading.registry``",
             'from the installed Keras 3 and tf_keras; a test compares it with them."""', "",
             "LAYER_CLASSES = frozenset(\"\"\""]
    line = ""
    for name in names:
        if len(line) + len(name) + 1 > 90:
            lines.append(line.rstrip())
            line = ""
        line += name + " "
    lines += [line.rstrip(), '""".split())', ""]
    dest.write_text("\n".join(lines))


if __name__ == "__main__":
    _write_snapshot(Path(__file__).with_name("registry_names.py"))
    sys.exit(0)
