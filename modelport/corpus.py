"""The corpus tier: every file in a directory through load + convert(all) + validate.

``python -m modelport.corpus CORPUS_DIR REPORT.md`` writes one Markdown row per
file (file, Keras version, loader, formats ported, formats validated, reason) and exits 0
unless the tool itself crashed: a file that cannot be ported is a row, not a failure. A
refused file's reason is modelport's own one-line message; an unexpected exception in
modelport is reported as such, so the table never hides a bug behind "unsupported".
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport import converters
from modelport.core.errors import ModelportError
from modelport.core.text import one_line

__all__ = ["Row", "run_file", "run_corpus", "format_table", "main"]

log = logging.getLogger(__name__)

_SKIP_NAMES = {"MANIFEST.tsv", "README.md", "README", "README.txt"}


@dataclass
class Row:
    """One corpus file's outcome."""

    file: str
    keras_version: str = "?"
    loaded_with: str = ""  # "tf_keras", "keras3" or "" (not loaded)
    ported: list[str] = field(default_factory=list)
    validated: list[str] = field(default_factory=list)
    reason: str = ""
    refused: bool = False  # modelport refused the file with a ModelportError
    crashed: bool = False  # an exception that is not a ModelportError (a modelport bug)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    source: Any = field(default=None, repr=False)  # the SourceModel, when kept

    @property
    def ok(self) -> bool:
        every = set(converters.names())
        return bool(self.loaded_with) and set(self.ported) >= every \
            and set(self.validated) >= every


def _manifest_versions(corpus: Path) -> dict[str, str]:
    path = corpus / "MANIFEST.tsv"
    if not path.is_file():
        return {}
    with path.open(newline="") as fh:
        rows = csv.DictReader(fh, delimiter="\t")
        return {r.get("file", ""): r.get("keras_version", "") for r in rows}


def _one_line(e: BaseException) -> str:
    # the table cell keeps a whole (multi-line) refusal on one line
    return one_line(e, limit=100000, with_type=not isinstance(e, ModelportError), whole=True)


def _summary(source: Any) -> list[str]:
    notes = []
    upgrades = [w.split(":")[0].replace("upgrade ", "") for w in source.warnings
                if w.startswith("upgrade ")]
    if upgrades:
        notes.append("upgraded: " + ", ".join(upgrades))
    recovered = [l["layer"] for l in source.lambdas if l.get("rebuilt_from") == "recovered"]
    if recovered:
        notes.append(f"{len(recovered)} Lambda(s) recovered from bytecode")
    if any(w.startswith("backend:") for w in source.warnings):
        notes.append("Theano assumed (dim_ordering='th')")
    if any(w.startswith("stochastic:") for w in source.warnings):
        notes.append("stochastic (a Lambda draws random numbers)")
    if any("saved on Windows" in w for w in source.warnings):
        notes.append("Lambda bytecode saved on Windows, restored")
    return notes


def _load(row: Row, path: Path) -> Any:
    from modelport.loading.modelfile import read_model_file
    from modelport.loading.source import load

    try:
        raw = read_model_file(path)
        row.keras_version = raw.keras_version or row.keras_version
        if raw.backend and raw.backend != "tensorflow":
            row.keras_version += f" ({raw.backend})"
    except ModelportError:
        pass  # load() raises the same error with its guidance
    return load(path)


def _convert(row: Row, source: Any, out: Path) -> list[str]:
    from modelport.conversion import convert

    manifest = convert(source, out, formats="all")
    row.ported = [a.format for a in manifest.artifacts if a.ok]
    return [f"{a.format}: {a.error}" for a in manifest.artifacts if not a.ok]


def _validate(row: Row, source: Any, out: Path) -> list[str]:
    from modelport.validators import validate

    report = validate(source, out)
    row.validated = [r.format for r in report.results if r.passed]
    return [f"{r.format}: {r.diagnosis or 'mismatch'}" for r in report.results if not r.passed]


def run_file(path: Path, work: Path, keras_version: str = "?", keep_source: bool = False) -> Row:
    """Load, convert and validate one file; every outcome becomes a ``Row``."""
    row = Row(path.name, keras_version or "?")
    start = time.monotonic()
    stage = "load"
    try:
        source = _load(row, path)
        row.loaded_with = source.framework
        row.notes = _summary(source)
        stage = "convert"
        problems = _convert(row, source, work)
        stage = "validate"
        problems += _validate(row, source, work) if row.ported else []
        row.reason = "; ".join(problems) if problems else "; ".join(row.notes) or "ok"
        if keep_source:
            row.source = source
    except ModelportError as e:
        row.refused = stage == "load"
        # the table already names the file
        row.reason = _one_line(e).replace(f"{path}: ", "", 1)
    except Exception as e:  # a modelport bug: report it as one, keep going
        log.debug("%s crashed during %s", path.name, stage, exc_info=True)
        row.crashed = True
        row.reason = f"modelport crashed during {stage}: {_one_line(e)}"
    row.seconds = time.monotonic() - start
    log.info("%s: %s (%.1fs)", path.name, "ok" if row.ok else row.reason[:200], row.seconds)
    return row


def corpus_files(corpus: Path) -> list[Path]:
    """Every file to try: all regular files except the manifest and READMEs."""
    return sorted(p for p in corpus.iterdir() if p.is_file() and p.name not in _SKIP_NAMES)


def run_corpus(corpus: str | Path, work: str | Path | None = None,
               keep_sources: bool = False) -> list[Row]:
    """Run every file in ``corpus``; artifacts go to ``work`` (a temporary dir if None)."""
    corpus = Path(corpus)
    versions = _manifest_versions(corpus)
    tmp = None if work is not None else tempfile.mkdtemp(prefix="modelport-corpus-")
    root = Path(work or tmp)
    try:
        # a directory per file name, not per stem: model.h5 and model.keras may both be there
        return [run_file(p, root / p.name.replace(".", "_"), versions.get(p.name, "?"),
                         keep_sources) for p in corpus_files(corpus)]
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _formats(names: list[str], loaded: bool) -> str:
    if not loaded:
        return "-"
    if set(names) >= set(converters.names()):
        return "all 4"
    return ", ".join(names) or "none"


def format_table(rows: list[Row]) -> str:
    """The Markdown report: a summary line and one row per file."""
    ok = sum(r.ok for r in rows)
    refused = sum(r.refused for r in rows)
    lines = [f"{ok} of {len(rows)} files load, port to all four formats and validate; "
             f"{refused} refused with a reason; {sum(r.crashed for r in rows)} crashed.", "",
             "| file | Keras | loaded with | ported | validated | reason |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(c) for c in (
            r.file, r.keras_version, r.loaded_with or "refused",
            _formats(r.ported, bool(r.loaded_with)), _formats(r.validated, bool(r.loaded_with)),
            r.reason)) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelport.corpus",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="directory of model files")
    parser.add_argument("report", type=Path, help="Markdown report to write")
    parser.add_argument("--work", type=Path, help="keep the artifacts here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("modelport.loading", "modelport.conversion", "modelport.validators", "absl",
                  "tensorflow", "tf2onnx", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.corpus.is_dir():
        log.error("%s: not a directory", args.corpus)
        return 2
    rows = run_corpus(args.corpus, args.work)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(format_table(rows))
    log.info("wrote %s", args.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
