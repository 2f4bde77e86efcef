"""Which tensor of an artifact carries each Keras layer output: the name map.

Converters keep names: the traced graph's ops sit in the layers' name scopes
(``model/conv1/BiasAdd``, Keras 3 adds ``_1`` to a scope), tf2onnx keeps the TensorFlow
names, TFLite joins the names of fused ops with ``;``. A name alone can mislead (TFLite
names a convolution fused with the BatchNorm after it after the convolution, yet it holds
the BatchNorm's output), so every match is confirmed by values: the Keras layer outputs
and the candidate tensors are computed on the same feeds and a tensor is given to the
layer (among those its name mentions, and their next layers) whose values it is closest
to, in the layout that fits best (ONNX holds convolutions channels-first).

Layers no named tensor carries are then looked for by value alone, among tensors of the
same size that run between the tensors of their neighbours, and must match closely.
What is left is reported as it is: an identity at inference (Dropout), fused into the
tensor of a later layer (its name is in that tensor's name, or that layer alone reads
its output), or without counterpart. Nothing is guessed: a row without a tensor whose
values confirm it has none.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from modelport.core.records import TensorInfo
from modelport.validators.tensor_match import (
    UNIQUIFIED, best_alignment, exits, mentions, scopes,
)
from modelport.validators.value_search import (
    FETCH, VALUE_TOLERANCE, Cache, by_value, successors, value_candidates,
)

__all__ = ["Counterpart", "NameMap", "build_map", "NAME_TOLERANCE", "VALUE_TOLERANCE"]

log = logging.getLogger(__name__)

# relative L2 error under which a tensor its name points to may carry a layer: loose,
# because the closest layer among the named ones wins (a wrong artifact or int8 keeps
# its layers' names, and its errors are what the map is for)
NAME_TOLERANCE = 0.5
_HOPS = 2  # how far after the named layers a fused tensor's values may belong

Fetch = Callable[[list[str]], dict[str, np.ndarray]]


@dataclass
class Counterpart:
    """One Keras layer output in one artifact."""

    layer: str  # the layer output's key (``conv1``, ``tower#2/dense``)
    class_name: str
    status: str  # "matched", "identity", "fused" or "none"
    method: str = ""  # "output", "name+value" or "value" for a match
    tensor: str | None = None  # the artifact's tensor name
    index: int | None = None  # TFLite tensor index
    layout: str = ""  # "channels_first"/"channels_last" when held transposed
    relative_error: float | None = None  # ||artifact - keras|| / ||keras|| when matched
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NameMap:
    artifact: str
    format: str
    rows: list[Counterpart]
    values: dict[str, np.ndarray]  # matched layer key -> artifact values, aligned to Keras

    def row(self, key: str) -> Counterpart | None:
        return next((r for r in self.rows if r.layer == key), None)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"artifact": self.artifact, "format": self.format, "counts": self.counts(),
                "rows": [r.to_dict() for r in self.rows]}


# ----------------------------------------------------------------------------- the map


def _identities(entries: Sequence[Any], ref: Mapping[str, np.ndarray]) -> dict[str, str]:
    """Layer outputs equal to their single input (Dropout at inference): key -> input."""
    out = {}
    for e in entries:
        if len(e.inputs) == 1 and e.key in ref and e.inputs[0] in ref:
            a, b = ref[e.key], ref[e.inputs[0]]
            if a.shape == b.shape and np.array_equal(a, b):
                out[e.key] = out.get(e.inputs[0], e.inputs[0])
    return out


def _near(keys: set[str], succ: Mapping[str, list[str]]) -> set[str]:
    found, frontier = set(keys), set(keys)
    for _ in range(_HOPS):
        frontier = {s for k in frontier for s in succ.get(k, [])} - found
        found |= frontier
    return found


def build_map(entries: Sequence[Any], ref: Mapping[str, np.ndarray],
              tensors: Sequence[TensorInfo], fetch: Fetch, artifact: str = "",
              fmt: str = "",
              outputs: Callable[[], Mapping[str, tuple[str, np.ndarray]]] | None = None,
              ) -> NameMap:
    """The name map of one artifact.

    Args:
        entries: the Keras layer outputs (``loading.layer_outputs``), topological order.
        ref: their values on the feeds, by key.
        tensors: the artifact's intermediate tensors (``Runner.tensors()``).
        fetch: tensor names -> their values on the same feeds (dequantized).
        outputs: called after the first ``fetch``: model output name -> (the artifact's
            output tensor, its values) from that run.
    """
    ref = {k: np.asarray(v) for k, v in ref.items() if np.asarray(v).dtype.kind == "f"}
    identity = _identities(entries, ref)
    succ = successors(entries)
    by_key = {e.key: e for e in entries}
    info = {t.name: t for t in tensors}
    # entries by the last name of their scope, as a tensor name may spell it
    by_last: dict[str, list[Any]] = {}
    for e in entries:
        by_last.setdefault(e.scope[-1], []).append(e)
    mentioned: dict[str, dict[str, int]] = {}  # tensor -> {key: quality}
    for t in tensors:
        parts = scopes(t.name)
        maybe = {id(e): e for comps in parts for c in comps
                 for e in by_last.get(c, []) + by_last.get(UNIQUIFIED.sub("", c), [])}
        hits = {e.key: q for e in maybe.values() if (q := mentions(parts, e.scope))}
        if hits:
            mentioned[t.name] = hits
    rows: dict[str, Counterpart] = {}
    values: dict[str, np.ndarray] = {}

    def take(key: str, name: str, err: float, arr: np.ndarray, layout: str, how: str) -> None:
        t = info.get(name)
        rows[key] = Counterpart(key, by_key[key].class_name, "matched", how, name,
                                t.extra.get("index") if t else None, layout, err)
        values[key] = arr

    leaving = exits(tensors, mentioned)
    claims: dict[str, list[tuple[float, int, int, str, np.ndarray, str]]] = {}
    # first the tensors that leave a layer's scope (its output, usually one per layer),
    # then, for layers still without one, the others their names mention; the model's
    # outputs are bound by name (the validator's own binding), from the first run
    first = [n for n in mentioned if n in leaving]
    got_first = fetch(first)
    bound = outputs() if outputs is not None else {}
    for e in entries:
        if e.model_output and e.model_output in bound and e.key in ref:
            name, got = bound[e.model_output]
            err, arr, layout = best_alignment(got, ref[e.key])
            if arr is not None:
                take(e.key, name, err, arr, layout, "output")
                rows[e.key].note = f"the artifact's output {e.model_output!r}"
    taken = {r.tensor for r in rows.values()}
    first = [n for n in first if n not in taken]
    _claim(first, lambda names: got_first, mentioned, succ, identity, rows, ref, info,
           claims)
    done = set(claims) | set(rows) | set(identity) | {e.key for e in entries
                                                      if e.key not in ref}
    rest = [n for n in mentioned if n not in taken and n not in leaving
            and any(k not in done for k in _near(set(mentioned[n]), succ))]
    # one run for these and for the tensors the search by value may want (a superset,
    # from what is matched so far): each run of a deep net costs a second
    fetched = Cache(fetch)
    first_rows = dict(rows)
    for key, options in claims.items():
        first_rows.setdefault(key, Counterpart(key, "", "matched", tensor=options[0][3]))
    maybe = value_candidates(entries, ref, tensors, first_rows, identity,
                              _named_in(first_rows, mentioned))[1]
    extra = sorted({n for names in maybe.values() for n in names} - set(rest))
    fetched.prefetch(rest + extra if len(rest) + len(extra) <= FETCH else rest)
    _claim(rest, fetched, mentioned, succ, identity, rows, ref, info, claims)
    for key, options in claims.items():
        err, _, _, name, arr, layout = min(options, key=lambda o: o[:3])
        take(key, name, err, arr, layout, "name+value")
    # a layer named in a tensor another layer holds is fused into it: no search needed
    by_value(entries, ref, tensors, fetched, rows, identity, take,
              _named_in(rows, mentioned))
    out = []
    for e in entries:
        if e.key in rows:
            out.append(rows[e.key])
        elif e.key in identity:
            src = rows.get(identity[e.key])
            out.append(Counterpart(e.key, e.class_name, "identity", "",
                                   src.tensor if src else None, src.index if src else None,
                                   src.layout if src else "", src.relative_error if src else None,
                                   f"identity at inference: the same values as {identity[e.key]}"))
            if identity[e.key] in values:
                values[e.key] = values[identity[e.key]]
        elif e.key not in ref:
            out.append(Counterpart(e.key, e.class_name, "none",
                                   note=f"not compared ({e.dtype} output)"))
        else:
            into = next((r.layer for r in rows.values() if r.tensor in mentioned
                         and e.key in mentioned[r.tensor]), None) or _sole_consumer(
                e.key, succ, rows, identity)
            out.append(Counterpart(e.key, e.class_name, "fused" if into else "none",
                                   note=f"fused into {into}'s tensor" if into else
                                   "no tensor holds its values (fused or folded away)"))
    return NameMap(artifact, fmt, out, values)


def _sole_consumer(key: str, succ: Mapping[str, list[str]], rows: Mapping[str, Any],
                   identity: Mapping[str, str]) -> str | None:
    """The matched layer that alone reads ``key``'s output, through other layers that
    have no tensor and one reader each: its tensor is where ``key`` was computed."""
    seen = {key}
    while True:
        readers = succ.get(key, [])
        if len(readers) != 1 or readers[0] in seen or readers[0] in identity:
            return None
        key = readers[0]
        if key in rows:
            return key
        seen.add(key)


def _claim(names: list[str], fetch: Fetch, mentioned: Mapping[str, Mapping[str, int]],
           succ: Mapping[str, list[str]], identity: Mapping[str, str],
           rows: Mapping[str, Counterpart], ref: Mapping[str, np.ndarray],
           info: Mapping[str, TensorInfo], claims: dict[str, list[Any]]) -> None:
    """Each named tensor goes to the layer, among those its name mentions and the next
    ones, whose values it is closest to (when close enough)."""
    got = fetch(names) if names else {}
    for name in names:
        if name not in got:
            continue
        hits = mentioned[name]
        best: tuple[float, str, np.ndarray | None, str] = (float("inf"), "", None, "")
        for key in _near(set(hits), succ):
            if key in identity or key in rows or key not in ref:
                continue
            err, arr, layout = best_alignment(got[name], ref[key])
            if err < best[0]:
                best = (err, key, arr, layout)
        err, key, arr, layout = best
        if arr is not None and err <= NAME_TOLERANCE:
            order = int(info[name].extra.get("order", 0))
            # ties (a bias of zeros): the later tensor, the layer's last op, wins
            claims.setdefault(key, []).append((err, -hits.get(key, 0), -order, name, arr,
                                               layout))


def _named_in(rows: Mapping[str, Counterpart],
              mentioned: Mapping[str, Mapping[str, int]]) -> set[str]:
    """Layers named in a tensor that another layer holds (fused into it)."""
    return {k for r in rows.values() for k in mentioned.get(r.tensor or "", {})}
