"""``modelport view PATH``: serve an artifact in Netron on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from modelport.core.errors import UserInputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="model file, SavedModel directory or 'modelport convert' output "
                                "directory (opens its ONNX, else TFLite, .pb, SavedModel)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=None,
                   help="port to listen on (default: 8080 if free, else a free one; 0: any free)")
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --host; anyone who can reach it can download "
                        "the model")


def run(args: argparse.Namespace) -> int:
    from modelport.view import start, wait

    if args.port is not None and not 0 <= args.port <= 65535:
        raise UserInputError(f"--port {args.port} is not a port number (0-65535)")
    viewer = start(args.path, host=args.host, port=args.port, browse=not args.no_browser,
                   allow_remote=args.allow_remote)
    # a service manager stops us with SIGTERM: shut down as cleanly as on Ctrl-C
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    print(f"serving {viewer.source} at {viewer.url}", flush=True)
    print("press Ctrl-C to stop", file=sys.stderr, flush=True)
    wait(viewer)
    print("stopped", file=sys.stderr, flush=True)
    return 0


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
