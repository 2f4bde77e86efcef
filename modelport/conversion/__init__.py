"""``convert``: load once, trace once, then for every requested format try its routes in
order until one writes an artifact that matches the Keras model (``routes.py``, checked by
``check.py``), then every quantized variant asked for (``--quantize``; calibration data
from ``calibration.py``), judged by its mode's accuracy tier, and write the manifest."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from modelport import converters
from modelport.conversion.calibration import prepare_calibration
from modelport.conversion.check import CheckOptions, QuickCheck
from modelport.conversion.helper import Helper, overlap_default
from modelport.conversion.routes import Started, hand_over, produce
from modelport.core.atomic import clean_partials, remove, sha256_of
from modelport.core.errors import UserInputError
from modelport.core.manifest import MANIFEST_SUFFIX, Manifest, tool_versions
from modelport.core.records import ArtifactRecord, ConvertOptions
from modelport.loading.serving import parse_input_shapes, trace
from modelport.loading.source import SourceModel, load

__all__ = ["convert", "CheckOptions"]

log = logging.getLogger(__name__)

Progress = Callable[[str, str, ArtifactRecord | None], None]


def convert(
    model: str | os.PathLike[str] | Any,
    out_dir: str | os.PathLike[str] = "out",
    formats: str | list[str] | None = "all",
    custom_objects: Any = None,
    trust_lambda: bool = False,
    allow_flex: bool = False,
    opset: int = 17,
    progress: Progress | None = None,
    architecture: str | os.PathLike[str] | None = None,
    check: bool | CheckOptions = True,
    quantize: str | list[str] | None = None,
    calibration: str | os.PathLike[str] | Any = None,
    synthetic_calibration: bool = False,
    calibration_scale: float | None = None,
    calibration_offset: float | None = None,
    input_shapes: Mapping[str, Sequence[int | None] | str] | Sequence[str] | None = None,
    layout: str | None = None,
    overlap: bool | None = False,
    on_loaded: Callable[[SourceModel], None] | None = None,
) -> Manifest:
    """Port a Keras model file to the requested formats, checking every artifact.

    Args:
        model: path to a ``.h5``/``.keras`` file, or an already loaded ``SourceModel``.
        out_dir: where ``<stem>.savedmodel/``, ``<stem>.pb``, ... and the manifest go.
        formats: ``"all"``, ``"onnx,tflite"`` or a list of format names.
        custom_objects: dict, module, ``.py`` path, module name, or a list of those.
        trust_lambda: allow running Lambda bytecode from the file (unsafe).
        allow_flex: let TFLite use Flex (Select TF) ops when builtins do not suffice.
        opset: ONNX opset.
        progress: called with ``(format, "start"|"done"|"failed", record)``.
        architecture: for a weights-only ``.h5``: ``FILE.json`` or ``module:function``.
        check: compare each candidate with the Keras model before it takes its final name
            (``True``: 2 seeded samples and the layout probe; a ``CheckOptions`` to choose;
            ``False``: skip, and the manifest says the artifacts are unchecked).
        quantize: quantized variants to write beside the float32 artifacts, e.g.
            ``["int8", "float16"]`` or ``"dynamic,int8-full"``: each mode for every
            requested format that offers it (``<stem>.<mode><suffix>``), each judged by
            its mode's accuracy tier (``CheckOptions.tiers`` overrides the defaults).
        calibration: representative inputs for the integer modes: a ``.npz`` keyed by
            input name, a folder of images, or a dict of arrays.
        synthetic_calibration: calibrate on inputs generated from the model's declared
            input domain instead (every report then says the figures are synthetic).
        calibration_scale, calibration_offset: images in [0, 255] become
            ``x*scale + offset`` (default: as the model's leading Rescaling or
            Normalization implies).
        input_shapes: input shapes to fix in every artifact, batch first, by input name
            (``{"image": [1, 224, 224, 3]}`` or ``["image=1,224,224,3"]``; ``None`` or
            ``?`` keeps a dimension open); the check feeds those shapes. With ``layout``,
            they are shapes in the artifacts' layout.
        layout: ``"channels_last"`` rewrites a channels_first model so the artifacts take
            NHWC (NWC, NDHWC) inputs with no layout transposes around convolutions; they
            are checked against the original model (``None``: keep the model's layout).
        overlap: convert a format that can be converted elsewhere (ONNX, from the frozen
            graph) in a helper process, which imports TensorFlow while the model loads,
            beside the other formats (``True``; ``None``: only when there are two cores,
            this is not a batch worker and the memory available holds a second TensorFlow
            process, ``helper.overlap_default``; ``False``, the default: everything in this
            process, one after another: on MobileNetV2 on 2 cores the helper measured no
            faster, 0.39-0.40x of the anchors' wall time against 0.35-0.41x, at 1.5x the
            memory). The artifacts are the same either way.
        on_loaded: called with the loaded model (``validate`` after ``convert`` reuses it
            rather than loading the file again).

    Returns:
        The manifest; ``manifest.ok`` is False when any format failed to convert or no
        route of it matched the Keras model (``record.unverified``); the others are still
        written.

    Raises:
        ModelportError: the model cannot be loaded, the quantization options or the
            calibration data are unusable, ``input_shapes`` does not fit the model, or
            ``layout`` cannot be applied to it (nothing is written then).
    """
    names = converters.parse_formats(formats)
    modes = converters.parse_quantize(quantize)
    variants = converters.plan_variants(names, modes)
    _check_calibration_given(variants, calibration, synthetic_calibration)
    shapes = parse_input_shapes(input_shapes)
    if layout not in (None, "channels_last"):
        raise UserInputError(f"--layout {layout}: the only layout to convert to is "
                             "channels_last")
    plan = CheckOptions() if check is True else (check or None)
    helper = _helper(names, overlap, model)
    try:
        return _convert(model, out_dir, names, modes, variants, custom_objects, trust_lambda,
                        allow_flex, opset, progress, architecture, plan, calibration,
                        synthetic_calibration, calibration_scale, calibration_offset, shapes,
                        layout, helper, on_loaded)
    finally:
        if helper is not None:
            helper.close()


def _helper(names: list[str], overlap: bool | None, model: Any) -> Helper | None:
    """A helper process, started now (it imports TensorFlow while the model loads), when
    a requested format can be converted there beside at least one other."""
    if overlap is None:
        path = None if isinstance(model, SourceModel) else Path(model)
        overlap = overlap_default(path.stat().st_size if path and path.is_file() else 0)
    if not overlap or len(names) < 2:
        return None
    if not any(getattr(converters.get(n), "OFFLOAD", False) for n in names):
        return None
    try:
        return Helper()
    except OSError as e:  # no process to be had (limits, a sandbox): convert here
        log.debug("no helper process: %s", e)
        return None


def _convert(model: Any, out_dir: Any, names: list[str], modes: list[str],
             variants: list[tuple[str, str]], custom_objects: Any, trust_lambda: bool,
             allow_flex: bool, opset: int, progress: Progress | None, architecture: Any,
             plan: CheckOptions | None, calibration: Any, synthetic_calibration: bool,
             calibration_scale: float | None, calibration_offset: float | None,
             shapes: dict, layout: str | None, helper: Helper | None,
             on_loaded: Callable[[SourceModel], None] | None) -> Manifest:
    t0 = time.monotonic()
    source = model if isinstance(model, SourceModel) else load(
        model, custom_objects=custom_objects, trust_lambda=trust_lambda,
        architecture=architecture)
    load_seconds = time.monotonic() - t0
    if on_loaded is not None:
        on_loaded(source)
    # the artifacts are traced from ``target``; they are checked against ``source``
    target = source if layout is None else _relaid(source)
    serving = trace(target, shapes) if shapes else target.serving
    if plan is not None and serving.shapes:
        plan = _feeding(plan, source, serving)
    cal = prepare_calibration(
        source, calibration, synthetic=synthetic_calibration, scale=calibration_scale,
        offset=calibration_offset, seed=(plan.seed if plan else 0) + 1) if modes else None
    options = ConvertOptions(opset=opset, allow_flex=allow_flex, quantize=tuple(modes),
                             calibration=cal)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clean_partials(out)
    manifest = Manifest(
        source={
            "path": str(source.path), "sha256": sha256_of(source.path),
            "keras_version": source.raw.keras_version, "backend": source.raw.backend,
            "loaded_with": source.framework, "data_format": source.data_format,
            "inputs": [t.to_dict() for t in source.inputs],
            "outputs": [t.to_dict() for t in source.outputs],
            "layout": dict(source.layout), "lambdas": source.lambdas,
            "embedding_vocab": dict(source.embedding_vocab),
            "load_seconds": round(load_seconds, 3),
        },
        options={"formats": names, "trust_lambda": trust_lambda, **options.to_dict(),
                 "input_shapes": dict(serving.shapes), "layout": layout,
                 "check": plan is not None,
                 **({"check_samples": plan.samples, "check_seed": plan.seed} if plan else {})},
        versions=tool_versions(),
        warnings=list(target.warnings),
        determinism=converters.determinism(),
    )
    if cal is not None and cal.synthetic:
        manifest.warnings.append(
            f"calibrated on synthetic inputs ({'; '.join(cal.details['distribution'].values())}), "
            "not real data: the integer variants' ranges and accuracy figures come from "
            "synthetic data; calibrate with --calibration FILE.npz|DIR of real inputs")
    checker = QuickCheck(source, plan, cal) if plan is not None else None
    if checker is not None:
        checker.warm_up(serving)
    try:
        return _produce_all(source, target, serving, names, variants, options, out,
                            checker, helper, cal, manifest, progress)
    finally:
        if checker is not None:
            checker.settle()


def _produce_all(source: SourceModel, target: SourceModel, serving: Any, names: list[str],
                 variants: list[tuple[str, str]], options: ConvertOptions, out: Path,
                 checker: QuickCheck | None, helper: Helper | None, cal: Any,
                 manifest: Manifest, progress: Progress | None) -> Manifest:
    """Every format, then every quantized variant, then the manifest."""
    started: dict[str, Started] = {}
    if helper is not None:  # handed over first, collected last
        for name in names:
            job = hand_over(converters.get(name), target, serving, options, out, helper)
            if job is not None:
                started[name] = job
    try:
        for name in [n for n in names if n not in started] + list(started):
            module = converters.get(name)
            if progress:
                progress(name, "start", None)
            begin = time.monotonic()
            record = produce(module, target, serving, options, out, checker,
                             started=started.pop(name, None))
            record.seconds = time.monotonic() - begin
            if any(r.get("process") == "helper" for r in record.routes):
                record.seconds = sum(r["seconds"] for r in record.routes)  # not the wait
            manifest.artifacts.append(record)
            if progress:
                progress(name, "done" if record.ok else "failed", record)
    finally:
        for job in started.values():  # an error above: their staging directories go
            remove(job.path.parent)
    manifest.artifacts.sort(key=lambda a: names.index(a.format))
    for name, mode in variants:
        module = converters.get(name)
        label = f"{name} {mode}"
        if progress:
            progress(label, "start", None)
        start = time.monotonic()
        plain = next((a for a in manifest.artifacts if a.format == name and a.ok
                      and a.quantization is None), None)
        record = produce(module, target, serving, options, out, checker, mode=mode,
                         base=out / plain.path if plain is not None else None)
        record.seconds = time.monotonic() - start
        if cal is not None and cal.synthetic and converters.needs_calibration(name, mode):
            record.warnings.append("calibrated on synthetic inputs generated from the "
                                   "model's declared input domain, not on real data")
        manifest.artifacts.append(record)
        if progress:
            progress(label, "done" if record.ok else "failed", record)
    if checker is not None:
        manifest.warnings += checker.warnings
    manifest.write(out / f"{source.stem}{MANIFEST_SUFFIX}")
    return manifest


def _check_calibration_given(variants: list[tuple[str, str]], calibration: Any,
                             synthetic: bool) -> None:
    """Integer modes need representative inputs: refuse before anything is loaded or
    written when none were given (or calibration data without a mode to use them).

    Raises:
        UserInputError: what to pass instead.
    """
    calibrated = sorted({m for f, m in variants if converters.needs_calibration(f, m)})
    if calibrated and calibration is None and not synthetic:
        raise UserInputError(
            f"--quantize {','.join(calibrated)} needs calibration data: pass --calibration "
            "FILE.npz (arrays keyed by input name) or --calibration DIR (images) with real "
            "inputs, or --synthetic-calibration to calibrate on generated inputs")
    if not variants and (calibration is not None or synthetic):
        raise UserInputError("calibration data are for quantized variants: add --quantize "
                             "MODE (e.g. int8)")


def _feeding(plan: CheckOptions, source: SourceModel, serving: Any) -> CheckOptions:
    """The check feeds the shapes the artifacts will have (in the model's layout)."""
    from modelport.validators.artifacts import fixed_feed_shapes

    inputs, _ = serving.tensors()
    shapes = fixed_feed_shapes(source.inputs, source.layout,
                               [("--input-shape", inputs, serving.source.layout)], plan.shapes)
    return replace(plan, shapes=shapes)


def _relaid(source: SourceModel) -> SourceModel:
    """``source`` rewritten channels_last (unchanged, with a note, when it is not
    channels_first)."""
    from modelport.loading.relayout import to_channels_last

    relaid = to_channels_last(source).source
    if relaid is source:
        return replace(source, warnings=[*source.warnings, "--layout channels_last changed "
                                         "nothing: the model has no channels_first input"])
    return relaid
