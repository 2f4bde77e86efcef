"""Small text helpers shared by every layer: one-line errors, tables, shapes, bytes."""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["one_line", "table", "fmt_shape", "to_text"]


def one_line(e: BaseException, limit: int = 300, with_type: bool = True,
             whole: bool = False) -> str:
    """``"ValueError: first line of the message"``, cut at ``limit`` characters.

    Native diagnostics (the MLIR converter's) put the useful line last, marked
    ``error:``; that line is preferred when present. ``whole`` keeps every line, joined.
    """
    lines = [l.strip() for l in str(e).strip().splitlines() if l.strip()]
    marked = [l for l in lines if "error:" in l]
    if whole:
        msg = " ".join(" ".join(lines).split())[:limit]
    else:
        msg = (marked[-1] if marked else lines[0] if lines else "")[:limit]
    return f"{type(e).__name__}: {msg}" if with_type else (msg or type(e).__name__)


def table(rows: Sequence[Sequence[str]], indent: str = "", header: bool = False) -> list[str]:
    """Left-aligned columns separated by two spaces; ``header`` underlines the first row."""
    if not rows:
        return []
    ncols = max(len(r) for r in rows)
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(ncols)]
    lines = [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    if header:
        lines.insert(1, indent + "  ".join("-" * w for w in widths))
    return lines


def fmt_shape(shape: Any, unknown: str = "?", named: bool = True) -> str:
    """``[?,224,224,3]``; ``unknown`` for a shape that is not known at all. Named
    dimensions (ONNX's ``batch``) are shown by name, or as ``?`` unless ``named``."""
    if shape is None:
        return unknown

    def dim(d: Any) -> str:
        if isinstance(d, bool) or d is None:
            return "?"
        if isinstance(d, int):
            return str(d) if d >= 0 else "?"
        return str(d) if named and isinstance(d, str) else "?"

    return "[" + ",".join(dim(d) for d in shape) + "]"


def to_text(value: Any) -> str:
    """HDF5 attributes, flatbuffer names and the like as ``str`` (``""`` for ``None``)."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)
