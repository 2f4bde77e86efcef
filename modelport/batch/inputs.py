"""Which models a batch converts, where each one's artifacts go, and which shard takes it.

Arguments are model files or directories; a directory stands for every Keras model file
below it (``.h5``/``.hdf5``/``.keras``; hidden entries and the batch's own output directory
are skipped), sorted by path. The expansion, and so every model's output directory, depends
only on the arguments, never on the shard: ``--shard K/N`` keeps the inputs at positions
K, K+N, K+2N... of it, so the N shards partition the inputs, differ in size by at most one,
and agree on every machine that sees the same files.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from modelport.core.errors import UserInputError
from modelport.loading.sniff import MODEL_SUFFIXES

__all__ = ["Input", "expand", "parse_shard", "in_shard", "JOURNAL", "LOG"]

JOURNAL = "batch.jsonl"  # one JSON line per finished model, in OUT
LOG = "batch.log"  # what the worker processes print (native chatter, crash dumps), in OUT


@dataclass(frozen=True)
class Input:
    """One model of a batch.

    Attributes:
        path: the file (a directory argument joined with the file's path inside it).
        rel: the file's path relative to the argument it came from (POSIX separators; the
            file name for a file argument).
        name: its output directory under OUT: the file's stem, unless another input
            shares it (then ``<stem>-<8 hex digits of its path>``).
        position: its place in the whole expansion, from 0 (what ``--shard`` divides).
    """

    path: Path
    rel: str
    name: str
    position: int


def expand(arguments: Sequence[str | os.PathLike[str]],
           exclude: str | os.PathLike[str] | None = None) -> list[Input]:
    """Every model the arguments name, in order: arguments as given, each directory's
    files sorted by path; a file reached twice is kept once. A file argument is taken
    whatever it holds (a missing or wrong file becomes a failed row later).

    Raises:
        UserInputError: a directory holds no Keras model file.
    """
    found: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for arg in arguments:
        root = Path(arg)
        if root.is_dir():
            rels = _model_files(root, exclude)
            if not rels:
                raise UserInputError(f"{root}: is a directory with no "
                                     f"{'/'.join(MODEL_SUFFIXES)} file in it; pass a model "
                                     "file or a directory of them")
            items = [(root / rel, rel) for rel in rels]
        else:
            items = [(root, root.name)]
        for path, rel in items:
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                found.append((path, rel))
    names = _output_names([p for p, _ in found])
    return [Input(p, rel, name, i) for i, ((p, rel), name) in enumerate(zip(found, names))]


def _model_files(root: Path, exclude: str | os.PathLike[str] | None) -> list[str]:
    skip = os.path.realpath(exclude) if exclude is not None else None
    rels = []
    # os.walk does not follow symlinked directories: a link cycle cannot loop forever
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")
                       and os.path.realpath(os.path.join(dirpath, d)) != skip]
        for f in filenames:
            if not f.startswith(".") and Path(f).suffix.lower() in MODEL_SUFFIXES:
                rels.append(Path(os.path.relpath(os.path.join(dirpath, f), root)).as_posix())
    return sorted(rels)


def _output_names(paths: list[Path]) -> list[str]:
    """Output directory names: the stem, made unique (case-insensitively, for filesystems
    that ignore case) with a short hash of the path when stems collide."""
    stems = [p.stem for p in paths]
    count = Counter(s.casefold() for s in stems)
    reserved = {JOURNAL.casefold(), LOG.casefold(), ""}
    names = []
    for path, stem in zip(paths, stems):
        if count[stem.casefold()] > 1 or stem.casefold() in reserved or stem.startswith("."):
            digest = hashlib.sha256(os.path.normpath(path).encode()).hexdigest()[:8]
            stem = f"{stem}-{digest}"
        names.append(stem)
    return names


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``.

    Raises:
        UserInputError: not ``K/N`` with ``1 <= K <= N``.
    """
    k, sep, n = str(text).partition("/")
    try:
        pair = (int(k), int(n))
    except ValueError:
        pair = (0, 0)
    if not sep or not 1 <= pair[0] <= pair[1]:
        raise UserInputError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/4 "
                             "(the second of four shards)")
    return pair


def in_shard(item: Input, shard: tuple[int, int] | None) -> bool:
    """Whether shard ``(K, N)`` takes ``item`` (every item when ``shard`` is None)."""
    if shard is None:
        return True
    k, n = shard
    return item.position % n == k - 1
