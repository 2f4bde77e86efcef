"""Find every class and function a config needs that neither Keras nor the user provides.

Run on the raw config before building, so one error can name all of them at once (a loader
stops at the first). Whether Keras provides a name is asked of the real registries
(``loading/registry.py``), never of a list kept here.
"""

from __future__ import annotations

from typing import Any, Iterator, NamedTuple

from modelport.loading import registry
from modelport.loading.config import NOT_BUILT, is_keras_module, walk

__all__ = ["Reference", "references", "unknown_objects", "LEGACY_ONLY"]

# Keras 1 / early Keras 2 layers that no current loader implements (named in the message
# so the user knows no custom object can stand in for them)
LEGACY_ONLY = {"Merge", "MaxoutDense", "Highway", "TimeDistributedDense", "AtrousConvolution1D",
               "AtrousConvolution2D", "SReLU"}

_ACTIVATION_KEYS = ("activation", "recurrent_activation", "inner_activation")


class Reference(NamedTuple):
    """A class or function a config names, with the module it says it comes from."""

    name: str  # the registered name ("pkg>Name") when there is one, else the bare name
    module: str | None
    function: bool


def references(config: Any) -> Iterator[Reference]:
    """Every class and function the model's config names (not its compile config, which
    is never read: models load with ``compile=False``)."""
    for _, node in walk(config, skip=NOT_BUILT):
        if not isinstance(node, dict):
            continue
        cls = node.get("class_name")
        module = node.get("module") if isinstance(node.get("module"), str) else None
        if isinstance(cls, str) and "config" in node and not cls.startswith("__") \
                and cls != "function":
            registered = node.get("registered_name")
            name = registered if isinstance(registered, str) and ">" in registered else cls
            yield Reference(name, module, False)
        if cls == "function" and isinstance(node.get("config"), str):
            yield Reference(node["config"], module, True)
        cfg = node.get("config")
        if isinstance(cfg, dict):
            for key in _ACTIVATION_KEYS:
                value = cfg.get(key)
                if isinstance(value, str):
                    yield Reference(value, None, True)


def _known(ref: Reference) -> bool:
    if ref.function:
        return registry.is_known_function(ref.name, ref.module)
    if ref.module and not is_keras_module(ref.module) and ">" not in ref.name:
        return False  # a class of its author's module
    return registry.is_known_class(ref.name, None if ">" in ref.name else ref.module)


def unknown_objects(config: Any, custom: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(missing_custom, legacy_only)``: names to register, and Keras 1 layers no loader has."""
    missing: list[str] = []
    legacy: list[str] = []
    for ref in references(config):
        name = ref.name
        bare = name.rsplit(">", 1)[-1]
        if name in custom or bare in custom or name in missing or name in legacy:
            continue
        if _known(ref):
            continue
        if bare in LEGACY_ONLY and not ref.module:
            legacy.append(bare)
        else:
            missing.append(name)
    return missing, legacy
