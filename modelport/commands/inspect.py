"""``modelport inspect PATH``: the input, output and node names each artifact really has."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help=".h5/.hdf5/.keras, SavedModel directory, .pb, .tflite, .onnx, "
                                "or a 'modelport convert' output directory")
    p.add_argument("--json", action="store_true",
                   help="print JSON: format, inputs, outputs, nodes (always listed), details")
    p.add_argument("--nodes", action="store_true",
                   help="list every node (layer for Keras files) with its op and inputs")
    p.add_argument("--find", metavar="REGEX",
                   help="list only nodes whose name or op matches REGEX (implies --nodes)")
    p.add_argument("--ops", action="store_true", help="add an op-type histogram")


def run(args: argparse.Namespace) -> int:
    from modelport.inspection import inspect, render_json, render_text

    # JSON is for programs: it always carries the node list, which is what they filter
    nodes = bool(args.json or args.nodes or args.find is not None)
    desc = inspect(args.path, nodes=nodes, find=args.find, ops=args.ops)
    if args.json:
        print(render_json(desc))
    else:
        print(render_text(desc, show_nodes=args.nodes or args.find is not None))
    return 0
