"""Trace the loaded model once into a serving function that every converter consumes.

The function takes the Keras inputs as keyword arguments named after the Keras input
layers and returns ``{output_name: tensor}``, so names are fixed here, in one place.
``trace(source)`` returns a ``Serving``: the function per batch size, its concrete
function, a ``tf.Module`` owning the variables, and a memo for what converters derive
from it (the frozen graph that both ``.pb`` and ONNX use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from modelport.loading.random_ops import stateful_random

if TYPE_CHECKING:  # pragma: no cover
    from modelport.loading.source import SourceModel

__all__ = ["Serving", "trace"]


def _call_model(source: "SourceModel", kwargs: dict[str, Any]) -> dict[str, Any]:
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


class Serving:
    """The source model as ``tf.function``s named after its inputs and outputs."""

    def __init__(self, source: "SourceModel") -> None:
        self.source = source
        self._functions: dict[int | None, Any] = {}
        self._concrete: dict[int | None, Any] = {}
        self._memo: dict[str, Any] = {}

    def _specs(self, batch_size: int | None) -> list[Any]:
        import tensorflow as tf

        specs = []
        for t in self.source.inputs:
            shape = list(t.shape or [])
            if shape:
                shape[0] = batch_size
            specs.append(tf.TensorSpec(shape, tf.as_dtype(t.dtype), name=t.name))
        return specs

    def tf_function(self, batch_size: int | None = None) -> Any:
        """A positional ``tf.function`` with named specs: SavedModel and TFLite take the
        spec names as signature keys, and the frozen graph names its placeholders after
        them."""
        if batch_size not in self._functions:
            import tensorflow as tf

            source = self.source
            names = source.input_names

            def serve(*args: Any) -> dict[str, Any]:
                # runs only while tracing: random draws become ops every runtime has
                with stateful_random():
                    return _call_model(source, dict(zip(names, args)))

            self._functions[batch_size] = tf.function(
                serve, input_signature=self._specs(batch_size), autograph=False)
        return self._functions[batch_size]

    def __call__(self, **feeds: Any) -> dict[str, Any]:
        """Run the dynamic-batch function on tensors keyed by input name."""
        return self.tf_function()(*[feeds[n] for n in self.source.input_names])

    def concrete(self, batch_size: int | None = None) -> Any:
        if batch_size not in self._concrete:
            self._concrete[batch_size] = self.tf_function(batch_size).get_concrete_function()
        return self._concrete[batch_size]

    def module(self, batch_size: int | None = None) -> Any:
        """A ``tf.Module`` that owns the model's variables and the serving function.

        Only the variables are tracked, not the Keras model object: saving a Keras object
        graph would re-trace every layer (slow, and it fails on some Lambda layers).
        """
        import tensorflow as tf

        module = tf.Module()
        keras3 = self.source.framework == "keras3"
        module.model_variables = [getattr(v, "value", v) if keras3 else v
                                  for v in self.source.model.variables]
        module.serve = self.tf_function(batch_size)
        return module

    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()`` once per key: what several converters derive from the trace."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]


def trace(source: "SourceModel") -> Serving:
    """The serving functions of ``source`` (traced lazily, once per batch size)."""
    return Serving(source)
