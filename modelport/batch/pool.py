"""Worker processes for a batch: each imports TensorFlow once and converts models one after
another; a worker that dies (segfault, SIGKILL, out of memory) costs only the model it was
on, which is recorded as crashed, and is replaced.

Workers are started with ``spawn`` (TensorFlow is not fork-safe once imported) and each
talks to the parent over its own pipe, so a worker killed at any instant cannot leave a
shared queue's lock held. The parent holds the queue of models and hands the next one to
whichever worker is idle. Workers die with the parent (Linux ``PR_SET_PDEATHSIG``): a
killed batch leaves no worker writing into OUT behind it.
"""

from __future__ import annotations

import faulthandler
import gc
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Iterator

from modelport.batch.resume import stamp, unstamp
from modelport.batch.rows import Row, crashed_row, failed_row, row_from_manifest
from modelport.core.children import die_with_parent, quiet_frameworks
from modelport.core.errors import EXIT_CONVERSION, ModelportError
from modelport.core.manifest import MANIFEST_SUFFIX
from modelport.core.text import one_line

__all__ = ["Task", "run_pool", "convert_one"]

log = logging.getLogger(__name__)

_TICK_SECONDS = 1.0  # how often the parent wakes up to refresh the progress display


@dataclass
class Task:
    """One model for a worker: where it is, where it goes, how to convert it."""

    index: int
    path: str
    out: str  # the output directory's name under OUT (what rows show)
    out_dir: str
    sha256: str
    options: dict[str, Any]  # conversion.convert's keyword arguments
    validate: dict[str, Any] | None  # validate's keyword arguments (--validate), or None
    fingerprint: str


def convert_one(task: Task) -> Row:
    """Convert one model exactly as a single ``convert`` would (and validate it with
    ``--validate``); every outcome becomes a row. Runs inside a worker."""
    from modelport.conversion import convert

    t0 = time.monotonic()
    out = Path(task.out_dir)
    try:
        unstamp(out)
        manifest = convert(task.path, out, **task.options)
        code, validated, error = manifest.exit_code, None, ""
        if task.validate is not None and code == 0:
            code, validated, error = _validate(task, manifest)
        stamp(manifest.path, task.fingerprint, code, validated)
        return row_from_manifest(manifest, task.path, task.out, code, time.monotonic() - t0,
                                 validated=validated, error=error)
    except ModelportError as e:
        return failed_row(task.path, task.out, e.exit_code, one_line(e, with_type=False),
                          task.sha256, time.monotonic() - t0)
    except Exception as e:  # a modelport bug: one failed row, the batch goes on
        log.error("converting %s failed unexpectedly", task.path, exc_info=True)
        return failed_row(task.path, task.out, EXIT_CONVERSION,
                          f"modelport failed unexpectedly ({one_line(e)}); the traceback is "
                          "in batch.log", task.sha256, time.monotonic() - t0)
    finally:
        _forget_models()


def _validate(task: Task, manifest: Any) -> tuple[int, bool, str]:
    from modelport.validators.report import write_json
    from modelport.validators.validation import validate

    out = Path(manifest.path).parent
    report = validate(task.path, [out / a.path for a in manifest.artifacts if a.ok],
                      **task.validate)
    stem = Path(manifest.path).name[:-len(MANIFEST_SUFFIX)]
    write_json(report, out / f"{stem}.validation.json")
    failing = [f"{r.format}: {r.diagnosis or 'mismatch'}" for r in report.results
               if not r.passed]
    error = ("validation: " + "; ".join(failing)) if failing else ""
    return report.exit_code, report.exit_code == 0, error


def _forget_models() -> None:
    """Drop what the last model left in the frameworks' global state (graphs, name
    counters), so each model converts as in a fresh process and memory does not grow."""
    for name in ("keras", "tf_keras"):
        module = sys.modules.get(name)
        if module is not None:
            try:
                module.backend.clear_session()
            except Exception:  # best effort: a framework that cannot reset still works
                log.debug("%s clear_session failed", name, exc_info=True)
    gc.collect()


# ----------------------------------------------------------------------------- the worker


def _worker(conn: Connection, parent: int, log_path: str, level: int) -> None:
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # native chatter and crash dumps go to OUT/batch.log, not across the progress bar
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    faulthandler.enable(file=sys.stderr)
    logging.basicConfig(level=level, stream=sys.stderr, force=True,
                        format=f"%(levelname)s %(name)s [worker {os.getpid()}]: %(message)s")
    quiet_frameworks(level)
    import tensorflow  # noqa: F401  (once per worker: the point of a long-lived worker)

    conn.send(("ready", None))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        print(f"== {task.path} (worker {os.getpid()})", file=sys.stderr, flush=True)
        conn.send(("done", convert_one(task).to_dict()))


# ----------------------------------------------------------------------------- the parent


class _Worker:
    def __init__(self, ctx: Any, log_path: str, level: int) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, os.getpid(), log_path, level),
                                name="modelport-batch-worker")
        self.proc.start()
        child.close()
        self.ready = False
        self.task: Task | None = None
        self.since = 0.0
        self.dead = False

    def assign(self, task: Task) -> None:
        self.task, self.since = task, time.monotonic()
        self.conn.send(task)

    def collect(self, ready: list[Any]) -> Row | None:
        """The row this worker finished (or crashed on), if any."""
        row = None
        if self.conn in ready:
            try:
                while row is None and self.conn.poll():
                    kind, payload = self.conn.recv()
                    if kind == "ready":
                        self.ready = True
                    else:
                        row, self.task = Row.from_dict(payload), None
            except (EOFError, OSError):
                pass  # the process is gone: its sentinel says so
        if row is None and (self.proc.sentinel in ready or not self.proc.is_alive()):
            self.proc.join(5)
            self.dead = True
            if self.task is not None:
                task, self.task = self.task, None
                row = crashed_row(task.path, task.out, self._death(), task.sha256,
                                  time.monotonic() - self.since)
        return row

    def _death(self) -> str:
        code = self.proc.exitcode
        if code is not None and code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
            if -code == signal.SIGKILL:
                how += " (out of memory?)"
        else:
            how = f"exited with code {code}"
        when = "converting this model" if self.ready else "starting (importing TensorFlow)"
        return (f"the worker process {how} while {when}; the other models went on "
                "(its output is in batch.log)")

    def stop(self, wait_seconds: float) -> None:
        if self.proc.is_alive() and self.task is None:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(wait_seconds)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


def run_pool(tasks: list[Task], jobs: int, log_path: Path,
             level: int = logging.WARNING) -> Iterator[tuple[str, Task | None, Row | None]]:
    """Run ``tasks`` on up to ``jobs`` workers; yields ``("start", task, None)`` when a
    model is handed to a worker, ``("done", task, row)`` when it is finished (or its
    worker died) and ``("tick", None, None)`` about once a second otherwise."""
    ctx = multiprocessing.get_context("spawn")
    pending = deque(tasks)
    workers: list[_Worker] = []
    clean = False
    try:
        while pending or any(w.task is not None for w in workers):
            busy = sum(w.task is not None for w in workers)
            while len(workers) < min(jobs, busy + len(pending)):
                workers.append(_Worker(ctx, str(log_path), level))
            for w in workers:
                if w.task is None and pending:
                    w.assign(pending.popleft())
                    yield "start", w.task, None
            ready = wait([w.conn for w in workers] + [w.proc.sentinel for w in workers],
                         timeout=_TICK_SECONDS)
            if not ready:
                yield "tick", None, None
                continue
            for w in list(workers):
                task = w.task
                row = w.collect(ready)
                if w.dead:
                    workers.remove(w)
                    w.stop(0)
                if row is not None:
                    yield "done", task, row
        clean = True
    finally:
        for w in workers:
            w.stop(10 if clean else 0)
