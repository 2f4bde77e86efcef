"""Write artifacts so that a final name only ever holds a complete artifact.

Each artifact is written to a hidden temporary sibling, or built and checked in a hidden
staging directory (both named ``.NAME.partial-XXXX``), and renamed into place when complete;
a killed run leaves only such siblings, which the next run in the same directory removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "staging_dir", "publish", "remove", "clean_partials", "sha256_of",
           "size_of", "append_line"]

PARTIAL_MARK = ".partial-"


@contextlib.contextmanager
def atomic_path(dest: Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``dest``; on success move it to ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{dest.name}{PARTIAL_MARK}"
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=dest.parent))
        shutil.rmtree(tmp)  # writers such as tf.saved_model.save create it themselves
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=dest.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"writer produced nothing at {tmp}")
        publish(tmp, dest)
    finally:
        remove(tmp)


def staging_dir(directory: Path, name: str) -> Path:
    """A new hidden directory inside ``directory`` to build ``name`` in before it is
    checked and published (``.NAME.partial-XXXX``; ``clean_partials`` removes it after a
    kill)."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{name}{PARTIAL_MARK}", dir=directory))


def publish(src: Path, dest: Path) -> None:
    """Move the complete file or directory ``src`` to ``dest`` (same filesystem), replacing
    what ``dest`` held; ``dest`` never names a half-written artifact."""
    src, dest = Path(src), Path(dest)
    _fsync(src)
    if src.is_dir() or dest.is_dir():
        # a directory cannot be replaced atomically: move the old one aside first
        old = None
        if dest.exists():
            old = dest.parent / f".{dest.name}{PARTIAL_MARK}old-{os.getpid()}"
            os.replace(dest, old)
        os.replace(src, dest)
        if old is not None:
            remove(old)
    else:
        os.replace(src, dest)


def remove(path: Path) -> None:
    """Delete a file or a directory tree if it exists."""
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for f in files:
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())


def clean_partials(directory: Path) -> list[Path]:
    """Remove leftovers of killed runs (``.NAME.partial-*``) in ``directory``."""
    removed = []
    d = Path(directory)
    if not d.is_dir():
        return removed
    for p in d.iterdir():
        if p.name.startswith(".") and PARTIAL_MARK in p.name:
            remove(p)
            removed.append(p)
    return removed


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a directory's files (relative names and contents, sorted)."""
    h = hashlib.sha256()
    p = Path(path)
    files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())
    for f in files:
        if p.is_dir():
            h.update(str(f.relative_to(p)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def size_of(path: Path) -> int:
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(x.stat().st_size for x in p.rglob("*") if x.is_file())


def append_line(path: Path, line: str) -> None:
    """Append one line to a journal file so that readers see it whole or not at all.

    The line goes out in a single ``write`` on an ``O_APPEND`` descriptor (the kernel
    appends it in one piece; a kill cannot cut a write to a regular file in two) and is
    flushed to disk. Should an earlier line have been cut (the machine lost power), it is
    closed first, so only that line is lost.
    """
    data = line.rstrip("\n").encode("utf-8") + b"\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        if end and os.pread(fd, 1, end - 1) != b"\n":
            data = b"\n" + data
        while data:  # a regular file takes it in one write unless the disk is full
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)
