"""``modelport convert A.h5 B.keras DIR/ --out OUT --jobs N [--shard K/N]``: a batch, shown
as one progress bar on a terminal (one plain line per finished model when piped), then
the summary table."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from modelport.core.errors import UserInputError

__all__ = ["is_batch", "run", "Display"]


def is_batch(args: argparse.Namespace) -> bool:
    """Several models, a directory, ``--jobs`` or ``--shard``: a batch, each model in its
    own directory under OUT. One model file alone keeps ``convert``'s single layout."""
    return (len(args.models) > 1 or any(Path(m).is_dir() for m in args.models)
            or args.jobs is not None or args.shard is not None)


class Display:
    """Progress of a batch on ``stream``: a bar (done/failed/running, elapsed, ETA) on a
    terminal, with a line for each model that did not convert; one line per finished
    model otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.bar: Any = None

    def __call__(self, tally: Any, row: Any) -> None:
        if row is not None and (not self.tty or row.status not in ("ok", "skipped")):
            self._write(_line(tally, row))
        if not self.tty:
            return
        if self.bar is None:
            if row is not None:
                return  # models settled before the workers start: counted in `initial`
            from tqdm import tqdm

            # started only once the skipped ones are counted, so they do not skew the ETA
            self.bar = tqdm(total=tally.total, initial=tally.finished, file=self.stream,
                            unit="model", desc="converting", dynamic_ncols=True)
        if tally.finished > self.bar.n:
            self.bar.update(tally.finished - self.bar.n)
        self.bar.set_postfix_str(f"{tally.failed} failed, {tally.running} running",
                                 refresh=False)
        self.bar.refresh()

    def _write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _line(tally: Any, row: Any) -> str:
    status = row.status if row.status in ("ok", "skipped") else row.status.upper()
    head = f"[{tally.finished:>{len(str(tally.total))}}/{tally.total}] {status:<8} {row.path}"
    if row.status in ("ok", "skipped"):
        return f"{head} -> {row.out}/ ({row.seconds:.1f}s)"
    return f"{head}: {row.error.removeprefix(f'{row.path}: ')}"


def run(args: argparse.Namespace, options: dict[str, Any],
        validate: dict[str, Any] | None) -> int:
    """Run the batch ``args`` describes with ``convert``'s keyword arguments ``options``."""
    from modelport.batch import STATUSES, run_batch

    if getattr(args, "json", None) or getattr(args, "save_inputs", None):
        raise UserInputError("--json and --save-inputs name one file, which cannot hold a "
                             "batch: with --validate each model's report is written to "
                             "OUT/<name>/<stem>.validation.json")
    jobs = 1 if args.jobs is None else args.jobs
    print(f"converting a batch -> {args.out}/ with {jobs} worker(s)"
          + (f", shard {args.shard}" if args.shard else ""), file=sys.stderr)
    display = Display()
    try:
        result = run_batch(args.models, args.out, options=options, jobs=jobs,
                           shard=args.shard, validate=validate, progress=display,
                           log_level=logging.DEBUG if getattr(args, "debug", False)
                           else logging.WARNING)
    finally:
        display.close()
    if result.rows:
        print("\n".join(result.table()))
    counts = {s: sum(r.status == s for r in result.rows) for s in STATUSES}
    what = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no model in it"
    print(f"{len(result.rows)} model(s)" + (f" in shard {result.shard}" if result.shard else "")
          + f": {what}; journal: {result.journal}", file=sys.stderr)
    return result.exit_code
