"""``convert --layout channels_last``: rewrite a channels_first model so its artifacts take
NHWC (NWC, NDHWC) inputs and hold no layout transposes around their convolutions.

The model's graph is replayed layer by layer on new inputs whose channels come last,
tracking for every tensor whether it is still laid out as in the original model, moved
channels-last (``Moved``: the original's axis 1 is now the last axis) or flattened from a
moved tensor (``Flat``). Each layer gets the rule its class needs (``rules.py``):
channels_first layers are rebuilt channels_last with the same weights (Keras stores conv
kernels HWIO in both layouts); axis arguments (BatchNormalization, Concatenate, Softmax,
LayerNormalization...) are remapped; a Dense after a Flatten gets its kernel rows permuted;
Reshape/Permute are composed with the move; elementwise layers pass the layout through. A
layer that needs the original layout and has no rule (an LSTM over a channels_first
tensor) gets a transpose back before it, which the notes report. A Lambda or custom layer
that does not commute with the move (its output changes when its input is transposed), or
a layer with a ``data_format`` this module has no rule for, is refused with the layer's
name: never a silently mis-laid-out model. ``convert`` then checks every artifact against
the original channels_first model.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from modelport.core.records import TensorInfo
from modelport.loading.channels_first import describe_layout
from modelport.loading.relayout.replay import Replay
from modelport.loading.relayout.states import CHANNELS_FIRST

__all__ = ["to_channels_last", "Relayout"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Relayout:
    """What ``to_channels_last`` did: the rewritten source and notes for the manifest."""

    source: Any  # SourceModel
    moved_inputs: list[str]
    rewritten: list[str]  # layers rebuilt channels_last or with remapped axes / weights
    transposes: list[str]  # "layer (why)" where a transpose back was kept

    @property
    def notes(self) -> list[str]:
        if not self.transposes:
            return []
        return [f"--layout channels_last kept {len(self.transposes)} transpose(s) back to "
                f"channels_first, before: {', '.join(self.transposes)}"]


def to_channels_last(source: Any) -> Relayout:
    """A copy of ``source`` whose model is channels_last (see the module docstring).

    A model with no channels_first input is returned unchanged.

    Raises:
        UserInputError: a layer cannot be rewritten safely (the message names it).
    """
    candidates = {n for n, lay in source.layout.items() if lay in CHANNELS_FIRST}
    if not candidates:
        return Relayout(source, [], [], [])
    out_layouts = describe_layout(source.outputs, "channels_first")
    keep: set[str] = set()
    while True:
        replay = Replay(source, candidates - keep, out_layouts)
        model = replay.run()
        # an input whose first use needs the original layout stays as it is
        back = replay.restored_inputs - keep
        if not back:
            break
        keep |= back
    inputs = [TensorInfo(t.name, _shape(x), t.dtype)
              for t, x in zip(source.inputs, replay.new_inputs)]
    outputs = [TensorInfo(t.name, _shape(y), t.dtype)
               for t, y in zip(source.outputs, replay.new_outputs)]
    layout = dict(source.layout)
    for name in replay.moved:
        layout[name] = _last(layout[name])
    for t, moved in zip(source.outputs, replay.moved_outputs):
        if out_layouts.get(t.name) in CHANNELS_FIRST:
            layout[t.name] = _last(out_layouts[t.name]) if moved else out_layouts[t.name]
    target = dataclasses.replace(
        source, model=model, inputs=inputs, outputs=outputs, layout=layout,
        data_format="channels_last", warnings=list(source.warnings))
    result = Relayout(target, sorted(replay.moved), replay.rewritten, replay.transposes)
    target.warnings += result.notes
    log.info("channels_last: moved inputs %s, rewrote %d layers, kept %d transposes",
             result.moved_inputs, len(result.rewritten), len(result.transposes))
    return result


def _last(layout: str) -> str:
    return layout[0] + layout[2:] + layout[1]


def _shape(t: Any) -> list[int | None]:
    return [None if d is None else int(d) for d in list(t.shape)]
