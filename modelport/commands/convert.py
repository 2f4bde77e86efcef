"""``modelport convert MODEL``, and ``modelport convert A.h5 B.keras DIR/ --jobs N``: a
batch (``commands/batch.py``), each model converted with the same options."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from modelport.commands.common import add_loading_options
from modelport.core.text import fmt_shape, table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help=".h5/.hdf5/.keras model file; several, or directories of them, make a "
                        "batch: each model goes to OUT/<name>/ and OUT/batch.jsonl")
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
    q = p.add_argument_group("quantized variants")
    q.add_argument("--quantize", metavar="MODES",
                   help="also write quantized variants, a comma list of: dynamic, float16, "
                        "int8, int8-full, int16x8 (TFLite), dynamic, int8, float16 (ONNX); "
                        "each as OUT/<stem>.<mode>.<suffix>, judged by its accuracy tier")
    q.add_argument("--calibration", metavar="FILE.npz|DIR",
                   help="representative inputs for the int8 modes: a .npz keyed by input "
                        "name, or a folder of images (resized to the input's size)")
    q.add_argument("--synthetic-calibration", action="store_true",
                   help="calibrate on inputs generated from the model's declared input "
                        "domain (reports then say the accuracy figures are synthetic)")
    q.add_argument("--calibration-scale", type=float, metavar="S",
                   help="images: pixel values [0, 255] become x*S+O (default: as the "
                        "model's leading Rescaling/Normalization implies)")
    q.add_argument("--calibration-offset", type=float, metavar="O",
                   help="images: the O of x*S+O (default 0)")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D1,D2,...",
                   help="fix this input's shape in every artifact, batch first, e.g. "
                        "image=1,224,224,3 (? keeps a dimension open; repeatable)")
    p.add_argument("--layout", choices=["channels_last"],
                   help="channels_last: rewrite a channels_first model so the artifacts take "
                        "NHWC inputs with no transposes around convolutions (validated "
                        "against the original model)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="do not compare each artifact with the Keras model before it takes "
                        "its final name (the manifest then says it is unchecked)")
    p.add_argument("--validate", action="store_true",
                   help="run 'modelport validate' on the artifacts after converting")
    p.add_argument("--overlap", action="store_true",
                   help="convert ONNX in a helper process beside the other formats when "
                        "there is a second core and memory for a second TensorFlow "
                        "(same artifacts; on 2 cores it measured no faster, at 1.5x the "
                        "memory, so it is off by default)")
    from modelport.commands.validate import add_validation_options

    add_validation_options(p)
    p.add_argument("--jobs", type=int, metavar="N",
                   help="batch: worker processes converting models side by side (default: 1)")
    p.add_argument("--shard", metavar="K/N",
                   help="batch: convert only the K-th of N disjoint parts of the inputs (for "
                        "a CI matrix or a job array)")


class _Progress:
    """A live line per format on a terminal, plain lines when piped."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()

    def __call__(self, fmt: str, state: str, record) -> None:
        if state == "start":
            if self.tty:
                self.stream.write(f"\r  {fmt:<16} converting...")
                self.stream.flush()
            return
        mark = "ok" if state == "done" else "UNVERIFIED" if record.unverified else "FAILED"
        text = f"  {fmt:<16} {mark:<10} {record.seconds:6.1f}s  "
        text += f"{record.path}  {_check_note(record)}" if record.ok else record.error
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()


def convert_options(args: argparse.Namespace) -> dict[str, Any]:
    """``conversion.convert``'s keyword arguments from the command line (all but the
    model, the output directory and the progress display); a batch passes them to every
    model unchanged."""
    return dict(
        formats=args.to, custom_objects=args.custom_objects or None,
        trust_lambda=args.trust_lambda, allow_flex=args.allow_flex, opset=args.opset,
        architecture=args.architecture, check=_check_options(args) if args.check else False,
        quantize=args.quantize, calibration=args.calibration,
        synthetic_calibration=args.synthetic_calibration,
        calibration_scale=args.calibration_scale, calibration_offset=args.calibration_offset,
        input_shapes=args.input_shape or None, layout=args.layout,
        **({"overlap": None} if getattr(args, "overlap", False) else {}),
    )


def needs_tensorflow(args: argparse.Namespace) -> bool:
    """A batch's parent process only hands models to workers: it never imports TensorFlow."""
    from modelport.commands.batch import is_batch

    return not is_batch(args)


def run(args: argparse.Namespace) -> int:
    from modelport.commands import batch

    if batch.is_batch(args):
        # validate's own option parsing: a batch validates each model as validate would
        from modelport.commands.validate import _options as validation_options

        return batch.run(args, convert_options(args),
                         validation_options(args) if args.validate else None)
    from modelport.conversion import convert

    args.model = args.models[0]
    print(f"converting {args.model} -> {args.out}/", file=sys.stderr)
    loaded: list[Any] = []  # --validate reuses the model convert loaded
    manifest = convert(args.model, out_dir=args.out, progress=_Progress(),
                       on_loaded=loaded.append if args.validate else None,
                       **convert_options(args))
    print(format_manifest(manifest))
    failed = [a for a in manifest.artifacts if not a.ok]
    if failed:
        differ = [a for a in failed if a.unverified]
        print(f"{len(failed)} of {len(manifest.artifacts)} formats failed"
              + (f" ({len(differ)} not matching the Keras model)" if differ else "")
              + f"; manifest: {manifest.path}", file=sys.stderr)
        return manifest.exit_code
    if args.validate:
        from modelport.commands.validate import validate_after_convert

        return validate_after_convert(args, manifest, loaded[0] if loaded else None)
    return 0


def _check_options(args: argparse.Namespace):
    """The check's inputs and tolerances from the validation options given to convert
    (its sample count stays small: it is a probe, ``--validate`` is the full run)."""
    from modelport.commands.validate import parse_tolerances
    from modelport.conversion import CheckOptions
    from modelport.validators.inputs import parse_shape_overrides
    from modelport.validators.tiers import parse_tiers

    return CheckOptions(seed=args.seed, inputs=args.inputs, atol=args.atol, rtol=args.rtol,
                        tolerances=parse_tolerances(args.tolerance),
                        shapes=parse_shape_overrides(args.shape), tiers=parse_tiers(args.tier))


def _check_note(record) -> str:
    """``route builtins; checked: max abs error 1e-06``, briefly."""
    check = record.check or {}
    status = check.get("status")
    if status in ("passed", "failed") and check.get("tier"):
        note = f"{check['tier']['mode']} tier {'met' if status == 'passed' else 'NOT met'}: " \
            + _tier_figures(check)
    elif status == "passed":
        err = check.get("max_abs_error")
        note = "checked" + (f": max abs error {err:.2g}" if isinstance(err, float) else "")
    elif status == "skipped":
        note = "not checked (--no-check)"
    elif status == "unchecked":
        note = "NOT CHECKED: " + str(check.get("reason", ""))[:80]
    else:
        note = ""
    rejected = len([r for r in record.routes if r.get("outcome") != "used"])
    route = f"route {record.route}" + (f" ({rejected} rejected)" if rejected else "")
    return "; ".join(x for x in (route if record.route else "", note) if x)


def _tier_figures(check: dict) -> str:
    """``cosine 0.99985, SQNR 35.0 dB, top-1 99.2% (synthetic data)``."""
    parts = []
    if isinstance(check.get("cosine"), float):
        parts.append(f"cosine {check['cosine']:.5f}")
    if isinstance(check.get("sqnr_db"), float):
        parts.append(f"SQNR {check['sqnr_db']:.1f} dB")
    if isinstance(check.get("top1_agreement"), float):
        parts.append(f"top-1 {check['top1_agreement']:.1%}")
    synthetic = "synthetic" in str(check.get("data", ""))
    return ", ".join(parts) + (" (synthetic data)" if synthetic else "")


def format_manifest(manifest) -> str:
    """The artifacts table: format, path, input and output names."""
    rows = [("format", "artifact", "inputs", "outputs", "notes")]
    for a in manifest.artifacts:
        if not a.ok:
            what = f"UNVERIFIED, kept as {a.details.get('unverified')}" if a.unverified \
                else "FAILED"
            rows.append((a.format, a.path, "-", "-", f"{what}: " + a.error[:80]))
            continue
        ins = ", ".join(f"{t.name}{fmt_shape(t.shape, '')}" for t in a.inputs)
        outs = ", ".join(f"{t.name}{fmt_shape(t.shape, '')}" for t in a.outputs)
        notes = "; ".join([_check_note(a)] + a.warnings)[:100]
        rows.append((a.format, a.path, ins, outs, notes))
    return "\n".join(table(rows, header=True) + [f"manifest: {manifest.path}"])
