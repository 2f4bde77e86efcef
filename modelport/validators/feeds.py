"""The feeds of one validation and the Keras model's outputs on them.

Generated feeds come from the domain each input declares (``inputs.choose_domains``). When
the Keras model answers them with NaN/Inf, or with outputs that do not vary with them,
nothing could be compared: the float inputs are drawn again from safer distributions in
turn (``inputs.SAFER_DOMAINS``) and the first that gives finite, varying outputs is used;
the report says which, and why. User feeds are used as given.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from modelport.loading.domain import InputDomain, input_domains
from modelport.validators.compare import is_degenerate
from modelport.validators.inputs import (
    SAFER_DOMAINS, choose_domains, generate_inputs, layout_probe, safer_domains,
)
from modelport.validators.reference import run_reference
from modelport.validators.user_inputs import batch_size, conform_inputs, load_inputs
from modelport.validators.user_inputs import save_inputs as write_inputs

__all__ = ["Feeds", "pick_feeds"]

log = logging.getLogger(__name__)

Predict = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class Feeds:
    """What the reference ran on: ``feeds`` (the probe row last when ``probe``), its
    ``outputs``, how many ``samples`` before the probe, per input the distribution it was
    drawn from and why (``None`` for user arrays), and the inputs that hold ids."""

    feeds: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    samples: int
    domains: dict[str, InputDomain] | None
    warnings: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # inputs that hold ids (never perturbed)

    def described(self) -> dict[str, dict[str, Any]]:
        """Per input: shape and dtype of the samples, the distribution, and why."""
        out = {}
        for k, v in self.feeds.items():
            d = self.domains.get(k) if self.domains else None
            out[k] = {"shape": [self.samples, *v.shape[1:]], "dtype": str(v.dtype),
                      "distribution": d.describe() if d else "user-supplied",
                      "why": d.reason if d else "supplied by the user (--inputs)"}
        return out



def _ids(domains: Mapping[str, InputDomain]) -> list[str]:
    """Inputs that hold ids or vocabulary values (never perturbed, even as floats)."""
    return [k for k, d in domains.items() if d.kind in ("integers", "values")]


def _with_probe(feeds: dict[str, np.ndarray], specs: list[Any], probe: bool,
                domains: Mapping[str, InputDomain] | None) -> dict[str, np.ndarray]:
    if not probe:
        return feeds
    extra = layout_probe(specs, feeds, domains=domains)
    return {k: np.concatenate([v, extra[k]]) for k, v in feeds.items()}


def _trouble(outputs: Mapping[str, np.ndarray]) -> tuple[int, int]:
    """(outputs with NaN/Inf, float outputs that do not vary across samples)."""
    nonfinite = sum(1 for y in outputs.values()
                    if y.dtype.kind in "fc" and not np.isfinite(y).all())
    flat = sum(1 for y in outputs.values() if is_degenerate(y))
    return nonfinite, flat


def pick_feeds(source: Any, predict: Predict, *, inputs: Any = None, samples: int = 4,
               seed: int = 0, shapes: Mapping[str, list[int]] | None = None,
               probe: bool = True, save_inputs: Any = None) -> Feeds:
    """Feeds (generated, or the user's ``inputs``) and the reference outputs on them.

    Raises:
        UserInputError: the inputs are unusable or the model cannot run on them.
    """
    specs = source.inputs
    declared = input_domains(source.model)
    first = choose_domains(specs, dict(source.embedding_vocab), declared)
    if inputs is not None:
        feeds = load_inputs(inputs, specs) if isinstance(inputs, (str, os.PathLike)) \
            else conform_inputs(inputs, specs)
        if save_inputs is not None:
            log.info("inputs saved to %s", write_inputs(save_inputs, feeds))
        n = batch_size(feeds)
        fed = _with_probe(feeds, specs, probe, first)  # the probe row in the model's domain
        return Feeds(fed, run_reference(predict, fed, source.output_names), n, None,
                     ids=_ids(first))

    attempts = [first]
    if safer_domains(specs, first, SAFER_DOMAINS[0]) != first:  # some float input to redraw
        attempts += [safer_domains(specs, first, d) for d in SAFER_DOMAINS]
    best: tuple[tuple[int, int], Feeds, dict[str, np.ndarray]] | None = None
    scores: list[tuple[int, int]] = []
    for domains in attempts:
        feeds = generate_inputs(specs, samples, seed, None, shapes or {}, source.layout,
                                domains)
        fed = _with_probe(feeds, specs, probe, domains)
        outputs = run_reference(predict, fed, source.output_names)
        scores.append(_trouble(outputs))
        if best is None or scores[-1] < best[0]:
            best = (scores[-1], Feeds(fed, outputs, batch_size(feeds), domains,
                                      ids=_ids(domains)), feeds)
        if scores[-1] == (0, 0):
            break
    assert best is not None
    score, result, kept = best
    if len(scores) > 1:
        result.warnings.append(_retry_note(attempts[:len(scores)], scores, result.domains))
    if save_inputs is not None:
        log.info("inputs saved to %s", write_inputs(save_inputs, kept))
    return result


def _dists(domains: Mapping[str, InputDomain]) -> str:
    return ", ".join(f"{k}: {d.describe()}" for k, d in domains.items())


def _retry_note(attempts: list[dict[str, InputDomain]], scores: list[tuple[int, int]],
                used: Mapping[str, InputDomain] | None) -> str:
    def what(score: tuple[int, int]) -> str:
        return "NaN/Inf" if score[0] else "outputs that do not vary with the inputs"

    if scores[-1] != (0, 0):
        tried = "; ".join(_dists(a) for a in attempts)
        return (f"the Keras model gives {what(scores[0])} on every input distribution tried "
                f"({tried}); no distribution could fix it")
    return (f"the Keras model gave {what(scores[0])} on inputs drawn from "
            f"{_dists(attempts[0])}; used {_dists(used or {})} instead")
