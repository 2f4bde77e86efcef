"""Find every class and function a config needs that neither Keras nor the user provides.

Run on the raw config before building, so one error can name all of them at once (a loader
stops at the first).
"""

from __future__ import annotations

import functools
from typing import Any, Iterator

from modelport.loading.config import is_keras_module, walk

__all__ = ["unknown_objects", "known_names", "LEGACY_ONLY"]

# Keras 1 / early Keras 2 layers that no current loader implements
LEGACY_ONLY = {"Merge", "MaxoutDense", "Highway", "TimeDistributedDense", "AtrousConvolution1D",
               "AtrousConvolution2D", "SReLU"}

_ACTIVATION_KEYS = ("activation", "recurrent_activation", "inner_activation")


@functools.lru_cache(maxsize=1)
def known_names() -> frozenset[str]:
    """Class/function names Keras 3 or tf_keras can deserialize without help."""
    # CuDNN* layers: tf_keras maps them to LSTM/GRU internally when loading
    names: set[str] = {"Model", "Sequential", "Functional", "InputLayer", "function", "linear",
                       "CuDNNLSTM", "CuDNNGRU"}
    modules = []
    try:
        import keras

        modules += [keras.layers, keras.initializers, keras.regularizers, keras.constraints,
                    keras.activations, keras.models, keras.dtype_policies, keras.losses,
                    keras.optimizers, keras.metrics]
    except ImportError:  # pragma: no cover
        pass
    try:
        import tf_keras

        modules += [tf_keras.layers, tf_keras.initializers, tf_keras.regularizers,
                    tf_keras.constraints, tf_keras.activations, tf_keras.models,
                    tf_keras.losses, tf_keras.optimizers, tf_keras.metrics]
        try:
            modules.append(tf_keras.layers.experimental)
        except AttributeError:
            pass
    except ImportError:  # pragma: no cover
        pass
    for module in modules:
        names.update(n for n in dir(module) if not n.startswith("_"))
    return frozenset(names)


def _registered(name: str) -> bool:
    try:
        import keras

        return keras.saving.get_registered_object(name) is not None
    except Exception:
        return False


def _candidates(config: Any) -> Iterator[str]:
    for _, node in walk(config):
        if not isinstance(node, dict):
            continue
        cls = node.get("class_name")
        if isinstance(cls, str) and "config" in node and not cls.startswith("__") \
                and cls != "function":
            registered = node.get("registered_name")
            yield registered if isinstance(registered, str) and ">" in registered else cls
        if cls == "function" and isinstance(node.get("config"), str):
            if not is_keras_module(str(node.get("module", ""))):
                yield node["config"]
        cfg = node.get("config")
        if isinstance(cfg, dict):
            for key in _ACTIVATION_KEYS:
                value = cfg.get(key)
                if isinstance(value, str):
                    yield value


def unknown_objects(config: Any, custom: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(missing_custom, legacy_only)``: names to register, and Keras 1 layers no loader has."""
    known = known_names()
    missing: list[str] = []
    legacy: list[str] = []
    for name in _candidates(config):
        bare = name.rsplit(">", 1)[-1]
        if name in custom or bare in custom or name in known or bare in known:
            continue
        if name in missing or name in legacy:
            continue
        if bare in LEGACY_ONLY:
            legacy.append(bare)
        elif not _registered(name):
            missing.append(name)
    return missing, legacy
