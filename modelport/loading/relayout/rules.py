"""The layer rules of the replay (``replay.py``): what each kind of layer becomes when
its inputs are moved channels-last. A mixin: the replay supplies the tensor states and the
conversions (``_get``, ``_set``, ``_original``, ``_moved_form``, ``_map``, ``_fresh``)."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from modelport.loading.relayout.states import (
    Flat, Moved, activation_name, flat_order, is_tensor, moved_axis, refuse, to_first, to_last,
)

__all__ = ["LayerRules", "SPATIAL", "ELEMENTWISE", "MERGE", "CODE", "scalar_rescaling"]

# layers with a data_format that mean the same with channels_last and unchanged weights
# (Keras stores conv kernels HWIO in both layouts)
SPATIAL = {f"{kind}{d}D" for d in (1, 2, 3) for kind in (
    "Conv", "MaxPooling", "AveragePooling", "GlobalMaxPooling", "GlobalAveragePooling",
    "ZeroPadding")} | {
    "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "SeparableConv1D",
    "SeparableConv2D", "DepthwiseConv1D", "DepthwiseConv2D", "UpSampling2D", "UpSampling3D",
    "Cropping2D", "Cropping3D", "SpatialDropout2D", "SpatialDropout3D"}
# identity at inference or elementwise: the layout passes through
ELEMENTWISE = {"ReLU", "LeakyReLU", "ELU", "ThresholdedReLU", "Dropout", "AlphaDropout",
               "GaussianNoise", "GaussianDropout", "ActivityRegularization", "Identity",
               "SpatialDropout1D"}
MERGE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
AXIS_ORDERED = ("softmax", "log_softmax")  # activations along the last axis
CODE = {"Lambda", "TFOpLambda", "SlicingOpLambda"}  # arbitrary code in the graph


class _Slot:
    """Where a probe array goes in a layer's arguments."""

    def __init__(self, index: int) -> None:
        self.index = index


class LayerRules:
    """Per kind of layer: ``rule(layer, args, kwargs, states) -> outputs``, the outputs'
    states recorded with ``_set``."""

    tf: Any
    K: Any
    rewritten: list[str]
    transposes: list[str]

    def _generic(self, layer: Any, args: tuple, kwargs: dict, states: list) -> Any:
        """A layer with no rule gets what the original model gave it."""
        if any(s is not None for s in states):
            self.transposes.append(f"{layer.name} ({type(layer).__name__})")
        args, kwargs = self._map(self._original, args, kwargs)
        return layer(*args, **kwargs)

    def _passthrough(self, layer: Any, args: tuple, kwargs: dict, states: list) -> Any:
        out = layer(*args, **kwargs)
        self._set(out, states[0])
        return out

    def _clone(self, layer: Any, args: tuple, kwargs: dict, weights: list | None = None,
               **changes: Any) -> Any:
        config = layer.get_config()
        config.update(changes)
        new = type(layer).from_config(config)
        out = new(*args, **kwargs)
        new.set_weights(layer.get_weights() if weights is None else weights)
        if hasattr(new, "finalize_state"):  # Normalization derives its statistics from them
            new.finalize_state()
        self.rewritten.append(layer.name)
        return out

    def _spatial(self, layer: Any, args: tuple, kwargs: dict, states: list) -> Any:
        if getattr(layer, "data_format", None) != "channels_first":
            return self._generic(layer, args, kwargs, states)
        if activation_name(layer) in AXIS_ORDERED:
            raise refuse(layer, f"applies {activation_name(layer)} along the last axis of a "
                         "channels_first tensor")
        args, kwargs = self._map(self._moved_form, args, kwargs)
        out = self._clone(layer, args, kwargs, data_format="channels_last")
        if len(out.shape) >= 3:
            self._set(out, Moved(len(out.shape)))
        return out

    def _rule_Flatten(self, layer: Any, args: tuple, kwargs: dict, states: list) -> Any:
        state = states[0]
        if getattr(layer, "data_format", None) == "channels_first":
            # it moves channels last itself before flattening: same order, nothing to do
            args, kwargs = self._map(self._moved_form, args, kwargs)
            return self._clone(layer, args, kwargs, data_format="channels_last")
        shape = tuple(list(args[0].shape)[1:])
        if not isinstance(state, Moved) or None in shape:
            return self._generic(layer, args, kwargs, states)
        out = layer(*args, **kwargs)
        self._set(out, Flat(shape))
        return out

    def _rule_Dense(self, layer: Any, args: tuple, kwargs: dict, states: list) -> Any:
        if not isinstance(states[0], Flat):
            return self._generic(layer, args, kwargs, states)
        kernel, *rest = layer.get_weights()
        return self._clone(layer, args, kwargs, [kernel[flat_order(states[0].shape)], *rest])

    def _rule_Reshape(self, layer: Any, args: tuple, kwargs: dict, states: list) -> Any:
        state = states[0]
        moved = tuple(list(args[0].shape)[1:])
        if not isinstance(state, Moved) or None in moved:
            return self._generic(layer, args, kwargs, states)
        channels, spatial = moved[-1], moved[:-1]
        target = list(layer.target_shape)
        if -1 in target:
            known = math.prod(d for d in target if d != -1)
            target[target.index(-1)] = math.prod(moved) // max(known, 1)
        if len(target) == 1:  # a Flatten in disguise
            out = layer(*args, **kwargs)
            self._set(out, Flat(moved))
            return out
        if target[0] == channels and math.prod(target[1:]) == math.prod(spatial):
            # channels stay whole; only the spatial axes are regrouped
            out = self._clone(layer, args, kwargs, target_shape=(*target[1:], channels))
            self._set(out, Moved(len(target) + 1))
            return out
        return self._generic(layer, args, kwargs, states)

    def _rule_Permute(self, layer: Any, args: tuple, kwargs: dict, states: list) -> Any:
        state = states[0]
        if not isinstance(state, Moved):
            return self._generic(layer, args, kwargs, states)
        q = to_last(state.rank)
        inverse = list(np.argsort(q))
        composed = [int(inverse[p]) for p in [0, *layer.dims]]
        if [composed[i] for i in q] == list(range(state.rank)):
            self.rewritten.append(layer.name)
            return args[0]  # the permutation only undid the move: the tensor stays moved
        self.rewritten.append(layer.name)
        return self.K.layers.Permute(tuple(composed[1:]), name=layer.name)(args[0])

    def _rule_Activation(self, layer: Any, args: tuple, kwargs: dict, states: list) -> Any:
        name = activation_name(layer)
        state = states[0]
        if name not in AXIS_ORDERED or isinstance(state, Flat):
            return self._passthrough(layer, args, kwargs, states)  # a flat softmax: any order
        if name != "softmax":
            return self._generic(layer, args, kwargs, states)
        self.rewritten.append(layer.name)
        out = self.K.layers.Softmax(axis=moved_axis(-1, state.rank), name=layer.name)(args[0])
        self._set(out, state)
        return out

    def _axis_rule(self, layer: Any, args: tuple, kwargs: dict, states: list,
                   flat_ok: bool = False, weights_by_feature: bool = False) -> Any:
        state = states[0]
        axis = layer.get_config().get("axis")
        if isinstance(axis, (list, tuple)) and len(axis) == 1:
            axis = int(axis[0])
        if isinstance(state, Flat) and flat_ok and axis in (-1, 1):
            if not weights_by_feature:
                return self._passthrough(layer, args, kwargs, states)
            order = flat_order(state.shape)
            out = self._clone(layer, args, kwargs, [w[order] for w in layer.get_weights()])
            self._set(out, state)
            return out
        if not isinstance(state, Moved) or not isinstance(axis, int):
            return self._generic(layer, args, kwargs, states)
        out = self._clone(layer, args, kwargs, axis=moved_axis(axis, state.rank))
        self._set(out, state)
        return out

    def _rule_BatchNormalization(self, layer, args, kwargs, states):
        return self._axis_rule(layer, args, kwargs, states, flat_ok=True, weights_by_feature=True)

    def _rule_Softmax(self, layer, args, kwargs, states):
        return self._axis_rule(layer, args, kwargs, states, flat_ok=True)

    def _rule_UnitNormalization(self, layer, args, kwargs, states):
        return self._axis_rule(layer, args, kwargs, states, flat_ok=True)

    def _rule_GroupNormalization(self, layer, args, kwargs, states):
        return self._axis_rule(layer, args, kwargs, states)

    def _rule_Normalization(self, layer, args, kwargs, states):
        # per-channel statistics (one value per channel, plus a scalar count)
        if any(np.ndim(w) > 1 for w in layer.get_weights()):
            return self._generic(layer, args, kwargs, states)
        return self._axis_rule(layer, args, kwargs, states)

    def _rule_LayerNormalization(self, layer: Any, args: tuple, kwargs: dict,
                                 states: list) -> Any:
        state = states[0]
        axes = [a % len(args[0].shape) for a in np.atleast_1d(layer.axis)]
        if isinstance(state, Flat) and axes == [1]:
            order = flat_order(state.shape)
            out = self._clone(layer, args, kwargs, [w[order] for w in layer.get_weights()])
            self._set(out, state)
            return out
        if not isinstance(state, Moved):
            return self._generic(layer, args, kwargs, states)
        new = sorted(moved_axis(a, state.rank) for a in axes)
        # the weights span the normalised axes in the order of ``axes``
        order = [axes.index(next(a for a in axes if moved_axis(a, state.rank) == n)) for n in new]
        weights = [np.transpose(w, order) if w.ndim == len(order) else w
                   for w in layer.get_weights()]
        out = self._clone(layer, args, kwargs, weights, axis=new if len(new) > 1 else new[0])
        self._set(out, state)
        return out

    def _rule_Concatenate(self, layer: Any, args: tuple, kwargs: dict, states: list) -> Any:
        return self._merge(layer, args, kwargs, states, axis=True)

    def _merge(self, layer: Any, args: tuple, kwargs: dict, states: list,
               axis: bool = False) -> Any:
        tensors = [v for v in self.tf.nest.flatten((list(args), kwargs)) if is_tensor(v)]
        ranks = {len(v.shape) for v in tensors}
        moved = [s for s in states if isinstance(s, Moved)]
        flats = {s for s in states if isinstance(s, Flat)}
        if moved and len(ranks) == 1 and not flats:
            args, kwargs = self._map(self._moved_form, args, kwargs)
            rank = ranks.pop()
            out = self._clone(layer, args, kwargs, axis=moved_axis(layer.axis, rank)) if axis \
                else layer(*args, **kwargs)
            self._set(out, Moved(rank))
            return out
        if not axis and len(flats) == 1 and all(isinstance(s, Flat) for s in states):
            return self._passthrough(layer, args, kwargs, states)
        return self._generic(layer, args, kwargs, states)

    def _rule_PReLU(self, layer: Any, args: tuple, kwargs: dict, states: list) -> Any:
        state = states[0]
        (alpha,) = layer.get_weights()
        if isinstance(state, Flat) and alpha.ndim == 1:
            out = self._clone(layer, args, kwargs, [alpha[flat_order(state.shape)]])
        elif isinstance(state, Moved) and alpha.ndim == state.rank - 1:
            shared = layer.get_config().get("shared_axes")
            out = self._clone(
                layer, args, kwargs, [np.transpose(alpha, [a - 1 for a in to_last(state.rank)[1:]])],
                shared_axes=None if shared is None else [moved_axis(a, state.rank) for a in shared])
        else:
            return self._generic(layer, args, kwargs, states)
        self._set(out, state)
        return out

    def _code(self, layer: Any, args: tuple, kwargs: dict, states: list) -> Any:
        """Code the rewrite cannot read: kept only if it commutes with the move."""
        if any(isinstance(s, Flat) for s in states):
            return self._generic(layer, args, kwargs, states)
        if not _commutes(self.tf, layer, args, kwargs, self._get):
            raise refuse(layer, "computes along the axes of a channels_first tensor (its "
                         "output changes when its input is transposed)")
        out = layer(*args, **kwargs)
        rank = next(s.rank for s in states if isinstance(s, Moved))
        for y in self.tf.nest.flatten(out):
            if is_tensor(y) and len(y.shape) == rank:
                self._set(y, Moved(rank))
        return out


def scalar_rescaling(layer: Any) -> bool:
    return np.ndim(getattr(layer, "scale", 1.0)) == 0 and \
        np.ndim(getattr(layer, "offset", 0.0)) == 0


def _commutes(tf: Any, layer: Any, args: tuple, kwargs: dict, state_of: Callable) -> bool:
    """Whether ``layer`` gives the moved output for a moved input (two random probes, run
    eagerly; the original-layout inputs are the same in both runs)."""
    rng = np.random.default_rng(0)
    plain: list[Any] = []
    moved: list[Any] = []
    ranks = set()

    def probe(v: Any) -> Any:
        state = state_of(v)
        dims = [2] + [d if d is not None else 5 + i for i, d in enumerate(list(v.shape)[1:])]
        dtype = np.dtype(getattr(v.dtype, "name", str(v.dtype)))
        value = rng.standard_normal(dims).astype(dtype) if dtype.kind == "f" else \
            rng.integers(0, 5, dims).astype(dtype)
        if isinstance(state, Moved):
            ranks.add(state.rank)
            plain.append(np.transpose(value, to_first(state.rank)))
        else:
            plain.append(value)
        moved.append(value)
        return _Slot(len(plain) - 1)

    slots = tf.nest.map_structure(lambda v: probe(v) if is_tensor(v) else v,
                                  (list(args), kwargs))

    def run(values: list) -> list:
        a, k = tf.nest.map_structure(
            lambda i: tf.constant(values[i.index]) if isinstance(i, _Slot) else i, slots)
        return [np.asarray(y) for y in tf.nest.flatten(layer(*a, **k))]

    try:
        want, got = run(plain), run(moved)
    except Exception:  # the layer cannot even take the moved shapes
        return False
    rank = ranks.pop() if len(ranks) == 1 else None
    for y, g in zip(want, got):
        if rank is not None and y.ndim == rank:
            y = np.transpose(y, to_last(rank))
        scale = float(np.max(np.abs(y))) if y.size else 0.0
        if y.shape != g.shape or not np.allclose(y, g, rtol=1e-4, atol=1e-5 * max(scale, 1.0)):
            return False
    return len(want) == len(got)
