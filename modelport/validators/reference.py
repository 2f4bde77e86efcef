"""The reference side: the Keras model run once on the feeds, and what its answers say
about how much a comparison can prove (degenerate outputs, NaN, invisible layouts)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Mapping

import numpy as np

from modelport.core.errors import UserInputError
from modelport.core.text import one_line
from modelport.validators.compare import Tolerance, barely_varies, is_degenerate
from modelport.validators.layout import flipped, is_symmetric, shape_conflicts, to_layout

__all__ = ["Reference", "DEGENERATE", "run_reference", "check_outputs", "layout_warnings",
           "fixed_state"]

log = logging.getLogger(__name__)

DEGENERATE = "degenerate: outputs do not depend on the inputs"


@dataclass
class Reference:
    """The feeds (model layout; the last row is the layout probe when ``probe``) and the
    Keras model's outputs on them."""

    feeds: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    samples: int
    probe: bool
    layouts: dict[str, str | None]  # the layout each input is reasoned about in
    output_layouts: dict[str, str | None] = field(default_factory=dict)  # same, per output
    degenerate: list[str] = field(default_factory=list)
    nonfinite: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # the default rule of each float output, from its measured noise floor
    measured: dict[str, Tolerance] = field(default_factory=dict)
    # outputs that are random at inference, and their distribution samples: the first
    # rows of ``feeds`` each repeated ``draws`` times (``draw_feeds``), the model's
    # outputs on them as [rows, draws, ...]
    stochastic: list[str] = field(default_factory=list)
    draw_feeds: dict[str, np.ndarray] = field(default_factory=dict)
    draws: dict[str, np.ndarray] = field(default_factory=dict)
    degenerate_why: str = ""  # the layer that makes the outputs constant, when found
    # False: ``measured`` holds the floor-free minimum of the rule, the floor itself was not
    # measured (``validation.baseline(lazy_floor=True)``)
    floor_measured: bool = True


def _stateful_layers(model: Any) -> list[Any]:
    flatten = getattr(model, "_flatten_layers", None)
    layers = list(flatten()) if callable(flatten) else list(getattr(model, "layers", []) or [])
    # the model itself may say stateful (tf_keras) but holds no states of its own
    return [l for l in layers if getattr(l, "stateful", False) and hasattr(l, "reset_states")
            and hasattr(l, "states")]


def fixed_state(predict: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
                model: Any) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """``predict`` that leaves a stateful model's state as it found it: a stateful RNN
    carries its state from call to call, and the validator runs the reference several
    times on the same feeds (noise floor, random outputs) where each run must mean the
    same thing, and a second validation must see what the first saw. Models without
    stateful layers are left alone."""
    layers = _stateful_layers(model)
    if not layers:
        return predict

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        saved = [(v, np.array(v.numpy())) for l in layers for v in (l.states or [])
                 if hasattr(v, "assign")]
        try:
            return predict(feeds)
        finally:
            if saved:
                for v, w in saved:
                    v.assign(w)
            else:  # the states appeared during the call, from zeros
                for l in layers:
                    l.reset_states()

    return run


def run_reference(predict: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
                  feeds: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
    """``predict(feeds)``; a failure means the feeds do not suit the model (exit code 2).

    Raises:
        UserInputError: the model cannot run on these feeds or misses an output.
    """
    try:
        out = predict(feeds)
    except Exception as e:  # whatever Keras/TF raise for bad shapes or values
        log.debug("reference failed", exc_info=True)
        shapes = {k: list(v.shape) for k, v in feeds.items()}
        raise UserInputError(f"the Keras model cannot run on inputs of shape {shapes} "
                             f"({one_line(e)}); set the free dimensions with "
                             "--shape NAME=D1,D2,... or supply arrays with --inputs") from None
    missing = [n for n in output_names if n not in out]
    if missing:
        raise UserInputError(f"the Keras model did not produce output(s) {missing}")
    return {n: np.asarray(out[n]) for n in output_names}


def check_outputs(ref: Reference, tolerance: Callable[[str, np.ndarray], Tolerance]) -> None:
    """Fill ``ref.nonfinite``, ``ref.degenerate`` and warnings about weak evidence;
    ``tolerance(name, output)`` is the rule each output is judged by."""
    rows = next(iter(ref.feeds.values())).shape[0] if ref.feeds else 0
    for name, y in ref.outputs.items():
        if y.dtype.kind in "fc" and not np.isfinite(y).all():
            ref.nonfinite.append(name)
            continue
        if rows < 2 or name in ref.stochastic:
            continue
        floor = ref.measured[name].noise_floor if name in ref.measured else None
        if is_degenerate(y, floor):
            ref.degenerate.append(name)
        elif y.dtype.kind in "iub" and np.all(y == y[:1]):
            ref.warnings.append(f"output {name!r} is the same for every sample; it cannot "
                                "tell a correct artifact from a wrong one")
        elif barely_varies(y, tolerance(name, y)):
            ref.warnings.append(f"output {name!r} varies across samples by less than the "
                                "tolerance: a constant artifact would pass it; supply real "
                                "inputs with --inputs")
    if rows < 2:
        ref.warnings.append("only one sample: whether the outputs depend on the inputs "
                            "was not checked")


def layout_warnings(feeds: Mapping[str, np.ndarray], layouts: Mapping[str, str | None],
                    predict: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
                    specs: Mapping[str, Any],
                    tolerance: Callable[[str, np.ndarray], Tolerance],
                    skip: Collection[str] = ()) -> list[str]:
    """Inputs whose layout a comparison could not verify.

    A symmetric shape (H == W == C) lets a transposed feed fit, so only values can expose a
    layout bug; if transposing the input does not even change the reference output, a
    layout bug cannot be seen at all. Outputs in ``skip`` (random ones) are not compared.
    """
    warnings: list[str] = []
    probe = {k: v[-1:] for k, v in feeds.items()}  # the layout probe row, when there is one
    base: dict[str, np.ndarray] | None = None
    for name, layout in layouts.items():
        other = flipped(layout)
        if other is None:
            continue
        x = probe[name]
        moved = to_layout(x, layout, other)
        symmetric = is_symmetric(x.shape, layout)
        if symmetric:
            dims = "x".join(str(d) for d in x.shape[1:])
            warnings.append(f"input {name!r} has a symmetric shape ({dims}, H == W == C): "
                            f"its layout is unverified by shape, a transposed ({other}) feed fits "
                            "as well; "
                            "only the values (layout probe) tell the layouts apart")
        elif shape_conflicts(moved.shape, getattr(specs.get(name), "shape", None)):
            continue  # the shape alone exposes a wrong layout
        try:
            if base is None:
                base = predict(probe)
            alt = predict({**probe, name: moved})
        except Exception:  # the model refuses the transposed shape: shapes tell them apart
            log.debug("transposed reference run failed", exc_info=True)
            continue
        same = all(_close(np.asarray(alt[k]), np.asarray(v), tolerance(k, np.asarray(v)))
                   for k, v in base.items() if k not in skip)
        if same:
            warnings.append(f"input {name!r}: layout unverified, transposing it ({layout} -> "
                            f"{other}) does not change the Keras model's output, so an artifact "
                            "that reads it in the wrong layout would not be caught")
    return warnings


def _close(a: np.ndarray, b: np.ndarray, tol: Tolerance) -> bool:
    if a.shape != b.shape:
        return False
    # the probe row alone: its sample's atol is the largest measured one
    return bool(np.allclose(a, b, atol=tol.atol, rtol=tol.rtol, equal_nan=True))
