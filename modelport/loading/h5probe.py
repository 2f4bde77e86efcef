"""Read an HDF5 file's facts in a child process: a crafted file can crash libhdf5.

``python -m modelport.loading.h5probe FILE`` opens the file, reads the root attributes,
scans the links for content that reads other files (never following it), reads every
dataset, then prints what it found as JSON. If libhdf5 crashes or hangs on the file, only
the child dies; the parent turns that into a ``ModelFileError``. This is the one safety
scan of the HDF5 structure; when the child survives, the frameworks' own reads of the
same file in the parent exercise the same code paths on the same bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from modelport.core.errors import ModelFileError
from modelport.core.text import to_text
from modelport.loading.hdf5 import has_names, unsafe_content

__all__ = ["probe", "probe_in_child"]

TIMEOUT_S = 300


def _text(value: Any) -> str | None:
    return None if value is None else to_text(value)


def probe(path: str) -> dict[str, Any]:
    """The facts ``modelfile`` needs; runs in the child."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        return {"error": "open", "detail": str(e).splitlines()[0] if str(e) else ""}
    with f:
        try:
            attrs = f.attrs
            facts: dict[str, Any] = {
                "model_config": _text(attrs.get("model_config")),
                "keras_version": to_text(attrs.get("keras_version")),
                "backend": to_text(attrs.get("backend")),
                "training_config": _text(attrs.get("training_config")),
                "layer_names": has_names(attrs, "layer_names"),
                "model_weights": "model_weights" in f,
                "keras3_layout": "layers" in f or "_layer_checkpoint_dependencies" in f,
                # Keras 0.x save_weights: nb_layers, layer_<i>/param_<j>, no layer names
                "keras0_layout": "nb_layers" in attrs and "layer_0" in f,
            }
            if not facts["keras_version"] and facts["model_weights"]:
                mw = f["model_weights"].attrs
                facts["keras_version"] = to_text(mw.get("keras_version"))
                facts["backend"] = facts["backend"] or to_text(mw.get("backend"))
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as e:
            return {"error": "attrs", "detail": str(e)}
        try:
            problems = unsafe_content(f)
        except Exception as e:  # the walk itself failed: a damaged file
            return {"error": "walk", "detail": f"{type(e).__name__}: {e}"}
    if problems:
        return {"error": "unsafe", "detail": (
            f"{path}: HDF5 content that reads other files: {'; '.join(problems[:3])}; refused "
            "(a model file must be self-contained; re-save it with model.save())")}
    try:
        with h5py.File(path, "r") as f:
            def touch(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset):
                    obj[()]  # decompress and read, as the loaders will
                for key in obj.attrs:
                    obj.attrs[key]

            f.visititems(touch)
    except Exception as e:
        return {"error": "data", "detail": f"{type(e).__name__}: {e}"}
    return facts


def probe_in_child(path: Path) -> dict[str, Any]:
    """Run :func:`probe` in a child process; a crash or hang is a damaged file."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", __name__, str(path)],
            capture_output=True, text=True, timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise ModelFileError(f"{path}: reading the HDF5 file did not finish in {TIMEOUT_S} s; "
                             "the file is damaged or crafted") from None
    if proc.returncode != 0:
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        raise ModelFileError(f"{path}: the HDF5 library crashed reading this file ({how}); "
                             "the file is damaged or crafted: re-download or re-save it")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ModelFileError(f"{path}: the HDF5 probe gave no answer; the file is damaged") from None


if __name__ == "__main__":  # pragma: no cover - exercised through probe_in_child
    print(json.dumps(probe(sys.argv[1])))
