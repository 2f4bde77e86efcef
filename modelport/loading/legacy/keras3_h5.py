"""Keras 3 ``.h5`` files that Keras 3's own ``.h5`` reader cannot rebuild, and the repairs.

Keras 3 still writes ``.h5`` (``model.save("x.h5")``) with its legacy writer, and its
legacy reader (``keras/src/legacy/saving``: ``saving_utils.model_from_config`` and
``serialization.class_and_config_for_serialized_keras_object``) does not read back what
the writer wrote:

- **operations**: ``keras.ops`` calls on symbolic tensors (``x + y``, the ``NotEqual`` an
  ``Embedding(mask_zero=True)`` adds, ``ops.mean``) are stored as nodes under their bare
  class name, without the module a ``.keras`` file records; the reader looks every name up
  among *layers* only: ``Unknown layer: 'NotEqual'``, or the layer of the same name called
  the operation's way (``layers.Add`` given two tensors: "too many positional arguments").
- **function names**: the reader turns every string argument equal to the name of a
  function in the ``keras.layers`` namespace into that function:
  ``Attention(score_mode="dot")`` becomes ``score_mode=keras.layers.dot`` and is refused.

Each repair is gated on what the file records (an ``.h5`` written by Keras >= 3) and on
structure Keras 3 always writes (a layer's config has ``trainable``, an operation's
has not), and asks Keras 3's registries (``loading/registry.py``) which
names are operations and which strings its reader would turn into functions.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple

from modelport.loading.config import iter_layers, layer_name
from modelport.loading.raw import RawModel

__all__ = ["Repair", "REPAIRS", "applies", "repair"]

_OPS = "keras.src.ops"


class Repair(NamedTuple):
    name: str
    summary: str
    fix: Callable[[dict[str, Any], dict[str, Any]], list[str]]  # (config, objects) -> touched


def applies(raw: RawModel) -> bool:
    """An ``.h5`` file written by Keras 3 (its version attribute says so)."""
    return raw.kind == "h5" and raw.major >= 3 and raw.config is not None


def _is_operation(layer: dict[str, Any]) -> bool:
    # a Keras 3 layer's config always has "trainable" (Layer.get_config); an operation's
    # has only its name and arguments (which may include a dtype: ops.cast)
    cfg = layer.get("config")
    return isinstance(cfg, dict) and "trainable" not in cfg \
        and layer.get("class_name") != "InputLayer" and "inbound_nodes" in layer


def _operation_class(name: str) -> type | None:
    from keras.src.ops.operation import Operation

    from modelport.loading.registry import keras_object

    cls = keras_object(_OPS, name)
    return cls if inspect.isclass(cls) and issubclass(cls, Operation) and \
        not hasattr(cls, "add_weight") else None


def operations(config: dict[str, Any], objects: dict[str, Any]) -> list[str]:
    """Name each operation node by its module, so the reader finds the operation."""
    touched = []
    for _, layer in iter_layers(config):
        name = layer.get("class_name")
        if not isinstance(name, str) or ">" in name or not _is_operation(layer):
            continue
        cls = _operation_class(name)
        if cls is None:  # not a Keras operation: the author's class, reported as such
            continue
        key = f"{_OPS}>{name}"
        layer["class_name"] = key
        objects[key] = cls
        touched.append(layer_name(layer))
    return touched


def function_strings(config: dict[str, Any], objects: dict[str, Any]) -> list[str]:
    """Keep string arguments that name a ``keras.layers`` function strings."""
    import keras

    functions = {n for n, v in vars(keras.src.layers).items() if inspect.isfunction(v)}
    touched = []
    for _, layer in iter_layers(config):
        cfg = layer.get("config")
        if not isinstance(cfg, dict):
            continue
        hits = [v for k, v in cfg.items() if k != "name" and isinstance(v, str) and v in functions]
        for value in hits:
            # the reader asks the custom objects first; a string is not a function
            objects[value] = value
        if hits:
            touched.append(layer_name(layer))
    return touched


REPAIRS = [
    Repair("keras3_h5_operations",
           "Keras 3 stores keras.ops nodes in .h5 without their module and its .h5 reader "
           "looks them up among layers; named by module (keras.src.ops)", operations),
    Repair("keras3_h5_function_strings",
           "Keras 3's .h5 reader turns string arguments naming a keras.layers function "
           "(Attention score_mode='dot') into that function; kept as strings",
           function_strings),
]


def repair(raw: RawModel, config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Apply every repair to ``config`` in place; returns the objects the Keras 3 loader
    needs for them and one note per repair applied."""
    objects: dict[str, Any] = {}
    notes: list[str] = []
    if not applies(raw):
        return objects, notes
    for r in REPAIRS:
        touched = r.fix(config, objects)
        if touched:
            where = ", ".join(touched[:4]) + (", ..." if len(touched) > 4 else "")
            notes.append(f"upgrade {r.name}: {r.summary} [{where}]")
    return objects, notes
