"""Trace the loaded model once into a serving function that every converter consumes.

The function takes the Keras inputs as keyword arguments named after the Keras input
layers and returns ``{output_name: tensor}``, so names are fixed here, in one place.
"""

from __future__ import annotations

from typing import Any

__all__ = ["serving_function", "concrete_function", "tracked_module"]


def _call_model(source: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    model = source.model
    args = [kwargs[n] for n in source.input_names]
    result = model(args[0] if len(args) == 1 else args, training=False)
    if isinstance(result, dict):
        if set(result) == set(source.output_names):
            values = [result[k] for k in source.output_names]
        else:
            values = [result[k] for k in result]
    elif isinstance(result, (list, tuple)):
        values = list(result)
    else:
        values = [result]
    if len(values) != len(source.outputs):
        raise RuntimeError(
            f"model returned {len(values)} outputs, its config declares {len(source.outputs)}"
        )
    import tensorflow as tf

    return {name: tf.identity(v) for name, v in zip(source.output_names, values)}


def _specs(source: Any, batch_size: int | None):
    import tensorflow as tf

    specs = []
    for t in source.inputs:
        shape = list(t.shape or [])
        if shape:
            shape[0] = batch_size
        specs.append(tf.TensorSpec(shape, tf.as_dtype(t.dtype), name=t.name))
    return specs


def serving_function(source: Any, batch_size: int | None = None):
    """A ``tf.function`` over the model, cached per batch size on the source."""
    key = ("fn", batch_size)
    if key in source._serving:
        return source._serving[key]
    import tensorflow as tf

    specs = _specs(source, batch_size)
    names = source.input_names

    # a positional signature with named specs: SavedModel and TFLite take the spec names
    # as signature keys, and the frozen graph names its placeholders after them
    def serve(*args):
        return _call_model(source, dict(zip(names, args)))

    fn = tf.function(serve, input_signature=specs, autograph=False)

    def by_name(**kwargs):
        return fn(*[kwargs[n] for n in names])

    by_name.tf_function = fn  # type: ignore[attr-defined]
    source._serving[key] = by_name
    return by_name


def concrete_function(source: Any, batch_size: int | None = None):
    key = ("cf", batch_size)
    if key not in source._serving:
        source._serving[key] = serving_function(source, batch_size).tf_function.get_concrete_function()
    return source._serving[key]


def tracked_module(source: Any, batch_size: int | None = None):
    """A ``tf.Module`` that owns the model's variables and the serving function.

    Only the variables are tracked, not the Keras model object: saving a Keras object graph
    would re-trace every layer (slow, and it fails on some Lambda layers).
    """
    import tensorflow as tf

    module = tf.Module()
    variables = []
    for v in source.model.variables:
        variables.append(getattr(v, "value", v) if source.framework == "keras3" else v)
    module.model_variables = variables
    module.serve = serving_function(source, batch_size).tf_function
    return module
