"""Trace the loaded model once into a serving function that every converter consumes.

The function takes the Keras inputs as keyword arguments named after the Keras input
layers and returns ``{output_name: tensor}``, so names are fixed here, in one place.
``trace(source)`` returns a ``Serving``: the function per batch size, its concrete
function, a ``tf.Module`` owning the variables, and a memo for what converters derive
from it (the frozen graph that both ``.pb`` and ONNX use).

Input shapes are decided here too: by default the batch (and any dimension the model
leaves open) stays unknown; ``trace(source, shapes)`` fixes the dimensions the user gives
(``convert --input-shape image=1,224,224,3``) in every artifact traced from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from modelport.core.errors import UserInputError
from modelport.core.records import TensorInfo
from modelport.core.text import fmt_shape

from modelport.loading.random_ops import stateful_random

if TYPE_CHECKING:  # pragma: no cover
    from modelport.loading.source import SourceModel

__all__ = ["Serving", "trace", "parse_input_shapes", "check_input_shapes"]

Shape = list[int | None]
_OPEN = ("?", "-1", "none")  # how a user leaves one dimension as the model has it


def parse_input_shapes(items: Sequence[str] | Mapping[str, Any] | None) -> dict[str, Shape]:
    """``["image=1,224,224,3"]`` (or a dict of shapes) -> ``{"image": [1, 224, 224, 3]}``;
    ``?`` or ``-1`` keeps a dimension as the model has it (``image=?,224,224,3``).

    Raises:
        UserInputError: an item is not ``NAME=D1,D2,...`` with positive integers or ``?``.
    """
    if not items:
        return {}
    pairs = list(items.items()) if isinstance(items, Mapping) else \
        [tuple(str(i).partition("=")[::2]) for i in items]
    out: dict[str, Shape] = {}
    for name, dims in pairs:
        text = dims if isinstance(dims, str) else ",".join(
            "?" if d is None else str(d) for d in dims)
        shape: Shape = []
        try:
            for d in text.replace("x", ",").split(","):
                d = d.strip().lower()
                shape.append(None if d in _OPEN else int(d))
        except ValueError:
            shape = []
        if not str(name).strip() or not shape or any(d is not None and d <= 0 for d in shape):
            raise UserInputError(f"--input-shape {name}={text}: expected NAME=D1,D2,... with "
                                 "positive integers (or ? to keep a dimension open), batch "
                                 "first, e.g. image=1,224,224,3")
        out[str(name).strip()] = shape
    return out


def check_input_shapes(inputs: Sequence[TensorInfo],
                       shapes: Mapping[str, Sequence[int | None]]) -> dict[str, Shape]:
    """The shapes to fix, checked against the model's inputs: every name is an input,
    every shape has the input's rank (batch first) and keeps the dimensions the model
    fixes.

    Raises:
        UserInputError: one of them does not fit the model (the message names it).
    """
    by_name = {t.name: t for t in inputs}
    out: dict[str, Shape] = {}
    for name, dims in shapes.items():
        spec = by_name.get(name)
        given = ",".join("?" if d is None else str(d) for d in dims)
        if spec is None:
            raise UserInputError(f"--input-shape {name}={given}: the model has no input "
                                 f"{name!r}; its inputs are: {', '.join(by_name)}")
        model = list(spec.shape or [])
        if len(dims) != len(model):
            raise UserInputError(
                f"--input-shape {name}={given}: {len(dims)} dimensions given, the input has "
                f"rank {len(model)} (shape {fmt_shape(model, named=False)}); give all "
                f"{len(model)} dimensions, batch first")
        for i, (want, have) in enumerate(zip(model, dims)):
            if isinstance(want, int) and want > 0 and have is not None and have != want:
                raise UserInputError(
                    f"--input-shape {name}={given}: dimension {i} is fixed at {want} in the "
                    f"model (shape {fmt_shape(model, named=False)}), not {have}")
        out[name] = [None if d is None else int(d) for d in dims]
    return out


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
    """The source model as ``tf.function``s named after its inputs and outputs.

    ``shapes`` (input name -> shape, ``None`` for a dimension left open) are fixed in
    every function traced here; a batch size they fix wins over the one a caller asks for.
    """

    def __init__(self, source: "SourceModel",
                 shapes: Mapping[str, Sequence[int | None]] | None = None) -> None:
        self.source = source
        self.shapes: dict[str, Shape] = check_input_shapes(source.inputs, shapes or {})
        self._functions: dict[int | None, Any] = {}
        self._concrete: dict[int | None, Any] = {}
        self._memo: dict[str, Any] = {}

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the fixed shapes give every input, if they do."""
        batches = {(self.shapes.get(t.name) or [None])[0] for t in self.source.inputs}
        return batches.pop() if len(batches) == 1 and None not in batches else None

    def batch(self, batch_size: int | None) -> int | None:
        """The batch size a function traced for ``batch_size`` really has."""
        return self.fixed_batch or batch_size

    def input_shape(self, t: TensorInfo, batch_size: int | None = None) -> Shape:
        """The shape input ``t`` gets in the functions traced for ``batch_size``."""
        shape: list[Any] = list(t.shape or [])
        if shape:
            shape[0] = batch_size
        fixed = self.shapes.get(t.name)
        if fixed:
            shape = [s if f is None else f for f, s in zip(fixed, shape)]
        return [d if isinstance(d, int) and d >= 0 else None for d in shape]

    def tensors(self, batch_size: int | None = None) -> tuple[list[TensorInfo], list[TensorInfo]]:
        """The I/O records of an artifact traced for ``batch_size``: inputs with the shapes
        decided here, outputs with the shapes the trace infers from them (when shapes are
        fixed; otherwise the model's, with the batch dimension set)."""
        batch = self.batch(batch_size)
        inputs = [TensorInfo(t.name, self.input_shape(t, batch), t.dtype)
                  for t in self.source.inputs]
        if self.shapes:
            traced = self.concrete(batch_size).structured_outputs
            outputs = [TensorInfo(t.name, [d if d is None else int(d)
                                           for d in traced[t.name].shape.as_list()], t.dtype)
                       for t in self.source.outputs]
        else:
            outputs = [TensorInfo(t.name, [batch, *list(t.shape or [])[1:]]
                                  if t.shape else [], t.dtype) for t in self.source.outputs]
        return inputs, outputs

    def _specs(self, batch_size: int | None) -> list[Any]:
        import tensorflow as tf

        return [tf.TensorSpec(self.input_shape(t, batch_size), tf.as_dtype(t.dtype), name=t.name)
                for t in self.source.inputs]

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
        graph would re-trace every layer (slow, and it fails on some Lambda layers). The
        function is the concrete one already traced: a ``tf.function`` attribute is traced
        again inside ``tf.saved_model.save`` (its save context is another cache key), which
        cost 0.3 s of MobileNetV2's 1.3 s save; loaded, ``serve`` takes the same positional
        inputs either way.
        """
        import tensorflow as tf

        module = tf.Module()
        keras3 = self.source.framework == "keras3"
        module.model_variables = [getattr(v, "value", v) if keras3 else v
                                  for v in self.source.model.variables]
        module.serve = self.concrete(batch_size)
        return module

    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()`` once per key: what several converters derive from the trace."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]


def trace(source: "SourceModel",
          shapes: Mapping[str, Sequence[int | None]] | None = None) -> Serving:
    """The serving functions of ``source`` (traced lazily, once per batch size), with the
    input dimensions ``shapes`` gives fixed.

    Raises:
        UserInputError: ``shapes`` names an unknown input or contradicts the model.
    """
    return Serving(source, shapes)
