"""Plumbing for the child processes modelport starts (a batch's workers, convert's
helper): they die with their parent, and keep the frameworks' chatter to themselves."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

__all__ = ["die_with_parent", "quiet_frameworks"]


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``), and
    exit now if ``parent`` is already gone."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before we could ask
        os._exit(1)


def quiet_frameworks(level: int) -> None:
    """Above DEBUG, the frameworks' loggers say only errors and Python warnings are off
    (the CLI does the same in its own process)."""
    if level > logging.DEBUG:
        for name in ("tensorflow", "absl", "tf2onnx", "h5py", "keras"):
            logging.getLogger(name).setLevel(logging.ERROR)
        import warnings

        warnings.filterwarnings("ignore")
