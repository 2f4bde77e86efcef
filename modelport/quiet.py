"""Import TensorFlow without its native start-up chatter on stderr.

TensorFlow's C++ runtime prints CUDA-probe lines before its logging is configured, which
``TF_CPP_MIN_LOG_LEVEL`` cannot silence; we point file descriptor 2 at /dev/null for the
duration of the import only, so Python errors (raised after) still reach the user.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

__all__ = ["native_stderr_silenced", "import_tensorflow_quietly"]


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


def import_tensorflow_quietly() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    with native_stderr_silenced():
        import tensorflow  # noqa: F401
