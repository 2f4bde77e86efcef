"""The replay behind ``relayout``: the model's graph run again, layer by layer, on
channels-last inputs (Keras 3's own graph walk, or tf_keras' node order), each layer
through its rule (``rules.py``), tracking the state of every tensor (``states.py``)."""

from __future__ import annotations

import math
from typing import Any, Callable

from modelport.loading.relayout.rules import (
    CODE, ELEMENTWISE, MERGE, SPATIAL, LayerRules, scalar_rescaling,
)
from modelport.loading.relayout.states import (
    CHANNELS_FIRST, Moved, all_layers, is_tensor, refuse, to_first, to_last,
)

__all__ = ["Replay"]


class Replay(LayerRules):
    """One replay of ``source.model`` with the inputs in ``move`` channels-last."""

    def __init__(self, source: Any, move: set[str], out_layouts: dict[str, str]) -> None:
        import tensorflow as tf

        self.tf = tf
        self.source = source
        self.move = move
        self.out_layouts = out_layouts
        if source.framework == "keras3":
            import keras as K
        else:
            import tf_keras as K
        self.K = K
        self._state: dict[int, tuple[Any, Any]] = {}  # id(tensor) -> (tensor, state)
        self._converted: dict[tuple[int, str], Any] = {}
        self._inputs: dict[int, str] = {}
        self._names: set[str] = {l.name for l in all_layers(source.model)}
        self.moved: set[str] = set()
        self.restored_inputs: set[str] = set()
        self.rewritten: list[str] = []
        self.transposes: list[str] = []
        self.new_inputs: list[Any] = []
        self.new_outputs: list[Any] = []
        self.moved_outputs: list[bool] = []

    # --- the walk -------------------------------------------------------------------------

    def run(self) -> Any:
        model = self.source.model
        for t, x in zip(self.source.inputs, model.inputs):
            dims = list(x.shape)
            shape = dims[1:]
            if t.name in self.move:
                shape = shape[1:] + shape[:1]
            inp = self.K.Input(shape=tuple(shape), batch_size=dims[0], name=t.name,
                               dtype=t.dtype)
            if t.name in self.move:
                self._set(inp, Moved(len(dims)))
                self.moved.add(t.name)
            self._inputs[id(inp)] = t.name
            self.new_inputs.append(inp)
        outputs = self._replay(model, self.new_inputs)
        flat = self.tf.nest.flatten(outputs)
        for t, y in zip(self.source.outputs, flat):
            keep = isinstance(self._get(y), Moved) and \
                self.out_layouts.get(t.name) in CHANNELS_FIRST
            self.new_outputs.append(y if keep else self._original(y))
            self.moved_outputs.append(keep)
        packed = self.tf.nest.pack_sequence_as(outputs, self.new_outputs)
        return self.K.Model(self.new_inputs, packed, name=model.name)

    def _replay(self, model: Any, inputs: Any) -> Any:
        if self.source.framework == "keras3":
            graph = getattr(model, "_functional", None) or model
            return graph._run_through_graph(inputs, operation_fn=lambda op: op,
                                            call_fn=self._call)
        if not getattr(model, "_is_graph_network", False):
            raise refuse(model, "is a subclassed model without a graph to rewrite")
        counts = model._tensor_usage_count
        tensors: dict[str, list[Any]] = {}
        for x, y in zip(model.inputs, self.tf.nest.flatten(inputs)):
            tensors[str(id(x))] = [y] * counts[str(id(x))]
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if node.is_input or any(i not in tensors for i in node.flat_input_ids):
                    continue
                args, kwargs = node.map_arguments(tensors)
                out = self._call(node.layer, *args, **kwargs)
                for x_id, y in zip(node.flat_output_ids, self.tf.nest.flatten(out)):
                    tensors[x_id] = [y] * counts[x_id]
        return self.tf.nest.pack_sequence_as(
            model._nested_outputs, [tensors[str(id(x))].pop() for x in model.outputs])

    # --- states and conversions -------------------------------------------------------------

    def _set(self, x: Any, state: Any) -> None:
        if state is not None:
            self._state[id(x)] = (x, state)

    def _get(self, x: Any) -> Any:
        hit = self._state.get(id(x))
        return hit[1] if hit is not None and hit[0] is x else None

    def _fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def _original(self, x: Any) -> Any:
        """``x`` as the original model had it (a transpose back, when it was moved)."""
        state = self._get(x)
        if state is None:
            return x
        key = (id(x), "original")
        if key not in self._converted:
            if id(x) in self._inputs:
                self.restored_inputs.add(self._inputs[id(x)])
            L = self.K.layers
            if isinstance(state, Moved):
                y = L.Permute(tuple(to_first(state.rank)[1:]),
                              name=self._fresh("to_channels_first"))(x)
            else:
                rank = len(state.shape) + 1
                y = L.Reshape(state.shape, name=self._fresh("unflatten"))(x)
                y = L.Permute(tuple(to_first(rank)[1:]), name=self._fresh("to_channels_first"))(y)
                y = L.Reshape((math.prod(state.shape),), name=self._fresh("flatten"))(y)
            self._converted[key] = y
        return self._converted[key]

    def _moved_form(self, x: Any) -> Any:
        """``x`` moved channels-last (a transpose when it was in the original layout)."""
        state = self._get(x)
        if isinstance(state, Moved):
            return x
        x = self._original(x)
        key = (id(x), "moved")
        if key not in self._converted:
            rank = len(x.shape)
            y = self.K.layers.Permute(tuple(to_last(rank)[1:]),
                                      name=self._fresh("to_channels_last"))(x)
            self._set(y, Moved(rank))
            self._converted[key] = y
        return self._converted[key]

    def _map(self, fn: Callable[[Any], Any], args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        mapped = self.tf.nest.map_structure(
            lambda v: fn(v) if is_tensor(v) else v, (list(args), kwargs))
        return tuple(mapped[0]), mapped[1]

    # --- the rules -------------------------------------------------------------------------

    def _call(self, layer: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(layer, self.K.Model):
            return self._replay(layer, args[0] if args else kwargs["inputs"])
        tensors = [v for v in self.tf.nest.flatten((list(args), kwargs)) if is_tensor(v)]
        states = [self._get(v) for v in tensors]
        kind = type(layer).__name__
        fmt = getattr(layer, "data_format", None)
        if fmt == "channels_first" and kind not in SPATIAL and kind != "Flatten":
            raise refuse(layer, "has data_format='channels_first' and no channels_last rule")
        for inner in all_layers(layer):
            if inner is not layer and getattr(inner, "data_format", None) == "channels_first":
                raise refuse(layer, f"wraps {inner.name!r} with data_format='channels_first'")
        if all(s is None for s in states) and not (kind in SPATIAL and fmt == "channels_first"):
            return layer(*args, **kwargs)  # nothing moved reaches it: as in the original
        rule = getattr(self, f"_rule_{kind}", None)
        if kind in SPATIAL:
            rule = self._spatial
        elif kind in ELEMENTWISE or (kind == "Rescaling" and scalar_rescaling(layer)):
            rule = self._passthrough
        elif kind in MERGE:
            rule = self._merge
        elif kind in CODE or not isinstance(layer, self.K.layers.Layer) or \
                not type(layer).__module__.startswith(("keras", "tf_keras")):
            rule = self._code
        out = (rule or self._generic)(layer, args, kwargs, states)
        return out
