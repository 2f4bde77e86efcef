"""``modelport bench ARTIFACT_OR_DIR... [--model MODEL]``: size, load time, first
inference, latency percentiles, throughput and peak memory of each artifact, each measured
in its own process; exit 0 when every artifact was measured, 2 when one could not be run
or the input is unusable."""

from __future__ import annotations

import argparse
import sys

from modelport.commands.common import add_loading_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT_OR_DIR",
                   help="artifacts (.savedmodel/, .pb, .tflite, .onnx) or directories of them")
    p.add_argument("--model", metavar="MODEL",
                   help="the Keras model file: measured too, and its input domains shape "
                        "the generated inputs")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="intra-op threads for every runtime (default: 1)")
    p.add_argument("--runs", type=int, default=50, metavar="N",
                   help="timed calls per artifact (default: 50)")
    p.add_argument("--warmup", type=int, default=5, metavar="N",
                   help="untimed calls after the first inference (default: 5)")
    p.add_argument("--batch", type=int, default=1, metavar="N",
                   help="samples per call (default: 1)")
    p.add_argument("--inputs", metavar="FILE",
                   help="arrays to feed: a .npz keyed by input name, or a .npy")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="generator seed (default: 0)")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=D1,D2,...",
                   help="concrete shape for an input with unknown dimensions (repeatable)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    add_loading_options(p)


def run(args: argparse.Namespace) -> int:
    from modelport.bench import bench

    print(f"benchmarking {len(args.artifacts)} path(s)"
          + (f" and {args.model}" if args.model else ""), file=sys.stderr)
    report = bench(args.artifacts, args.model, threads=args.threads, runs=args.runs,
                   warmup=args.warmup, batch=args.batch, inputs=args.inputs, seed=args.seed,
                   shapes=args.shape, custom_objects=args.custom_objects or None,
                   trust_lambda=args.trust_lambda)
    print(report.text())
    if args.json:
        print(f"figures: {report.write_json(args.json)}", file=sys.stderr)
    return report.exit_code
