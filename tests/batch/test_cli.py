"""The batch's command line: when ``convert`` makes a batch, its display, and a parent
process that settles what it can without TensorFlow."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from modelport.batch import Tally
from modelport.batch.rows import Row, failed_row
from modelport.commands.batch import Display, is_batch
from tests.commands.test_cli_startup import run_blocked


def _args(*models, jobs=None, shard=None):
    return argparse.Namespace(models=list(models), jobs=jobs, shard=shard)


def test_one_model_file_keeps_the_single_layout(tmp_path):
    (tmp_path / "d").mkdir()
    assert not is_batch(_args("a.h5"))
    assert not is_batch(_args(str(tmp_path / "missing.h5")))
    assert is_batch(_args("a.h5", "b.keras"))
    assert is_batch(_args(str(tmp_path / "d")))
    assert is_batch(_args("a.h5", jobs=2)) and is_batch(_args("a.h5", shard="1/2"))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_piped_display_prints_one_line_per_finished_model():
    out = io.StringIO()
    show = Display(out)
    tally = Tally(total=2, finished=1)
    show(tally, Row("zoo/a.h5", "a", seconds=2.0))
    show(tally, None)  # starts and ticks print nothing when piped
    tally.finished, tally.failed = 2, 1
    show(tally, failed_row("zoo/b.h5", "b", 2, "zoo/b.h5: no such file; check the path"))
    show.close()
    assert out.getvalue().splitlines() == [
        "[1/2] ok       zoo/a.h5 -> a/ (2.0s)",
        "[2/2] FAILED   zoo/b.h5: no such file; check the path"]


def test_terminal_display_is_one_bar_with_failed_running_and_eta():
    out = _Terminal()
    show = Display(out)
    tally = Tally(total=4)
    tally.finished = tally.skipped = 1
    show(tally, Row("zoo/s.h5", "s", status="skipped"))  # settled before the workers start
    assert out.getvalue() == ""
    tally.running = 2
    show(tally, None)
    tally.finished, tally.failed, tally.running = 2, 1, 1
    show(tally, failed_row("zoo/b.h5", "b", 3, "tflite: every route failed"))
    show.close()
    text = out.getvalue()
    assert "FAILED   zoo/b.h5: tflite: every route failed" in text
    last = text.replace("\r", "\n").strip().splitlines()[-1]
    assert "2/4" in last and "1 failed, 1 running" in last
    assert "<" in last  # tqdm's elapsed<remaining


def test_the_parent_needs_no_tensorflow_for_inputs_it_can_settle(tmp_path):
    pickle = tmp_path / "p.h5"
    pickle.write_bytes(b"\x80\x04K\x01.")
    out = tmp_path / "out"
    rc, stdout, attempts = run_blocked("convert", str(pickle), str(tmp_path / "gone.h5"),
                                       "--out", str(out), "--jobs", "2")
    assert attempts == [], f"the batch parent tried to import {attempts}"
    assert rc == 2, stdout
    rows = [json.loads(l) for l in (out / "batch.jsonl").read_text().splitlines()]
    assert [(r["path"], r["status"], r["exit_code"]) for r in rows] == [
        (str(pickle), "failed", 2), (str(tmp_path / "gone.h5"), "failed", 2)]
    assert "pickle" in rows[0]["error"] and "no such file" in rows[1]["error"]
    assert "p.h5" in stdout and "gone.h5" in stdout  # the summary table


@pytest.mark.parametrize("extra, message", [
    (["--shard", "0/2"], "--shard '0/2': expected K/N"),
    (["--jobs", "0"], "--jobs 0: give at least 1"),
    (["--validate", "--json", "r.json"], "cannot hold a batch"),
    (["--to", "caffe"], "unknown format 'caffe'"),
])
def test_bad_batch_options_exit_2_with_one_line(tmp_path, capsys, extra, message):
    from modelport.cli import main

    assert main(["convert", "a.h5", "b.h5", "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("modelport: error: ") and message in err[-1]
    assert not (tmp_path / "o" / "batch.jsonl").exists()  # refused before any model
