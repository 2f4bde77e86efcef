"""Finding a layer's tensor by its values alone, when no name points to it (an artifact
from a tool that renames everything, or a tensor a converter named after something
else): among the unclaimed tensors of the layer's size that run between its inputs'
tensors and its consumers', the closest within ``VALUE_TOLERANCE``, when the layer is
also that tensor's closest. Fetches are remembered and done in few runs (``Cache``)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from modelport.core.records import TensorInfo
from modelport.validators.tensor_match import best_alignment

__all__ = ["Cache", "value_candidates", "by_value", "successors", "VALUE_TOLERANCE", "FETCH"]

# relative L2 error under which a tensor found by values alone carries a layer: strict,
# nothing else vouches for it
VALUE_TOLERANCE = 0.02
FETCH = 256  # tensors fetched per run (memory bound)

Fetch = Callable[[list[str]], dict[str, np.ndarray]]


def successors(entries: Sequence[Any]) -> dict[str, list[str]]:
    """Each entry key's consumers: ``{key: [keys of the entries that read it]}``."""
    succ: dict[str, list[str]] = {}
    for e in entries:
        for i in e.inputs:
            succ.setdefault(i, []).append(e.key)
    return succ


class Cache:
    """``fetch`` that remembers: a tensor fetched once is not run for again."""

    def __init__(self, fetch: Fetch) -> None:
        self.fetch = fetch
        self.got: dict[str, np.ndarray] = {}

    def prefetch(self, names: list[str]) -> None:
        missing = [n for n in names if n not in self.got]
        if missing:
            self.got.update(self.fetch(missing))

    def __call__(self, names: list[str]) -> dict[str, np.ndarray]:
        self.prefetch(names)
        return {n: self.got[n] for n in names if n in self.got}


def value_candidates(entries: Sequence[Any], ref: Mapping[str, np.ndarray],
                      tensors: Sequence[TensorInfo], rows: Mapping[str, Any],
                      identity: Mapping[str, str], skip: set[str],
                      ) -> tuple[list[Any], dict[str, list[str]], dict[str, int]]:
    """The layers to look for by value, and per layer the unclaimed tensors of its size
    that run between its inputs' tensors and its consumers'."""
    order = {t.name: int(t.extra.get("order", i)) for i, t in enumerate(tensors)}
    placed = {k: order.get(r.tensor or "", -1) for k, r in rows.items()}
    succ = successors(entries)
    wanted = [e for e in entries if e.key in ref and e.key not in rows
              and e.key not in identity and e.key not in skip]
    taken = {r.tensor for r in rows.values()}
    candidates: dict[str, list[str]] = {}
    for e in wanted:
        lo = max([placed.get(i, -1) for i in e.inputs] or [-1])
        after = [placed[s] for s in succ.get(e.key, []) if s in placed]
        hi = min(after) if after else len(tensors) + 1
        per = int(np.prod(ref[e.key].shape[1:])) if ref[e.key].ndim else 1
        candidates[e.key] = [t.name for t in tensors if t.name not in taken
                             and lo < order[t.name] <= hi and _fits(t.shape, per)]
    return wanted, candidates, order


def by_value(entries: Sequence[Any], ref: Mapping[str, np.ndarray],
              tensors: Sequence[TensorInfo], fetch: Fetch, rows: dict[str, Any],
              identity: Mapping[str, str], take: Callable[..., None],
              skip: set[str]) -> None:
    """Layers without a named tensor, found among their candidates by value alone: the
    closest within ``VALUE_TOLERANCE``, when the layer is also that tensor's closest."""
    wanted, candidates, order = value_candidates(entries, ref, tensors, rows, identity, skip)
    pool = sorted({n for names in candidates.values() for n in names}, key=order.get)
    scores: dict[str, list[tuple[float, str, np.ndarray, str]]] = {}
    for start in range(0, len(pool), FETCH):
        got = fetch(pool[start:start + FETCH])
        for e in wanted:
            for name in candidates[e.key]:
                if name in got:
                    err, arr, layout = best_alignment(got[name], ref[e.key])
                    if arr is not None and err <= VALUE_TOLERANCE:
                        scores.setdefault(e.key, []).append((err, name, arr, layout))
    # mutual best: the tensor's closest layer is this one, and the layer's closest tensor
    best_for: dict[str, tuple[float, str]] = {}
    for key, options in scores.items():
        for err, name, _, _ in options:
            if name not in best_for or err < best_for[name][0]:
                best_for[name] = (err, key)
    for key, options in scores.items():
        err, name, arr, layout = min(options, key=lambda o: (o[0], order[o[1]]))
        if best_for[name][1] == key and name not in {r.tensor for r in rows.values()}:
            take(key, name, err, arr, layout, "value")


def _fits(shape: Sequence[Any] | None, per_sample: int) -> bool:
    """Whether a tensor of (static) ``shape`` can hold ``per_sample`` values per sample."""
    if not shape:
        return True
    dims = list(shape)[1:]
    if any(not isinstance(d, int) for d in dims):
        return True
    return int(np.prod(dims)) == per_sample if dims else per_sample == 1
