"""Calibration data for integer quantization: the user's arrays (``--calibration
FILE.npz``), a folder of images (``--calibration DIR``), or inputs generated from the
domain the model declares (``--synthetic-calibration``, said in every report).

Arrays are keyed by input name: a positional list would feed the inputs in whatever order
it was written, so only a single-input model accepts an unnamed array. Images are decoded
with TensorFlow, resized to the input's height and width and scaled as the user says, or
as the model's own leading preprocessing layers imply (``loading.domain``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from modelport.core.errors import UserInputError
from modelport.core.records import Calibration
from modelport.core.text import fmt_shape, one_line

__all__ = ["prepare_calibration", "IMAGE_SUFFIXES", "MAX_SAMPLES", "SYNTHETIC_SAMPLES"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MAX_SAMPLES = 300  # the first samples used: ranges settle long before (TFLite: 100-500)
SYNTHETIC_SAMPLES = 100
FEW_SAMPLES = 10
_POSITIONAL = ("arr_0",)  # np.savez(path, array): an unnamed array


def prepare_calibration(source: Any, spec: Any = None, *, synthetic: bool = False,
                        scale: float | None = None, offset: float | None = None,
                        seed: int = 0, limit: int = MAX_SAMPLES) -> Calibration | None:
    """The calibration set: from ``spec`` (a ``.npz``/``.npy`` path, a folder of images,
    or a dict of arrays), or generated when ``synthetic``; ``None`` when neither.

    Raises:
        UserInputError: the data do not fit the model's inputs (names, shapes, dtypes), the
            folder holds no image, or pixel values cannot be scaled without being told how.
    """
    if spec is not None and synthetic:
        raise UserInputError("--calibration and --synthetic-calibration exclude each other; "
                             "give one")
    if (scale is not None or offset is not None) and not (
            isinstance(spec, (str, os.PathLike)) and Path(spec).is_dir()):
        raise UserInputError("--calibration-scale/--calibration-offset apply to a folder of "
                             "images (--calibration DIR) only")
    if synthetic:
        return _synthetic(source, seed)
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        cal = Calibration(_keyed(source, dict(spec), "--calibration"), "arrays")
    else:
        path = Path(spec)
        if path.is_dir():
            cal = _images(source, path, scale, offset, limit)
        elif path.is_file():
            cal = Calibration(_keyed(source, _read_arrays(path), f"--calibration {path}"),
                              str(path))
        else:
            raise UserInputError(f"--calibration {path}: no such file or directory; give a "
                                 ".npz keyed by input name or a folder of images")
    return _limited(cal, limit)


def _read_arrays(path: Path) -> Mapping[str, np.ndarray] | np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded:
            return {k: loaded[k] for k in loaded.files}
    except (OSError, ValueError, EOFError) as e:
        raise UserInputError(f"--calibration {path}: cannot read it ({one_line(e, 120)}); "
                             "give a .npz keyed by input name or a folder of images") from None


def _keyed(source: Any, raw: Mapping[str, np.ndarray] | np.ndarray,
           origin: str) -> dict[str, np.ndarray]:
    """The arrays checked against the model's inputs: every input by name (an unnamed
    array only for a single-input model), shapes and dtypes as the model's."""
    from modelport.validators.user_inputs import batch_size, conform_inputs

    names = source.input_names
    if isinstance(raw, Mapping):
        arrays = {str(k).split(":")[0]: v for k, v in raw.items()}
        if len(names) == 1 and list(arrays) == list(_POSITIONAL):
            arrays = {names[0]: arrays[_POSITIONAL[0]]}
        missing = [n for n in names if n not in arrays]
        if missing:
            how = ("key each array by input name: a positional list would feed the inputs in "
                   "the order it was written" if len(names) > 1 else "name the array after it")
            raise UserInputError(f"{origin}: no array for input(s) {', '.join(missing)} "
                                 f"(given: {', '.join(sorted(arrays)) or 'none'}); {how}")
        raw = {n: arrays[n] for n in names}
    feeds = conform_inputs(raw, source.inputs, origin)
    if batch_size(feeds) < 1:
        raise UserInputError(f"{origin}: holds no samples")
    for name, x in feeds.items():
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise UserInputError(f"{origin}: {name} holds NaN or Inf; calibration needs "
                                 "finite values")
    return feeds


def _limited(cal: Calibration, limit: int) -> Calibration:
    n = cal.samples
    if n > limit:
        cal.arrays = {k: v[:limit] for k, v in cal.arrays.items()}
        cal.details["used"] = f"the first {limit} of {n} samples"
    if cal.samples < FEW_SAMPLES:
        log.warning("only %d calibration sample(s): activation ranges may not cover real "
                    "inputs", cal.samples)
    return cal


def _synthetic(source: Any, seed: int) -> Calibration:
    from modelport.loading.domain import input_domains
    from modelport.validators.inputs import choose_domains, generate_inputs

    domains = choose_domains(source.inputs, dict(source.embedding_vocab),
                             input_domains(source.model))
    arrays = generate_inputs(source.inputs, SYNTHETIC_SAMPLES, seed, None, None,
                             source.layout, domains)
    return Calibration(arrays, "synthetic", True, {
        "distribution": {k: f"{d.describe()} ({d.reason})" for k, d in domains.items()}})


def _image_input(source: Any) -> tuple[Any, bool, int, int, int]:
    """The single image input: its record, channels_first, and H, W, C."""
    if len(source.inputs) != 1:
        raise UserInputError(f"--calibration DIR: the model has {len(source.inputs)} inputs "
                             f"({', '.join(source.input_names)}); images fill one, give a "
                             ".npz keyed by input name")
    spec = source.inputs[0]
    shape = list(spec.shape or [])
    layout = source.layout.get(spec.name) or ""
    first = layout == "NCHW"
    if len(shape) != 4 or (layout not in ("NHWC", "NCHW") and shape[-1] not in (1, 3, 4)):
        raise UserInputError(f"--calibration DIR: input {spec.name} has shape "
                             f"{fmt_shape(shape, named=False)}, not an image batch; give a "
                             ".npz keyed by input name")
    h, w, c = (shape[2], shape[3], shape[1]) if first else (shape[1], shape[2], shape[3])
    if not all(isinstance(d, int) and d > 0 for d in (h, w, c)) or c not in (1, 3, 4):
        raise UserInputError(f"--calibration DIR: input {spec.name} has shape "
                             f"{fmt_shape(shape, named=False)}: images need a known height, "
                             "width and 1, 3 or 4 channels; give a .npz keyed by input name")
    return spec, first, h, w, c


def _pixel_scaling(source: Any, name: str, scale: float | None,
                   offset: float | None) -> tuple[float, float, str]:
    """``(scale, offset, why)``: pixel values in [0, 255] become ``x*scale + offset``."""
    if scale is not None or offset is not None:
        s, o = (1.0 if scale is None else scale), (0.0 if offset is None else offset)
        return s, o, f"x*{s:g}{o:+g} (--calibration-scale/--calibration-offset)"
    from modelport.loading.domain import input_domains

    domain = input_domains(source.model).get(name)
    if domain is not None and domain.kind == "uniform" and np.ndim(domain.low) == 0 and \
            np.ndim(domain.high) == 0:
        lo, hi = float(domain.low), float(domain.high)
        s = (hi - lo) / 255.0
        return s, lo, f"[0, 255] -> [{lo:g}, {hi:g}]: {domain.reason}"
    if domain is not None and domain.kind == "normal" and np.ndim(domain.mean) <= 1:
        mean = float(np.mean(domain.mean))
        if mean > 1.5:
            return 1.0, 0.0, f"pixel values [0, 255]: {domain.reason} (its mean {mean:.4g})"
        if 0.0 <= mean <= 1.0:
            return 1 / 255.0, 0.0, f"[0, 1]: {domain.reason} (its mean {mean:.4g})"
    raise UserInputError(
        f"--calibration DIR: the model does not declare the range of {name} (no leading "
        "Rescaling or Normalization layer); say how pixel values [0, 255] are scaled with "
        "--calibration-scale S --calibration-offset O (x*S+O: 0.00392157 for [0, 1], "
        "0.00784314 and -1 for [-1, 1])")


def _images(source: Any, folder: Path, scale: float | None, offset: float | None,
            limit: int) -> Calibration:
    spec, first, h, w, c = _image_input(source)
    files = sorted(p for p in folder.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserInputError(f"--calibration {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) "
                             "in it; give a folder of images or a .npz keyed by input name")
    s, o, why = _pixel_scaling(source, spec.name, scale, offset)
    import tensorflow as tf

    batch = []
    for path in files[:limit]:
        try:
            img = tf.io.decode_image(path.read_bytes(), channels=c, expand_animations=False)
        except Exception as e:  # TensorFlow raises InvalidArgumentError for a bad file
            raise UserInputError(f"--calibration {folder}: cannot decode {path.name} "
                                 f"({one_line(e, 100, with_type=False)}); remove it or "
                                 "replace it with a valid image") from None
        img = tf.image.resize(tf.cast(img, tf.float32), [h, w]).numpy()
        batch.append(np.transpose(img, (2, 0, 1)) if first else img)
    x = (np.stack(batch) * s + o).astype(spec.dtype or "float32")
    details = {"images": len(files), "resized_to": [h, w], "scaling": why}
    if len(files) > limit:
        details["used"] = f"the first {limit} of {len(files)} images (sorted by path)"
    return Calibration({spec.name: x}, str(folder), False, details)
