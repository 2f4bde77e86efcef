"""``modelport inspect PATH``: the input, output and node names each artifact really has."""

from __future__ import annotations

import argparse
import sys

from modelport.commands.common import add_loading_options
from modelport.core.errors import UserInputError


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
    p.add_argument("artifacts", nargs="*", metavar="ARTIFACT_OR_DIR",
                   help="with --map: the artifacts (or convert output directories) to map")
    p.add_argument("--map", action="store_true",
                   help="PATH is a Keras model: list, for every layer output, the tensor "
                        "that carries it in each ARTIFACT_OR_DIR (matched by name, "
                        "confirmed by values) and what was fused away")
    p.add_argument("--plot", metavar="GRAPH.svg|png|pdf",
                   help="draw PATH (Keras model or artifact) as a graph with names and "
                        "shapes (needs Graphviz)")
    p.add_argument("--drift", metavar="REPORT.json",
                   help="with --plot on a Keras model: colour its layers from a "
                        "'validate --layers --json' report (past the tolerance: red)")
    p.add_argument("--samples", type=int, default=4, metavar="N",
                   help="with --map: samples to run (default: 4)")
    p.add_argument("--inputs", metavar="FILE", help="with --map: arrays to feed (.npz/.npy)")
    add_loading_options(p)


def run(args: argparse.Namespace) -> int:
    if args.artifacts and not args.map:
        raise UserInputError("extra paths are only for --map: modelport inspect --map MODEL "
                             "OUT_DIR")
    if args.map:
        return _map(args)
    if args.drift and not args.plot:
        raise UserInputError("--drift colours a picture: add --plot GRAPH.svg")
    if args.plot:
        from modelport.inspection.plot import plot

        dest = plot(args.path, args.plot, custom_objects=args.custom_objects or None,
                    trust_lambda=args.trust_lambda, drift=args.drift)
        print(f"graph: {dest}", file=sys.stderr)
        return 0
    from modelport.inspection import inspect, render_json, render_text

    # JSON is for programs: it always carries the node list, which is what they filter
    nodes = bool(args.json or args.nodes or args.find is not None)
    desc = inspect(args.path, nodes=nodes, find=args.find, ops=args.ops)
    if args.json:
        print(render_json(desc))
    else:
        print(render_text(desc, show_nodes=args.nodes or args.find is not None))
    return 0


def _map(args: argparse.Namespace) -> int:
    from modelport.inspection.namemap import name_maps, render_map_json, render_map_text

    if not args.artifacts:
        raise UserInputError("--map needs the artifacts: modelport inspect --map MODEL OUT_DIR")
    report = name_maps(args.path, args.artifacts, samples=args.samples, inputs=args.inputs,
                       custom_objects=args.custom_objects or None,
                       trust_lambda=args.trust_lambda)
    print(render_map_json(report) if args.json else render_map_text(report))
    return 0
