"""Read an HDF5 file's facts in a child process: a crafted file can crash libhdf5.

``python -m modelport.h5probe FILE`` opens the file, reads the root attributes, walks every
link (never following external ones) and reads every dataset, then prints what it found as
JSON. If libhdf5 crashes or hangs on the file, only the child dies; the parent turns that
into a ``ModelFileError``. When the child survives, the frameworks' own reads of the same
file in the parent exercise the same code paths on the same bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from modelport.errors import ModelFileError

__all__ = ["probe", "probe_in_child"]

TIMEOUT_S = 300


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def probe(path: str) -> dict[str, Any]:
    """The facts ``modelfile`` needs; runs in the child."""
    import h5py

    from modelport.errors import UnsafeModelError
    from modelport.safety import check_hdf5

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        return {"error": "open", "detail": str(e).splitlines()[0] if str(e) else ""}
    with f:
        try:
            attrs = f.attrs
            facts: dict[str, Any] = {
                "model_config": _text(attrs.get("model_config")),
                "keras_version": _text(attrs.get("keras_version")) or "",
                "backend": _text(attrs.get("backend")) or "",
                "training_config": _text(attrs.get("training_config")),
                "layer_names": "layer_names" in attrs,
                "model_weights": "model_weights" in f,
                "keras3_layout": "layers" in f or "_layer_checkpoint_dependencies" in f,
            }
            if not facts["keras_version"] and facts["model_weights"]:
                mw = f["model_weights"].attrs
                facts["keras_version"] = _text(mw.get("keras_version")) or ""
                facts["backend"] = facts["backend"] or _text(mw.get("backend")) or ""
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as e:
            return {"error": "attrs", "detail": str(e)}
    try:
        check_hdf5(Path(path))
    except UnsafeModelError as e:
        return {"error": "unsafe", "detail": str(e)}
    except Exception as e:  # the walk itself failed: a damaged file
        return {"error": "walk", "detail": f"{type(e).__name__}: {e}"}
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
            [sys.executable, "-m", "modelport.h5probe", str(path)],
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
