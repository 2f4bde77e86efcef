"""What kind of file a path holds, from its metadata and magic bytes, before any parser
touches it: pickles and anything else that is not HDF5 or a ``.keras`` zip are refused
unparsed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from modelport.core.errors import ModelFileError

__all__ = ["check_path", "sniff", "HDF5_MAGIC", "ZIP_MAGIC", "MODEL_SUFFIXES"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
# the names of Keras model files (a directory given to a batch is searched for these)
MODEL_SUFFIXES = (".h5", ".hdf5", ".keras")
_PICKLE_PREFIXES = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def check_path(path: str | Path) -> Path:
    """Existence, type and readability, each with its own message."""
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{p}: no such file; check the path")
    if p.is_dir():
        raise ModelFileError(
            f"{p}: is a directory, not a model file; pass the .h5 or .keras file inside it"
        )
    try:
        st = p.stat()
    except PermissionError:
        raise ModelFileError(f"{p}: permission denied; make the file readable") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(f"{p}: not a regular file; pass a .h5 or .keras file")
    if not os.access(p, os.R_OK):
        raise ModelFileError(f"{p}: permission denied; make the file readable (chmod +r)")
    if st.st_size == 0:
        raise ModelFileError(f"{p}: the file is empty (0 bytes); re-download or re-save it")
    return p


def sniff(path: Path) -> str:
    """``"h5"`` or ``"keras"`` from the magic bytes; refuses everything else unparsed."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except PermissionError:
        raise ModelFileError(f"{path}: permission denied; make the file readable") from None
    suffix = path.suffix.lower()
    if head.startswith(HDF5_MAGIC):
        if suffix == ".keras":
            raise ModelFileError(
                f"{path}: named .keras but is an HDF5 file; rename it to .h5 and retry"
            )
        return "h5"
    if head.startswith(ZIP_MAGIC):
        if suffix in (".h5", ".hdf5"):
            raise ModelFileError(
                f"{path}: named {suffix} but is a zip (a Keras 3 .keras archive?); "
                "rename it to .keras and retry"
            )
        return "keras"
    if head.startswith(_PICKLE_PREFIXES) or head[:1] in (b"(", b"]", b"}") and suffix in (
        ".pkl", ".pickle", ".h5", ".hdf5"
    ):
        raise ModelFileError(
            f"{path}: looks like a Python pickle, not an HDF5 or .keras model; it was not "
            "opened (unpickling runs code). Re-save the model with model.save('model.h5')"
        )
    if suffix not in MODEL_SUFFIXES:
        raise ModelFileError(
            f"{path}: unsupported file type {suffix or '(no extension)'}; modelport reads "
            "Keras .h5/.hdf5 and .keras files"
        )
    raise ModelFileError(
        f"{path}: not an HDF5 or .keras file (unknown header {head[:8]!r}); the file is "
        "corrupt or of another kind; re-download or re-save it"
    )
