"""Batch conversion: many models, N worker processes, resumable, shardable.

``run_batch(["a.h5", "zoo/"], "out", jobs=2, options={...})`` converts every model the
arguments name (``inputs.py``) into ``out/<name>/`` with ``conversion.convert`` and the same
keyword arguments for each, in worker processes that import TensorFlow once
(``pool.py``). Each finished model is appended to ``out/batch.jsonl`` at once (``rows.py``);
a model already converted with the same file, options and tool versions is skipped
(``resume.py``). The parent never imports TensorFlow.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from modelport import converters
from modelport.batch.inputs import JOURNAL, LOG, Input, expand, in_shard, parse_shard
from modelport.batch.pool import Task, run_pool
from modelport.batch.resume import fingerprint, finished
from modelport.batch.rows import (STATUSES, Row, append_row, batch_exit_code, failed_row,
                                  format_rows, read_rows, row_from_manifest)
from modelport.core.atomic import sha256_of
from modelport.core.errors import EXIT_USER, ModelportError, UserInputError
from modelport.core.text import one_line
from modelport.loading.sniff import check_path, sniff

__all__ = ["run_batch", "BatchResult", "Tally", "Row", "expand", "parse_shard", "in_shard",
           "format_rows", "read_rows", "JOURNAL", "LOG", "STATUSES"]

log = logging.getLogger(__name__)


@dataclass
class Tally:
    """Where a batch stands, for a progress display."""

    total: int
    finished: int = 0  # skipped and failed ones included
    failed: int = 0  # status mismatch, failed or crashed
    skipped: int = 0
    running: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


Progress = Callable[[Tally, Row | None], None]


@dataclass
class BatchResult:
    """Every model's row (in input order), the journal and the batch's exit code."""

    rows: list[Row]
    journal: Path
    formats: list[str]
    shard: str = ""

    @property
    def exit_code(self) -> int:
        return batch_exit_code(self.rows)

    def table(self) -> list[str]:
        return format_rows(self.rows, self.formats)


def run_batch(
    models: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    options: Mapping[str, Any] | None = None,
    jobs: int = 1,
    shard: str | tuple[int, int] | None = None,
    validate: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    log_level: int = logging.WARNING,
) -> BatchResult:
    """Convert many models, each into ``out_dir/<name>/`` as a single ``convert`` would.

    Args:
        models: model files and directories (searched for ``.h5``/``.hdf5``/``.keras``).
        out_dir: where each model's directory, ``batch.jsonl`` and ``batch.log`` go.
        options: ``conversion.convert``'s keyword arguments (``formats``,
            ``custom_objects``, ``check``...), the same for every model.
        jobs: worker processes (each imports TensorFlow once).
        shard: ``"K/N"`` or ``(K, N)``: convert only the K-th of N disjoint parts.
        validate: ``validate``'s keyword arguments to validate each model after it
            converted (its report goes to ``<name>/<stem>.validation.json``); None: don't.
        progress: called with the tally and the finished row (None when a model starts
            or on a periodic tick).
        log_level: logging level inside the workers (their log is ``batch.log``).

    Returns:
        The result; ``result.exit_code`` is 0 when every model converted and passed its
        check, else the worst per-model code.

    Raises:
        ModelportError: the arguments are unusable (an unknown format, a bad shard, a
            directory without model files); a bad model file is a failed row instead.
    """
    options = dict(options or {})
    formats = converters.parse_formats(options.get("formats", "all"))
    part = parse_shard(shard) if isinstance(shard, str) else shard
    if jobs < 1:
        raise UserInputError(f"--jobs {jobs}: give at least 1 worker process")
    out = Path(out_dir)
    items = [i for i in expand(models, exclude=out) if in_shard(i, part)]
    out.mkdir(parents=True, exist_ok=True)
    result = BatchResult([], out / JOURNAL, formats, f"{part[0]}/{part[1]}" if part else "")
    key = fingerprint({"convert": options, "validate": validate})
    tally = Tally(total=len(items))
    rows: dict[int, Row] = {}

    def done(index: int, row: Row) -> None:
        row.shard = result.shard
        append_row(result.journal, row)
        rows[index] = row
        tally.finished += 1
        tally.skipped += row.status == "skipped"
        tally.failed += row.status not in ("ok", "skipped")
        if progress:
            progress(tally, row)

    tasks = []
    for index, item in enumerate(items):
        task = _plan(index, item, out, options, validate, key, done)
        if task is not None:
            tasks.append(task)
    if progress:
        progress(tally, None)  # planned: what is left is for the workers
    for event, task, row in run_pool(tasks, jobs, out / LOG, log_level):
        if event == "start":
            tally.running += 1
        elif event == "done" and task is not None and row is not None:
            tally.running -= 1
            done(task.index, row)
            continue
        if progress:
            progress(tally, None)
    result.rows = [rows[i] for i in sorted(rows)]
    return result


def _plan(index: int, item: Input, out: Path, options: dict[str, Any],
          validate: Mapping[str, Any] | None, key: str,
          done: Callable[[int, Row], None]) -> Task | None:
    """A task for a worker, or None when the model is settled here: unusable (refused
    unparsed, as a single ``convert`` refuses it) or already converted (skipped)."""
    path = str(item.path)
    sha = ""
    try:
        check_path(item.path)
        sha = sha256_of(item.path)
        sniff(item.path)
    except ModelportError as e:
        done(index, failed_row(path, item.name, e.exit_code, one_line(e, with_type=False),
                               sha))
        return None
    except OSError as e:
        done(index, failed_row(path, item.name, EXIT_USER, f"{path}: cannot be read ({e})"))
        return None
    manifest = finished(out / item.name, sha, key)
    if manifest is not None:
        done(index, row_from_manifest(manifest, path, item.name, 0, skipped=True,
                                      validated=True if validate is not None else None))
        return None
    return Task(index, path, item.name, str(out / item.name), sha, options,
                dict(validate) if validate is not None else None, key)
