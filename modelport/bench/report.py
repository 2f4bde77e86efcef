"""What ``bench`` measured: one ``BenchResult`` per artifact (and the Keras model), the
run's settings and versions, as a table and as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelport.core.atomic import atomic_path
from modelport.core.text import table

__all__ = ["BenchResult", "BenchReport", "KERAS"]

KERAS = "keras"  # the format column of the Keras model's row


@dataclass
class BenchResult:
    """One artifact measured in its own child process (``pid``)."""

    path: str
    format: str
    ok: bool = True
    error: str = ""
    size_bytes: int = 0
    batch: int = 0
    runtime: str = ""  # "onnxruntime 1.23.2"
    threads: int = 0
    pid: int = 0
    import_s: float | None = None  # importing the runtime (and the format's readers)
    load_s: float | None = None  # opening the artifact through its runner, imports done
    first_s: float | None = None  # the first inference after loading
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    throughput: float | None = None  # samples per second over the timed runs
    runtime_rss_mb: float | None = None  # resident memory once the runtime is imported
    peak_rss_mb: float | None = None  # the child's high-water mark (VmHWM)

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}


@dataclass
class BenchReport:
    results: list[BenchResult]
    threads: int
    runs: int
    warmup: int
    batch: int
    inputs: dict[str, Any]  # per input: shape, dtype, where the values came from
    versions: dict[str, str]
    parent_pid: int
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when every artifact was measured; 2 when one could not be run."""
        return 0 if self.ok else 2

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "threads": self.threads, "runs": self.runs,
                "warmup": self.warmup, "batch": self.batch, "inputs": self.inputs,
                "versions": self.versions, "parent_pid": self.parent_pid,
                "results": [r.to_dict() for r in self.results], "warnings": self.warnings}

    def write_json(self, path: str | Path) -> Path:
        dest = Path(path)
        with atomic_path(dest) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return dest

    def text(self) -> str:
        keras = next((r for r in self.results if r.format == KERAS and r.ok), None)
        rows = [("artifact", "format", "size", "load", "first", "p50", "p90", "p99",
                 "samples/s", "peak RSS") + (("vs keras",) if keras else ())]
        failed = []
        names = [Path(r.path).name for r in self.results]
        # the same file name from two directories: show the directory too
        shown = {r.path: (str(Path(Path(r.path).parent.name) / n) if names.count(n) > 1 else n)
                 for r, n in zip(self.results, names)}
        for r in self.results:
            if not r.ok:
                rows.append((shown[r.path], r.format, _size(r.size_bytes), "FAILED"))
                failed.append(f"{r.path}: {r.error}")
                continue
            speed = (f"{keras.p50_ms / r.p50_ms:.2f}x",) if keras and r.p50_ms else ()
            rows.append((shown[r.path], r.format, _size(r.size_bytes), _ms(r.load_s),
                         _ms(r.first_s), _ms(r.p50_ms, 1e-3), _ms(r.p90_ms, 1e-3),
                         _ms(r.p99_ms, 1e-3), f"{r.throughput:,.0f}",
                         f"{r.peak_rss_mb:,.0f} MB") + speed)
        runtimes = sorted({r.runtime for r in self.results if r.runtime})
        lines = table(rows, header=True)
        lines.append(f"each artifact in its own process; batch {self.batch}, {self.warmup} "
                     f"warm-up + {self.runs} timed runs; {self.threads} intra-op thread(s) "
                     "per runtime; latency = one call on the batch"
                     + ("; vs keras = Keras p50 / p50" if keras else ""))
        lines.append("runtimes: " + "; ".join(runtimes))
        lines += [f"FAILED {f}" for f in failed]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _ms(seconds: float | None, scale: float = 1.0) -> str:
    """``seconds * scale`` seconds as milliseconds (``scale`` 1e-3 for values in ms)."""
    if seconds is None:
        return "-"
    ms = seconds * scale * 1e3
    return f"{ms:.3f} ms" if ms < 10 else f"{ms:,.1f} ms"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
