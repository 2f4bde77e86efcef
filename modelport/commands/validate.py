"""``modelport validate MODEL ARTIFACT_OR_DIR...``: exit 0 when every artifact matches the
Keras model, 1 when any does not, 2 when the model, an artifact path or the inputs are
unusable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from modelport.commands.common import add_loading_options
from modelport.core.errors import UserInputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help=".h5/.hdf5/.keras model file (the reference)")
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT_OR_DIR",
                   help="artifacts (.savedmodel/, .pb, .tflite, .onnx) or directories of them")
    add_validation_options(p)
    add_loading_options(p)


def add_validation_options(p: argparse.ArgumentParser) -> None:
    """The options shared with ``convert --validate``."""
    p.add_argument("--inputs", metavar="FILE",
                   help="arrays to feed: a .npz keyed by input name, or a .npy for a "
                        "single-input model (default: seeded inputs in the range the model "
                        "declares, e.g. [0, 255] before a Rescaling(1/255))")
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help="samples to generate (default: 4, or 32 when quantized artifacts "
                        "are judged)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="generator seed (default: 0)")
    p.add_argument("--atol", type=float, metavar="A",
                   help="absolute tolerance, replacing the default: a multiple of the "
                        "model's own float32 noise floor, measured per output and sample")
    p.add_argument("--rtol", type=float, metavar="R",
                   help="relative tolerance (default for float32: 1e-3)")
    p.add_argument("--tolerance", action="append", default=[], metavar="FORMAT=ATOL[,RTOL]",
                   help="per-format tolerance, e.g. tflite=1e-3,1e-2 (repeatable; replaces "
                        "--atol/--rtol and the measured default for that format)")
    p.add_argument("--tier", action="append", default=[], metavar="MODE=KEY:VALUE,...",
                   help="accuracy tier of quantized artifacts, replacing the default's "
                        "figures: keys cosine, sqnr (dB), max_abs, top1; VALUE a number or "
                        "off, e.g. int8=cosine:0.99,sqnr:20,top1:0.98 (repeatable)")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=D1,D2,...",
                   help="concrete shape for an input with unknown dimensions, e.g. "
                        "image=1,224,224,3; the batch is set by --samples (repeatable)")
    p.add_argument("--save-inputs", metavar="FILE.npz",
                   help="save the inputs used, to replay the run elsewhere with --inputs")
    p.add_argument("--allow-degenerate", action="store_true",
                   help="do not fail when the model's outputs do not depend on the inputs")
    p.add_argument("--no-layout-probe", dest="layout_probe", action="store_false",
                   help="do not add the layout probe sample to the inputs")
    p.add_argument("--json", metavar="REPORT.json", help="also write the report as JSON")
    p.add_argument("--layers", action="store_true",
                   help="also compare every Keras layer output with the tensor that carries "
                        "it in each artifact; report the first divergent layer and where "
                        "the error grows most")
    p.add_argument("--report", metavar="REPORT.html",
                   help="write a self-contained HTML report (verdicts, error histograms, "
                        "per-layer drift curves, the name map, inputs, versions and "
                        "hashes); implies --layers")


def parse_tolerances(items: list[str]) -> dict[str, tuple[float | None, float | None]]:
    """``["tflite=1e-3,1e-2", "onnx=,1e-2"]`` -> ``{"tflite": (1e-3, 1e-2), "onnx": (None, 1e-2)}``."""
    from modelport import converters

    out: dict[str, tuple[float | None, float | None]] = {}
    for item in items or []:
        fmt, sep, values = item.partition("=")
        parts = values.split(",")
        try:
            name = converters.parse_formats(fmt.strip())
            nums = [float(v) if v.strip() else None for v in parts]
        except (UserInputError, ValueError):
            name, nums = [], []
        if not sep or len(name) != 1 or not 1 <= len(nums) <= 2 or \
                any(v is not None and v < 0 for v in nums):
            raise UserInputError(f"--tolerance {item!r}: expected FORMAT=ATOL[,RTOL] with a "
                                 "format of savedmodel, pb, tflite, onnx, e.g. tflite=1e-3,1e-2")
        out[name[0]] = (nums[0], nums[1] if len(nums) > 1 else None)
    return out


def _options(args: argparse.Namespace) -> dict[str, Any]:
    from modelport.validators.inputs import parse_shape_overrides
    from modelport.validators.tiers import parse_tiers

    return dict(
        inputs=getattr(args, "inputs", None),
        samples=getattr(args, "samples", None),
        tiers=parse_tiers(getattr(args, "tier", [])),
        seed=getattr(args, "seed", 0),
        atol=getattr(args, "atol", None),
        rtol=getattr(args, "rtol", None),
        tolerances=parse_tolerances(getattr(args, "tolerance", [])),
        shapes=parse_shape_overrides(getattr(args, "shape", [])),
        allow_degenerate=getattr(args, "allow_degenerate", False),
        save_inputs=getattr(args, "save_inputs", None),
        probe=getattr(args, "layout_probe", True),
        custom_objects=getattr(args, "custom_objects", None) or None,
        trust_lambda=getattr(args, "trust_lambda", False),
        layers=bool(getattr(args, "layers", False) or getattr(args, "report", None)),
    )


def _finish(args: argparse.Namespace, report) -> int:
    from modelport.validators.report import format_report, write_json

    print(format_report(report))
    if getattr(args, "json", None):
        path = write_json(report, args.json)
        print(f"report: {path}", file=sys.stderr)
    if getattr(args, "report", None):
        from modelport.validators.html_report import write_html

        path = write_html(report, args.report)
        print(f"HTML report: {path}", file=sys.stderr)
    if getattr(args, "save_inputs", None):
        from modelport.validators.validation import saved_path

        print(f"inputs saved: {saved_path(args.save_inputs)}", file=sys.stderr)
    return report.exit_code


def run(args: argparse.Namespace) -> int:
    from modelport.validators.validation import validate

    print(f"validating {len(args.artifacts)} path(s) against {args.model}", file=sys.stderr)
    report = validate(args.model, args.artifacts, **_options(args))
    return _finish(args, report)


def validate_after_convert(args: argparse.Namespace, manifest: Any,
                           source: Any = None) -> int:
    """Validate the artifacts ``convert`` just wrote; returns the exit code.

    Uses the validation options present on ``args`` (defaults otherwise) and the
    model, custom objects and trust setting of the conversion; ``source``: the model
    convert loaded (else the file is loaded again).
    """
    from modelport.validators.validation import validate

    out_dir = Path(manifest.path).parent if manifest.path else Path(getattr(args, "out", "."))
    artifacts = [out_dir / a.path for a in manifest.artifacts if a.ok]
    if not artifacts:
        raise UserInputError("nothing to validate: no artifact was written")
    model = manifest.source.get("path") or args.model
    print(f"validating {len(artifacts)} artifact(s) against {model}", file=sys.stderr)
    report = validate(source if source is not None else model, artifacts, **_options(args))
    return _finish(args, report)
