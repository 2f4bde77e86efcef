"""The journal (``batch.jsonl``), the summary table, the exit code and the resume rule,
over hand-written manifests (no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelport.batch.resume import finished, fingerprint, stamp, unstamp
from modelport.batch.rows import (Row, append_row, batch_exit_code, crashed_row, failed_row,
                                  format_rows, read_rows, row_from_manifest)
from modelport.core.atomic import append_line
from modelport.core.manifest import read_manifest, tool_versions


def test_journal_lines_are_whole_even_after_a_cut_line(tmp_path):
    journal = tmp_path / "batch.jsonl"
    append_row(journal, failed_row("a.h5", "a", 2, "a.h5: no such file"))
    with open(journal, "ab") as fh:  # a line cut by a power loss
        fh.write(b'{"path": "b.h5", "stat')
    append_row(journal, crashed_row("c.h5", "c", "killed by SIGKILL", sha256="ab"))
    lines = journal.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["path"] == "c.h5"
    rows = list(read_rows([journal]))
    assert [(r.path, r.status, r.exit_code) for r in rows] == [("a.h5", "failed", 2),
                                                              ("c.h5", "crashed", 3)]
    assert rows[0].finished.endswith("Z") and rows[1].sha256 == "ab"


def test_append_line_needs_no_newline_in_the_text(tmp_path):
    path = tmp_path / "j"
    append_line(path, "one")
    append_line(path, "two\n")
    assert path.read_bytes() == b"one\ntwo\n"


def test_exit_code_is_the_worst_per_model_code():
    ok = Row("a", "a")
    assert batch_exit_code([]) == 0
    assert batch_exit_code([ok, Row("b", "b", status="skipped")]) == 0
    assert batch_exit_code([ok, Row("b", "b", status="mismatch", exit_code=1)]) == 1
    assert batch_exit_code([Row("b", "b", exit_code=1), failed_row("c", "c", 2, "bad")]) == 2
    assert batch_exit_code([failed_row("c", "c", 2, "bad"), crashed_row("d", "d", "x")]) == 3


def _manifest(out: Path, sha: str, artifacts: dict[str, bool]) -> Path:
    """A manifest as convert writes it, with artifacts ``{format: ok}``."""
    records = []
    for fmt, ok in artifacts.items():
        (out / f"m.{fmt}").write_bytes(b"artifact")
        records.append({"format": fmt, "path": f"m.{fmt}", "ok": ok, "error": "" if ok else
                        "no route's artifact matched", "route": "r", "seconds": 1.5,
                        "check": {"status": "passed" if ok else "failed",
                                  "max_abs_error": 2e-7 if ok else 0.5, "cosine": 0.99}})
    path = out / "m.manifest.json"
    path.write_text(json.dumps({"source": {"path": "m.h5", "sha256": sha}, "options": {},
                                "versions": tool_versions(), "artifacts": records}))
    return path


def test_a_finished_model_is_found_only_with_the_same_file_options_and_artifacts(tmp_path):
    key = fingerprint({"convert": {"formats": "all", "opset": 17}, "validate": None})
    path = _manifest(tmp_path, "f" * 64, {"onnx": True, "tflite": True})
    assert finished(tmp_path, "f" * 64, key) is None  # no batch stamp: not finished by a batch
    stamp(path, key, 0, None)
    assert finished(tmp_path, "f" * 64, key).artifact("onnx").path == "m.onnx"
    assert finished(tmp_path, "e" * 64, key) is None  # the file changed
    other = fingerprint({"convert": {"formats": "all", "opset": 15}, "validate": None})
    assert finished(tmp_path, "f" * 64, other) is None  # other options
    (tmp_path / "m.tflite").unlink()
    assert finished(tmp_path, "f" * 64, key) is None  # an artifact is gone
    (tmp_path / "m.tflite").write_bytes(b"artifact")
    d = json.loads(path.read_text())
    d["versions"]["tensorflow"] = "0.0"
    path.write_text(json.dumps(d))
    assert finished(tmp_path, "f" * 64, key) is None  # other tool versions
    unstamp(tmp_path)
    assert not path.exists()


def test_a_model_that_did_not_pass_is_not_finished(tmp_path):
    key = fingerprint({"convert": {}})
    stamp(_manifest(tmp_path, "a" * 64, {"onnx": True, "tflite": False}), key, 1, None)
    assert finished(tmp_path, "a" * 64, key) is None
    stamp(_manifest(tmp_path, "a" * 64, {"onnx": True}), key, 1, False)  # validation failed
    assert finished(tmp_path, "a" * 64, key) is None


def test_fingerprint_counts_the_content_of_files_options_name(tmp_path):
    objs = tmp_path / "objs.py"
    objs.write_text("X = 1\n")
    before = fingerprint({"convert": {"custom_objects": [str(objs)], "opset": 17}})
    assert before == fingerprint({"convert": {"opset": 17, "custom_objects": [str(objs)]}})
    objs.write_text("X = 2\n")
    assert fingerprint({"convert": {"custom_objects": [str(objs)], "opset": 17}}) != before


def test_rows_and_table_show_each_format_and_the_worst_check(tmp_path):
    manifest = read_manifest(_manifest(tmp_path, "c" * 64, {"onnx": True, "tflite": False}))
    row = row_from_manifest(manifest, "zoo/m.h5", "m", 1, seconds=3.0)
    assert row.status == "mismatch" and row.sha256 == "c" * 64
    assert row.formats["onnx"]["status"] == "ok" and row.formats["tflite"]["status"] == \
        "unverified"
    assert row.formats["onnx"]["max_abs_error"] == 2e-7
    assert "tflite: no route's artifact matched" in row.error
    bad = failed_row("zoo/x.h5", "x", 2, "zoo/x.h5: no such file; check the path")
    lines = format_rows([row, bad], ["savedmodel", "onnx", "tflite"])
    assert lines[0].split() == ["model", "status", "savedmodel", "onnx", "tflite", "max",
                                "abs", "err", "min", "cosine", "seconds", "error"]
    cells = lines[2].split()
    assert cells[:5] == ["zoo/m.h5", "mismatch", "-", "ok", "unverified"]
    assert cells[5:8] == ["0.5", "0.990000", "3.0"]  # worst error, worst cosine, seconds
    assert lines[3].split()[:2] == ["zoo/x.h5", "failed"] and "no such file" in lines[3]
    assert "zoo/x.h5: no such file" not in lines[3]  # the row names the model once
