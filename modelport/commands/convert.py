"""``modelport convert MODEL``."""

from __future__ import annotations

import argparse
import sys

from modelport.commands.common import add_loading_options
from modelport.core.errors import EXIT_CONVERSION
from modelport.core.text import fmt_shape, table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help=".h5/.hdf5/.keras model file")
    p.add_argument("--to", default="all", metavar="FORMATS",
                   help="all, or a comma list of: savedmodel,pb,tflite,onnx (default: all)")
    p.add_argument("--out", default="out", metavar="DIR", help="output directory (default: out)")
    add_loading_options(p)
    p.add_argument("--allow-flex", action="store_true",
                   help="let TFLite use Flex (Select TF) ops; the artifact then needs the Flex delegate")
    p.add_argument("--architecture", metavar="JSON|MODULE:FUNC",
                   help="for a weights-only .h5: the model.to_json() file, or a function that "
                        "builds the model; weights are matched by layer name")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--validate", action="store_true",
                   help="run 'modelport validate' on the artifacts after converting")
    from modelport.commands.validate import add_validation_options

    add_validation_options(p)


class _Progress:
    """A live line per format on a terminal, plain lines when piped."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()

    def __call__(self, fmt: str, state: str, record) -> None:
        if state == "start":
            if self.tty:
                self.stream.write(f"\r  {fmt:<11} converting...")
                self.stream.flush()
            return
        mark = "ok" if state == "done" else "FAILED"
        text = f"  {fmt:<11} {mark:<6} {record.seconds:6.1f}s  "
        text += record.path if record.ok else record.error
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from modelport.conversion import convert

    print(f"converting {args.model} -> {args.out}/", file=sys.stderr)
    manifest = convert(
        args.model, out_dir=args.out, formats=args.to, custom_objects=args.custom_objects or None,
        trust_lambda=args.trust_lambda, allow_flex=args.allow_flex, opset=args.opset,
        progress=_Progress(), architecture=args.architecture,
    )
    print(format_manifest(manifest))
    failed = [a for a in manifest.artifacts if not a.ok]
    if failed:
        print(f"{len(failed)} of {len(manifest.artifacts)} formats failed; "
              f"manifest: {manifest.path}", file=sys.stderr)
        return EXIT_CONVERSION
    if args.validate:
        from modelport.commands.validate import validate_after_convert

        return validate_after_convert(args, manifest)
    return 0


def format_manifest(manifest) -> str:
    """The artifacts table: format, path, input and output names."""
    rows = [("format", "artifact", "inputs", "outputs", "notes")]
    for a in manifest.artifacts:
        if not a.ok:
            rows.append((a.format, a.path, "-", "-", "FAILED: " + a.error[:80]))
            continue
        ins = ", ".join(f"{t.name}{fmt_shape(t.shape, '')}" for t in a.inputs)
        outs = ", ".join(f"{t.name}{fmt_shape(t.shape, '')}" for t in a.outputs)
        notes = "; ".join(a.warnings)[:80]
        rows.append((a.format, a.path, ins, outs, notes))
    return "\n".join(table(rows, header=True) + [f"manifest: {manifest.path}"])
