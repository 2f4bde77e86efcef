"""One row per model of a batch: what ``OUT/batch.jsonl`` holds (one JSON line each) and
what the summary table shows."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from modelport.core.atomic import append_line
from modelport.core.errors import EXIT_CONVERSION, EXIT_MISMATCH, EXIT_OK
from modelport.core.manifest import Manifest
from modelport.core.records import ArtifactRecord
from modelport.core.text import table

__all__ = ["Row", "row_from_manifest", "failed_row", "crashed_row", "append_row", "read_rows",
           "format_rows", "batch_exit_code", "STATUSES"]

# ok: converted (and checked/validated) now; skipped: a previous run already did it
# (resume); mismatch: an artifact differs from the Keras model (exit 1); failed: the input
# is unusable (2) or a conversion failed (3); crashed: the worker died while on it (3)
STATUSES = ("ok", "skipped", "mismatch", "failed", "crashed")


@dataclass
class Row:
    """One model's outcome (a line of ``batch.jsonl``).

    ``formats`` maps each format to ``{"status": "ok"|"unchecked"|"unverified"|"failed",
    "path", "route", "check", "max_abs_error", "cosine", "seconds", "error"}``; ``path`` is
    relative to the model's output directory ``out`` (itself relative to OUT).
    """

    path: str
    out: str
    sha256: str = ""
    status: str = "ok"
    exit_code: int = EXIT_OK
    formats: dict[str, dict[str, Any]] = field(default_factory=dict)
    validated: bool | None = None  # None: --validate was not asked for
    seconds: float = 0.0
    error: str = ""
    shard: str = ""
    finished: str = ""  # UTC, ISO 8601

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Row":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def _format_entry(a: ArtifactRecord) -> dict[str, Any]:
    check = a.check or {}
    if not a.ok:
        status = "unverified" if a.unverified else "failed"
    else:
        status = "unchecked" if check.get("status") == "unchecked" else "ok"
    return {"status": status, "path": a.path, "route": a.route,
            "check": check.get("status", ""), "max_abs_error": check.get("max_abs_error"),
            "cosine": check.get("cosine"), "seconds": round(a.seconds, 3), "error": a.error}


def _status(code: int) -> str:
    return "ok" if code == EXIT_OK else "mismatch" if code == EXIT_MISMATCH else "failed"


def row_from_manifest(manifest: Manifest, path: str, out: str, code: int,
                      seconds: float = 0.0, skipped: bool = False,
                      validated: bool | None = None, error: str = "") -> Row:
    """The row of a model ``convert`` wrote (``code``: what a single ``convert`` of it
    would exit with)."""
    formats = {a.format: _format_entry(a) for a in manifest.artifacts}
    problems = [f"{a.format}: {a.error}" for a in manifest.artifacts if not a.ok]
    return Row(path=path, out=out, sha256=str(manifest.source.get("sha256", "")),
               status="skipped" if skipped else _status(code), exit_code=code,
               formats=formats, validated=validated, seconds=seconds,
               error=error or "; ".join(problems))


def failed_row(path: str, out: str, code: int, error: str, sha256: str = "",
               seconds: float = 0.0) -> Row:
    """A model that produced no manifest: unusable input, or modelport failed on it."""
    return Row(path=path, out=out, sha256=sha256, status=_status(code), exit_code=code,
               seconds=seconds, error=error)


def crashed_row(path: str, out: str, error: str, sha256: str = "",
                seconds: float = 0.0) -> Row:
    """A model whose worker process died (segfault, SIGKILL, out of memory)."""
    return Row(path=path, out=out, sha256=sha256, status="crashed",
               exit_code=EXIT_CONVERSION, seconds=seconds, error=error)


def append_row(journal: Path, row: Row) -> None:
    """Stamp the row's finishing time and append it to ``batch.jsonl`` (whole or not at
    all, flushed: a killed batch keeps every line it wrote)."""
    row.finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    append_line(journal, json.dumps(row.to_dict(), default=str))


def read_rows(paths: Iterable[str | Path]) -> Iterator[Row]:
    """The rows of one or more ``batch.jsonl`` files, in order (a line cut by a power
    loss is skipped)."""
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if isinstance(d, dict) and "path" in d:
                    yield Row.from_dict(d)


def batch_exit_code(rows: Iterable[Row]) -> int:
    """0 when every model converted (and passed its check), else the worst per-model
    code: 3 (a conversion failed or a worker crashed) over 2 (unusable input) over 1 (an
    artifact differs)."""
    return max((r.exit_code for r in rows), default=EXIT_OK)


def _num(x: Any) -> str:
    return "-" if not isinstance(x, (int, float)) or math.isnan(x) else f"{x:.2g}"


def format_rows(rows: list[Row], formats: Iterable[str]) -> list[str]:
    """The summary table: model, status, per-format status, the check's worst figures,
    seconds and the error."""
    formats = list(formats)
    head = ["model", "status", *formats, "max abs err", "min cosine", "seconds", "error"]
    lines = [head]
    for r in rows:
        errs = [f["max_abs_error"] for f in r.formats.values()
                if isinstance(f.get("max_abs_error"), (int, float))]
        cos = [f["cosine"] for f in r.formats.values()
               if isinstance(f.get("cosine"), (int, float))]
        cells = [r.formats[f]["status"] if f in r.formats else "-" for f in formats]
        status = r.status + ("" if r.validated is None else
                             ", validated" if r.validated else ", validation FAILED")
        error = r.error.removeprefix(f"{r.path}: ")  # the row names the model already
        lines.append([r.path, status, *cells, _num(max(errs) if errs else None),
                      f"{min(cos):.6f}" if cos else "-", f"{r.seconds:.1f}",
                      error[:100] + ("..." if len(error) > 100 else "")])
    return table(lines, header=True)
