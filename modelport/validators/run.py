"""Running one artifact on the validator's feeds, through its format module's runner.

Feeds and results are bound by tensor name (TFLite reorders multiple outputs, so order
means nothing when names exist); by position only when the artifact lacks the model's
names, and then with a note. Feeds arrive in the Keras model's layout and are transposed
only to the layout the artifact declares.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from modelport import converters
from modelport.converters.base import Runner
from modelport.core.records import TensorInfo
from modelport.core.text import one_line
from modelport.validators.layout import to_layout

__all__ = ["ArtifactRunError", "Binding", "open_runner", "bind_names", "bind", "run_artifact",
           "run_artifact_with"]

log = logging.getLogger(__name__)


class ArtifactRunError(Exception):
    """The artifact could not be loaded, bound or run; the message is the diagnosis."""


def open_runner(path: str, fmt: str) -> Runner:
    """Load the artifact in its own runtime (``converters.get(fmt).load``)."""
    try:
        return converters.get(fmt).load(path)
    except Exception as e:  # every runtime raises its own types for a damaged artifact
        log.debug("loading %s failed", path, exc_info=True)
        raise ArtifactRunError(f"cannot load it: {one_line(e)}") from e


def _bare(name: str) -> str:
    return name[:-2] if name.endswith(":0") else name


def bind_names(model: list[str], artifact: list[str], what: str) -> tuple[dict[str, str], list[str]]:
    """Map each model tensor name to an artifact tensor name.

    By name first (ignoring a ``:0`` suffix); the rest by position among the unmatched ones
    when both sides have as many, with a note; otherwise an error.

    Raises:
        ArtifactRunError: the artifact's tensors cannot be matched to the model's.
    """
    bare = {_bare(a): a for a in artifact}
    mapping = {m: bare[_bare(m)] for m in model if _bare(m) in bare}
    rest_model = [m for m in model if m not in mapping]
    if not rest_model:
        return mapping, []
    used = set(mapping.values())
    rest_art = [a for a in artifact if a not in used]
    if len(rest_art) != len(rest_model):
        raise ArtifactRunError(f"its {what}s {artifact} do not match the model's {model}")
    mapping.update(zip(rest_model, rest_art))
    pairs = ", ".join(f"{m} <- {a}" for m, a in zip(rest_model, rest_art))
    note = (f"{what}s matched by position because the artifact lacks the model's names: "
            f"{pairs}")
    return mapping, [note]


@dataclass
class Binding:
    """How the model's tensor names map onto one opened artifact."""

    runner: Runner
    inputs: dict[str, str]
    outputs: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def artifact_input(self, model_name: str) -> TensorInfo:
        name = self.inputs[model_name]
        return next(t for t in self.runner.inputs if t.name == name)


def bind(runner: Runner, model_inputs: list[str], model_outputs: list[str]) -> Binding:
    ins, n1 = bind_names(model_inputs, [t.name for t in runner.inputs], "input")
    outs, n2 = bind_names(model_outputs, [t.name for t in runner.outputs], "output")
    return Binding(runner, ins, outs, n1 + n2)


def _fixed_batch(binding: Binding, declared: int | None) -> int | None:
    if binding.runner.fixed_batch:
        return binding.runner.fixed_batch
    for t in binding.runner.inputs:
        if t.shape and isinstance(t.shape[0], int) and t.shape[0] > 0:
            return t.shape[0]
    return declared


def _run_batched(runner: Runner, feeds: dict[str, np.ndarray], fixed: int | None,
                 n: int) -> dict[str, np.ndarray]:
    return _batched(runner.run, feeds, fixed, n)


def _batched(run: Callable[[dict[str, np.ndarray]], Any], feeds: dict[str, np.ndarray],
             fixed: int | None, n: int) -> Any:
    """``run(feeds)``; for a fixed-batch artifact, chunk by chunk (the last chunk padded
    with its first rows) with the results stitched back together. ``run`` returns a dict
    of arrays, or a tuple of such dicts."""
    if not fixed or fixed == n:
        return run(feeds)
    parts: list[Any] = []
    for start in range(0, n, fixed):
        stop = min(start + fixed, n)
        chunk = {}
        for k, v in feeds.items():
            piece = v[start:stop]
            if stop - start < fixed:
                reps = -(-fixed // len(piece))
                piece = np.concatenate([piece] * reps)[:fixed]
            chunk[k] = piece
        out = run(chunk)
        many = isinstance(out, tuple)
        parts.append(tuple({k: np.asarray(v)[: stop - start] for k, v in d.items()}
                           for d in (out if many else (out,))))
    stitched = tuple({k: np.concatenate([p[i][k] for p in parts]) for k in parts[0][i]}
                     for i in range(len(parts[0])))
    return stitched if len(stitched) > 1 else stitched[0]


def _artifact_feeds(binding: Binding, feeds: Mapping[str, np.ndarray],
                    model_layout: Mapping[str, str | None],
                    feed_layout: Mapping[str, str | None]) -> dict[str, np.ndarray]:
    """The feeds by artifact input name, in the layout and dtype the artifact takes."""
    art_feeds: dict[str, np.ndarray] = {}
    for name, x in feeds.items():
        x = to_layout(np.asarray(x), model_layout.get(name), feed_layout.get(name))
        spec = binding.artifact_input(name)
        try:
            want = np.dtype(spec.dtype) if spec.dtype else x.dtype
        except TypeError:
            want = x.dtype
        art_feeds[spec.name] = x.astype(want) if want != x.dtype else x
    return art_feeds


def _model_outputs(binding: Binding, out: Mapping[str, np.ndarray],
                   output_layouts: Mapping[str, tuple[str | None, str | None]] | None,
                   ) -> dict[str, np.ndarray]:
    result: dict[str, np.ndarray] = {}
    for model_name, art_name in binding.outputs.items():
        if art_name not in out:
            continue
        y = np.asarray(out[art_name])
        art_layout, ref_layout = (output_layouts or {}).get(model_name, (None, None))
        result[model_name] = to_layout(y, art_layout, ref_layout)
    return result


def run_artifact_with(binding: Binding, feeds: Mapping[str, np.ndarray],
                      model_layout: Mapping[str, str | None],
                      feed_layout: Mapping[str, str | None], extra: list[str],
                      output_layouts: Mapping[str, tuple[str | None, str | None]] | None = None,
                      fixed_batch: int | None = None,
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``run_artifact`` that also returns the intermediate tensors named in ``extra``
    (``Runner.run_with``), as the artifact holds them (layout untouched).

    Raises:
        ArtifactRunError: the runtime rejected the feeds or failed.
    """
    n = next(iter(feeds.values())).shape[0] if feeds else 1
    art_feeds = _artifact_feeds(binding, feeds, model_layout, feed_layout)
    try:
        out, got = _batched(lambda f: binding.runner.run_with(f, extra), art_feeds,
                            _fixed_batch(binding, fixed_batch), n)
    except Exception as e:  # runtimes raise anything from shape checks to kernel errors
        log.debug("running %s failed", binding.runner.path, exc_info=True)
        raise ArtifactRunError(f"the runtime failed on the feeds: {one_line(e)}") from e
    return _model_outputs(binding, out, output_layouts), got


def run_artifact(
    binding: Binding,
    feeds: Mapping[str, np.ndarray],
    model_layout: Mapping[str, str | None],
    feed_layout: Mapping[str, str | None],
    output_layouts: Mapping[str, tuple[str | None, str | None]] | None = None,
    fixed_batch: int | None = None,
) -> dict[str, np.ndarray]:
    """Run the artifact and return its outputs keyed by the model's output names.

    Args:
        binding: the opened artifact and its name mapping.
        feeds: arrays keyed by model input name, in the model's layout.
        model_layout: each model input's layout (``None``: never transposed).
        feed_layout: the layout to feed each input in (what the artifact declares, or a
            layout tried while diagnosing).
        output_layouts: model output name -> (artifact layout, model layout), for outputs
            an artifact declares in another layout.
        fixed_batch: the batch size the manifest records for the artifact, if any.

    Raises:
        ArtifactRunError: the runtime rejected the feeds or failed.
    """
    n = next(iter(feeds.values())).shape[0] if feeds else 1
    art_feeds = _artifact_feeds(binding, feeds, model_layout, feed_layout)
    try:
        out = _run_batched(binding.runner, art_feeds, _fixed_batch(binding, fixed_batch), n)
    except Exception as e:  # runtimes raise anything from shape checks to kernel errors
        log.debug("running %s failed", binding.runner.path, exc_info=True)
        raise ArtifactRunError(f"the runtime failed on the feeds: {one_line(e)}") from e
    return _model_outputs(binding, out, output_layouts)
