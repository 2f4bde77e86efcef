"""Options several subcommands share."""

from __future__ import annotations

import argparse


def add_loading_options(p: argparse.ArgumentParser) -> None:
    """How the Keras model file is loaded: custom objects and Lambda trust."""
    p.add_argument("--custom-objects", action="append", default=[], metavar="X",
                   help="a .py file or importable module whose public names are registered "
                        "as custom objects (repeatable)")
    p.add_argument("--trust-lambda", action="store_true",
                   help="allow running Lambda bytecode stored in the model file (unsafe)")
