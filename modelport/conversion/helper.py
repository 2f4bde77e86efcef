"""A helper process for one ``convert``: it is started before the model is loaded, imports
TensorFlow while this process loads and traces the model, then runs the conversions handed
to it (a route's ``Offload`` job) while this process converts and checks the other
formats. TensorFlow's converters hold the GIL (TFLite's MLIR converter, tf2onnx's Python),
so threads would take turns; a process uses the second core.

Started with ``spawn`` (TensorFlow is not fork-safe once imported); it dies with its parent
(Linux ``PR_SET_PDEATHSIG``). A job that raises a ``ModelportError`` fails its route with
that message; anything else (an unexpected error, the helper dying) makes the pipeline run
the route here instead, so the outcome never depends on the helper.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

from modelport.core.children import die_with_parent, quiet_frameworks
from modelport.core.errors import ConversionError, ModelportError
from modelport.core.text import one_line

__all__ = ["Helper", "HelperLost", "overlap_default"]

log = logging.getLogger(__name__)


class HelperLost(RuntimeError):
    """The helper could not run the job (it died, or the job failed unexpectedly)."""


# what a helper costs beside its parent: a second TensorFlow runtime (1.1 GiB PSS while
# tf2onnx converts MobileNetV2), plus a multiple of the model for its graph
HELPER_MEMORY = 2 << 30
PER_MODEL_BYTE = 10


def overlap_default(model_bytes: int = 0) -> bool:
    """Overlap when there is a second core, this process is not itself a worker (a batch's
    workers already use the cores), and the memory available can hold a second TensorFlow
    process (``HELPER_MEMORY`` + ``PER_MODEL_BYTE`` x the model file's size)."""
    if (os.cpu_count() or 1) < 2 or multiprocessing.parent_process() is not None:
        return False
    available = _available_memory()
    return available is None or available >= HELPER_MEMORY + PER_MODEL_BYTE * model_bytes


def _available_memory() -> int | None:
    """``MemAvailable`` in bytes (Linux), else ``None`` (unknown: not a reason to refuse)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _serve(conn: Connection, parent: int, level: int) -> None:
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    logging.basicConfig(level=level, format="%(levelname)s %(name)s [helper]: %(message)s")
    quiet_frameworks(level)
    import tensorflow  # noqa: F401  (while the parent loads the model: the point of it)

    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        function, args = job
        t0 = time.monotonic()
        try:
            reply: tuple[str, Any] = ("ok", function(*args))
        except ModelportError as e:
            reply = ("error", str(e))
        except Exception as e:  # the parent runs the route itself and reports it
            log.debug("helper job failed", exc_info=True)
            reply = ("lost", one_line(e))
        conn.send((*reply, time.monotonic() - t0))


class Pending:
    """A job handed to the helper; ``result()`` waits for it."""

    def __init__(self, helper: "Helper") -> None:
        self._helper = helper
        self.seconds = 0.0  # the job's own time, in the helper

    def result(self) -> Any:
        """The job's return value.

        Raises:
            ConversionError: the job raised a ``ModelportError`` (its message).
            HelperLost: the helper died, or the job failed otherwise.
        """
        kind, value, self.seconds = self._helper._reply()
        if kind == "ok":
            return value
        if kind == "error":
            raise ConversionError(value)
        raise HelperLost(value)


class Helper:
    """One helper process; jobs run one at a time, in the order given."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, name="modelport-convert-helper", daemon=True,
                                 args=(child, os.getpid(), logging.getLogger().level))
        self._proc.start()
        child.close()
        self._lost = False

    def submit(self, function: Callable[..., Any], args: tuple) -> Pending:
        """Hand ``function(*args)`` to the helper (it starts once TensorFlow is imported
        there)."""
        try:
            self._conn.send((function, args))
        except (OSError, ValueError) as e:
            self._lost = True
            log.debug("helper unreachable: %s", e)
        return Pending(self)

    def _reply(self) -> tuple[str, Any, float]:
        if self._lost:
            return "lost", "the helper process is gone", 0.0
        ready = wait([self._conn, self._proc.sentinel])
        if self._conn in ready:
            try:
                return self._conn.recv()
            except (EOFError, OSError):
                pass
        self._lost = True
        return "lost", f"the helper process ended (exit code {self._proc.exitcode})", 0.0

    def close(self) -> None:
        """Stop the helper (at once: nothing it still runs is wanted)."""
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        self._proc.join(2)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._conn.close()
