"""The reference's own float32 noise floor, measured on the very feeds being compared.

A port computes the model in float32 in another order (folded BatchNorm, fused kernels,
other summation orders and activation approximations): each op rounds differently, by
about one float32 unit in the last place, and the network amplifies those roundings as
much as it amplifies any perturbation. So the Keras model is run again with its float
inputs and every float weight perturbed by up to one float32 rounding (relative 2^-23,
random signs): how far its outputs move is the noise floor a correct port cannot beat.
A deep net with realistic activations moves by ~1e-5 of its scale; a model pushed out of
its domain can move by percents (it is ill-conditioned there).

Running the model a second time on the same feeds also tells which outputs are random
at inference (a sampling layer): those are compared by distribution, not element-wise.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Iterator, Mapping

import numpy as np

__all__ = ["EPS32", "NoiseFloor", "WeightNoise", "measure_noise", "perturbed_feeds",
           "perturbed_weights"]

log = logging.getLogger(__name__)

EPS32 = float(np.finfo(np.float32).eps)  # 2^-23: one rounding of a float32 value near 1
DRAWS = 3

Predict = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class NoiseFloor:
    """Per float output: ``floors`` the largest change (absolute) seen over the perturbed
    runs, one per sample (or a single one when the output has no sample axis); ``rerun``
    the largest change between two plain runs (non-zero: the model is not deterministic);
    ``stochastic`` the outputs whose plain reruns differ beyond rounding."""

    floors: dict[str, np.ndarray] = field(default_factory=dict)
    rerun: dict[str, float] = field(default_factory=dict)
    draws: int = 0
    stochastic: list[str] = field(default_factory=list)

    def floor(self, name: str) -> float:
        """The output's largest noise floor (0.0 when not measured)."""
        f = self.floors.get(name)
        return float(np.max(f)) if f is not None and np.size(f) else 0.0


def perturbed_feeds(feeds: Mapping[str, np.ndarray], rng: np.random.Generator,
                    rel: float = EPS32, fixed: Collection[str] = ()) -> dict[str, np.ndarray]:
    """Float feeds times ``1 + rel*u`` (``u`` uniform in [-1, 1]); others, and the
    ``fixed`` ones (ids stored as floats: 517 * (1 - 1e-7) would truncate to id 516),
    unchanged."""
    out = {}
    for k, v in feeds.items():
        v = np.asarray(v)
        if v.dtype.kind == "f" and k not in fixed:
            u = rng.uniform(-1.0, 1.0, v.shape)
            v = (v.astype(np.float64) * (1.0 + rel * u)).astype(v.dtype)
        out[k] = v
    return out


_POOL = 65537  # a prime: the repeated factors never line up with a tensor's dimensions


class WeightNoise:
    """The float weights of ``model``, read once: ``perturb(rng)`` sets every one to its
    original value times ``1 + rel*u`` (``u`` uniform in [-1, 1]), ``restore()`` puts the
    exact originals back. Weights that cannot be read or assigned are left alone. The
    factors cycle through a pool of random ones (drawing one per element costs seconds on
    a 25M-weight net), and are assigned to the variables TensorFlow holds (a Keras 3
    variable's own ``assign`` checks and converts each value: 262 of MobileNetV2's took
    34 ms, reading them again for each draw 45 ms more)."""

    def __init__(self, model: Any) -> None:
        self.weights: list[tuple[Any, np.ndarray]] = []
        seen: set[int] = set()
        for v in getattr(model, "weights", None) or []:
            target = _assignable(v)
            if id(v) in seen or id(target) in seen:
                continue
            seen.update((id(v), id(target)))
            try:
                w = np.asarray(target.numpy())
            except Exception:  # a weight without numpy() (a resource of a layer)
                log.debug("weight %s not read", getattr(v, "name", "?"), exc_info=True)
                continue
            if w.dtype.kind == "f" and w.size:
                self.weights.append((target, w))
        self._moved = False

    def __len__(self) -> int:
        return len(self.weights)

    def perturb(self, rng: np.random.Generator, rel: float = EPS32) -> int:
        """Every weight perturbed afresh from its original; returns how many were."""
        pool = 1.0 + rel * rng.uniform(-1.0, 1.0, _POOL)
        done = []
        self._moved = True
        for target, w in self.weights:
            start = int(rng.integers(_POOL))
            factors = np.resize(np.roll(pool, start).astype(w.dtype), w.shape)
            try:
                _assign(target, w * factors)
                done.append((target, w))
            except Exception:  # a weight that cannot be assigned
                log.debug("weight %s not perturbed", getattr(target, "name", "?"),
                          exc_info=True)
        self.weights = done
        return len(done)

    def restore(self) -> None:
        """The exact original values, back in every weight perturbed."""
        if self._moved:
            for target, w in reversed(self.weights):
                _assign(target, w)
            self._moved = False


def _assignable(v: Any) -> Any:
    """The TensorFlow variable behind a Keras 3 variable (``v`` itself otherwise)."""
    inner = getattr(v, "_value", None)
    return inner if inner is not None and hasattr(inner, "assign") and \
        hasattr(inner, "numpy") else v


def _assign(target: Any, value: np.ndarray) -> None:
    try:
        target.assign(value, read_value=False)
    except TypeError:  # not a tf.Variable: no read_value
        target.assign(value)


@contextlib.contextmanager
def perturbed_weights(model: Any, rng: np.random.Generator,
                      rel: float = EPS32) -> Iterator[int]:
    """Within the block, every float weight of ``model`` is multiplied by ``1 + rel*u``
    (yields how many); the exact original values are restored on exit, whatever happens."""
    noise = WeightNoise(model)
    try:
        yield noise.perturb(rng, rel)
    finally:
        noise.restore()


def _changes(a: np.ndarray, b: np.ndarray, rows: int) -> np.ndarray:
    """The largest finite |a - b| per sample (one value when there is no sample axis)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return np.array([np.inf])
    # in the arrays' own float type: the difference of two nearby floats is exact, and a
    # deep net's layers hold millions of values (float64 copies cost seconds)
    kind = np.float32 if a.dtype == b.dtype == np.float32 else np.float64
    d = np.abs(a.astype(kind, copy=False) - b.astype(kind, copy=False))
    d[~np.isfinite(d)] = 0.0  # where either side is NaN/Inf
    if d.ndim >= 1 and d.shape[0] == rows and d.size:
        return d.reshape(rows, -1).max(axis=1).astype(np.float64)
    return np.array([float(d.max()) if d.size else 0.0])


def measure_noise(predict: Predict, feeds: Mapping[str, np.ndarray],
                  outputs: Mapping[str, np.ndarray], model: Any = None,
                  draws: int = DRAWS, seed: int = 0, fixed: Collection[str] = (),
                  random_if: Callable[[str, np.ndarray, np.ndarray], bool] | None = None,
                  rerun: bool = True) -> NoiseFloor:
    """Run ``predict`` again on ``feeds`` (plain, then ``draws`` times perturbed) and
    measure how far each float output of ``outputs`` (the first run) moves.

    Args:
        predict: the Keras model's function (feeds -> outputs by name).
        feeds: the feeds ``outputs`` came from.
        outputs: the first run's outputs.
        model: the Keras model whose weights are perturbed (``None``: inputs only).
        draws: perturbed runs.
        seed: for the perturbations.
        fixed: inputs never perturbed (ids, even when stored as floats).
        random_if: ``(name, first, rerun) -> bool``: whether a plain rerun that differs
            makes the output random (the caller's pass rule at a zero noise floor); by
            default a difference beyond 64 roundings of the output's largest value.
        rerun: run once more unperturbed, to find random outputs (skip it when the
            caller already knows none is).
    """
    rng = np.random.default_rng(seed + 7919)
    rows = next(iter(feeds.values())).shape[0] if feeds else 1
    floats = [k for k, y in outputs.items() if np.asarray(y).dtype.kind == "f"]
    result = NoiseFloor(draws=draws)
    if not floats:
        return result
    again_out = predict(dict(feeds)) if rerun else outputs
    decide = random_if or _differs
    # each draw perturbs every weight afresh from its original: restored once, at the end
    weights = WeightNoise(model) if model is not None else None
    try:
        for _ in range(draws):
            if weights is not None:
                weights.perturb(rng)
            moved = predict(perturbed_feeds(feeds, rng, fixed=fixed))
            for k in floats:
                change = _changes(moved[k], outputs[k], rows)
                result.floors[k] = np.maximum(result.floors.get(k, change), change)
    finally:
        if weights is not None:
            weights.restore()
    for k in floats:
        if not rerun:
            continue
        again = _changes(again_out[k], outputs[k], rows)
        result.rerun[k] = float(again.max())
        if result.rerun[k] > 0 and decide(k, np.asarray(outputs[k]), np.asarray(again_out[k])):
            result.stochastic.append(k)
        else:  # nondeterministic kernels are noise too
            result.floors[k] = np.maximum(result.floors[k], again)
    return result


def _differs(name: str, first: np.ndarray, rerun: np.ndarray) -> bool:
    scale = np.abs(np.asarray(first, np.float64))
    scale = float(scale[np.isfinite(scale)].max()) if np.isfinite(scale).any() else 0.0
    return float(np.max(_changes(first, rerun, -1))) > 64.0 * EPS32 * scale
