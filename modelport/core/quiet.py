"""Keep native libraries' chatter off the terminal for the span of one call.

TensorFlow's C++ runtime prints CUDA-probe lines before its logging is configured, which
``TF_CPP_MIN_LOG_LEVEL`` cannot silence, and the MLIR converter and LiteRT print their
diagnostics natively; we point file descriptor 2 at /dev/null for the duration of the call
only, so Python errors (raised after) still reach the user.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

__all__ = ["native_stderr_silenced"]


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (pytest capture, IDEs)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)
