"""``modelport`` command line: parse args, call the API, print, exit with a code.

Each subcommand lives in ``modelport/commands/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``; they are listed here explicitly and imported only when used, so
``modelport --help`` stays fast and one broken subcommand does not break the others.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import logging
import os
import sys
import threading
from typing import Sequence

from modelport.core.errors import ModelportError

__all__ = ["main", "entry"]

COMMANDS: dict[str, tuple[str, str]] = {
    "convert": ("modelport.commands.convert", "port a Keras model to SavedModel, .pb, TFLite, ONNX"),
    "validate": ("modelport.commands.validate", "compare artifacts against the Keras model"),
    "inspect": ("modelport.commands.inspect", "list an artifact's inputs, outputs and nodes"),
    "view": ("modelport.commands.view", "open an artifact in Netron on loopback"),
    "bench": ("modelport.commands.bench", "measure size, load time, latency and memory of "
              "artifacts, each in its own process"),
}


# TensorFlow's converters allocate millions of short-lived objects: at Python's default
# thresholds (700, 10, 10) the cyclic collector ran 567 times in one MobileNetV2
# ``convert --to all`` and took 1.1-1.2 s; at these it ran 36 times, 0.4-0.5 s, and the run
# peaked no higher (1.53 GB RSS against 1.60). Set for this process only, never by the API.
GC_THRESHOLDS = (10_000, 10, 10)


def _parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="modelport",
        description="Port Keras .h5/.keras models to SavedModel, frozen .pb, TFLite and ONNX, "
        "and prove the port.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, object] = {}
    wanted = next((a for a in argv if a in COMMANDS), None)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks and debug logs")
        if name != wanted:
            continue  # only the chosen command's module is imported
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            p.set_defaults(_import_error=f"'{name}' is unavailable: {e}")
            continue
        module.add_arguments(p)
        modules[name] = module
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, modules = _parser(argv)
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(f"modelport {version('modelport')}")
        return 0
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        _quiet_frameworks()
    needs_tf = getattr(modules.get(args.command), "needs_tensorflow", lambda _: True)
    if not args.debug and args.command in ("convert", "validate", "bench") and needs_tf(args):
        _import_tensorflow_quietly()
    if args.command in ("convert", "validate", "bench") and needs_tf(args):
        gc.set_threshold(*GC_THRESHOLDS)
    if getattr(args, "_import_error", None):
        print(f"modelport: error: {args._import_error}", file=sys.stderr)
        return 2
    try:
        return int(modules[args.command].run(args))  # type: ignore[attr-defined]
    except ModelportError as e:
        if args.debug:
            raise
        print(f"modelport: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("modelport: interrupted", file=sys.stderr)
        return 130


def _import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules:
        return
    from modelport.core.quiet import native_stderr_silenced

    with native_stderr_silenced():
        import tensorflow  # noqa: F401


def _quiet_frameworks() -> None:
    for name in ("tensorflow", "absl", "tf2onnx", "h5py", "keras"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore")


def entry() -> None:
    """The ``modelport`` console script and ``python -m modelport``: ``main()``, then end
    the process (``leave``)."""
    leave(main())


def leave(code: int) -> None:
    """Exit with ``code``. Once TensorFlow is imported, the interpreter's own teardown
    (finalising every module, then TensorFlow's native destructors) takes 1.1-1.4 s on
    this machine, measured after ``convert`` returned: longer than a ``.pb``'s conversion.
    Nothing of modelport's is left to it: artifacts and manifests are written, closed and
    renamed before a command returns. So what a normal exit does that matters is done here
    (the ``atexit`` handlers, which include temporary directories' finalisers; logging
    flushed; stdout and stderr flushed) and the process ends with ``os._exit``. Without
    TensorFlow, or with a non-daemon thread still running (a normal exit would wait for
    it), it is a normal ``sys.exit``."""
    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if "tensorflow" not in sys.modules or others:
        sys.exit(code)
    try:
        atexit._run_exitfuncs()
        logging.shutdown()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe (``| head``): nothing to flush to
                pass
        os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
