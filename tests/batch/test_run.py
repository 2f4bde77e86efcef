"""Batches for real: worker processes converting small models built by code, a worker
killed while converting (replaced, the rest goes on), bad inputs as failed rows, the
journal, artifacts identical to a one-model run, and a whole batch killed with SIGKILL and
resumed."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelport import converters
from modelport.cli import main
from modelport.core.atomic import PARTIAL_MARK
from tests.models import dense_model
from tests.paths import REPO

# the user's custom-objects file whose layer kills the process that builds it, as native
# code crashing (a segfault) or the kernel's OOM killer would
CRASH_OBJECTS = '''import os
import signal

import keras


class Crash(keras.layers.Layer):
    def __init__(self, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
'''


def _crash_model(path: Path) -> Path:
    """A model with a registered ``tests>Crash`` layer (registered only while saving)."""
    import keras

    class Crash(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    registered = keras.saving.register_keras_serializable(package="tests")(Crash)
    try:
        inp = keras.Input((3,), name="x")
        keras.Model(inp, keras.layers.Dense(2)(registered()(inp))).save(path)
    finally:
        keras.saving.get_custom_objects().pop("tests>Crash", None)
    return path


def _rows(journal: Path) -> list[dict]:
    return [json.loads(line) for line in journal.read_text().splitlines()]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _workers(log: Path) -> list[int]:
    """The worker pids ``batch.log`` names, one per model handed out."""
    return [int(line.rsplit("worker ", 1)[1].rstrip(")"))
            for line in log.read_text().splitlines() if line.startswith("== ")]


@pytest.fixture(scope="module")
def batch(tmp_path_factory, fixture_models):
    root = tmp_path_factory.mktemp("batch")
    zoo = root / "zoo"
    (zoo / "sub").mkdir(parents=True)
    _crash_model(zoo / "0crash.keras")  # first: its worker dies while others wait
    dense_model(zoo / "a.h5", 4, 6, 3, seed=1)
    dense_model(zoo / "b.keras", 5, 4, 2, seed=2, input_name="feats", output_name="probs")
    dense_model(zoo / "sub" / "a.h5", 3, 5, 2, seed=3)  # same stem as zoo/a.h5
    needs = fixture_models.get("custom_k3")  # needs its ScaledTanh class
    shutil.copy(needs.path, zoo / needs.path.name)
    (zoo / "p.h5").write_bytes(b"\x80\x04\x95\x05\x00K\x01.")  # a pickle
    objects = root / "crash_objects.py"
    objects.write_text(CRASH_OBJECTS)
    out = root / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["convert", str(zoo), str(root / "missing.h5"), "--out", str(out),
                     "--jobs", "2", "--custom-objects", str(objects), "--validate"])
    rows = {Path(r["path"]).relative_to(root).as_posix(): r for r in _rows(out / "batch.jsonl")}
    return {"root": root, "zoo": zoo, "out": out, "objects": objects, "code": code,
            "rows": rows, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


GOOD = ("zoo/a.h5", "zoo/b.keras", "zoo/sub/a.h5")


def test_every_input_is_one_journal_line(batch):
    assert sorted(batch["rows"]) == sorted(
        [*GOOD, "zoo/0crash.keras", "zoo/custom_k3.keras", "zoo/p.h5", "missing.h5"])
    assert len(_rows(batch["out"] / "batch.jsonl")) == 7


def test_good_models_convert_to_every_format_with_their_check(batch):
    for rel in GOOD:
        row = batch["rows"][rel]
        assert row["status"] == "ok" and row["exit_code"] == 0 and row["error"] == "", row
        assert row["sha256"] == _sha(batch["root"] / rel)
        assert set(row["formats"]) == set(converters.names())
        for fmt, entry in row["formats"].items():
            assert entry["status"] == "ok" and entry["check"] == "passed", (rel, fmt)
            assert 0 <= entry["max_abs_error"] < 1e-4 and entry["cosine"] > 0.9999
            assert (batch["out"] / row["out"] / entry["path"]).exists()
        assert row["seconds"] > 0 and row["finished"].endswith("Z")
        # --validate: each model validated as `validate` would, its report beside it
        assert row["validated"] is True
        report = json.loads((batch["out"] / row["out"] / f"{Path(rel).stem}.validation.json")
                            .read_text())
        assert report["passed"] is True and len(report["results"]) == 4
    dirs = {batch["rows"][rel]["out"] for rel in GOOD}
    assert len(dirs) == 3 and "b" in dirs  # the two a.h5 got distinct directories


def test_a_killed_worker_costs_only_its_model_and_is_replaced(batch):
    row = batch["rows"]["zoo/0crash.keras"]
    assert row["status"] == "crashed" and row["exit_code"] == 3
    assert "killed by SIGKILL" in row["error"] and "while converting" in row["error"]
    pids = _workers(batch["out"] / "batch.log")
    assert len(pids) == 5  # every model that reached a worker
    assert len(set(pids)) == 3, "the dead worker was not replaced"


def test_bad_inputs_are_failed_rows_with_their_reason(batch):
    rows = batch["rows"]
    assert rows["missing.h5"]["status"] == "failed" and \
        "no such file" in rows["missing.h5"]["error"]
    assert "pickle" in rows["zoo/p.h5"]["error"]
    assert rows["zoo/p.h5"]["sha256"] == _sha(batch["zoo"] / "p.h5")
    needs = rows["zoo/custom_k3.keras"]
    assert needs["exit_code"] == 2 and "ScaledTanh" in needs["error"] and \
        "--custom-objects" in needs["error"]
    for rel in ("missing.h5", "zoo/p.h5", "zoo/custom_k3.keras"):
        assert "\n" not in rows[rel]["error"] and rows[rel]["exit_code"] == 2
    # the worst per-model code: a crashed worker counts as a failed conversion
    assert batch["code"] == 3


def test_summary_table_and_one_progress_line_per_model(batch):
    progress = [l for l in batch["stderr"].splitlines() if l.startswith("[")]
    assert len(progress) == 7 and progress[-1].startswith("[7/7]")
    table = batch["stdout"].splitlines()
    assert table[0].split()[:6] == ["model", "status", *converters.names()]
    for rel, row in batch["rows"].items():
        line = next(l for l in table if l.startswith(str(batch["root"] / rel) + " "))
        assert line.split()[1].rstrip(",") == row["status"]
        assert ("validated" in line.split()[2]) == (row["status"] == "ok")


def test_a_batch_model_equals_a_one_model_run(batch, tmp_path):
    single = tmp_path / "single"
    model = batch["zoo"] / "a.h5"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["convert", str(model), "--out", str(single), "--custom-objects",
                     str(batch["objects"])]) == 0
    assert not (single / "batch.jsonl").exists()  # one model keeps the single layout
    row = batch["rows"]["zoo/a.h5"]
    in_batch = batch["out"] / row["out"]
    byte_identical = converters.determinism()["byte_identical"]
    for fmt in converters.names():
        mine = in_batch / row["formats"][fmt]["path"]
        theirs = converters.artifact_path(single, "a", fmt)
        assert theirs.exists() and mine.name == theirs.name
        if fmt in byte_identical:
            assert _sha(mine) == _sha(theirs), f"{fmt} differs from a one-model run"
        else:
            a, b = converters.get(fmt).describe(mine), converters.get(fmt).describe(theirs)
            assert [t.to_dict() for t in a.inputs] == [t.to_dict() for t in b.inputs]
            assert [t.to_dict() for t in a.outputs] == [t.to_dict() for t in b.outputs]
            assert [(n.name, n.op, n.inputs) for n in a.nodes] == \
                [(n.name, n.op, n.inputs) for n in b.nodes], fmt


# ----------------------------------------------------------------------------- kill and resume


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "modelport", "convert", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie is dead too
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    return True


def _state(out: Path, name: str) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / name).iterdir()}


def test_a_batch_killed_with_sigkill_resumes_without_redoing_or_leftovers(tmp_path):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    for i in range(5):
        dense_model(zoo / f"m{i}.h5", 4 + i, 6, 3, seed=10 + i)
    out = tmp_path / "out"
    journal = out / "batch.jsonl"
    proc = _cli(str(zoo), "--out", str(out), "--jobs", "2")
    try:
        deadline = time.monotonic() + 300
        # kill once a model is done and another is half-written (a staging directory);
        # the batch is frozen while we look, so what we saw is what the kill leaves
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no model finished in 300 s"
            if journal.exists() and journal.read_text().strip():
                os.killpg(proc.pid, signal.SIGSTOP)
                if any(PARTIAL_MARK in p.name for p in out.glob("*/*")):
                    break
                os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: its workers must follow it
        proc.wait(30)
        workers = set(_workers(out / "batch.log"))
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers), "workers outlived the killed batch"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    first = _rows(journal)
    assert 1 <= len(first) < 5
    # finished = the batch stamped its manifest; a model can finish after the last line
    # the parent wrote, so the journal lists some of them, never one that is not
    done = {p.parent.name for p in out.glob("*/*.manifest.json")
            if "batch" in json.loads(p.read_text())}
    assert {r["out"] for r in first} <= done and len(done) < 5
    before = {name: _state(out, name) for name in done}
    assert any(PARTIAL_MARK in p.name for p in out.rglob("*")), "the kill left nothing to clean"

    again = _cli(str(zoo), "--out", str(out), "--jobs", "2")
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr
    second = _rows(journal)[len(first):]
    assert sorted(Path(r["path"]).name for r in second) == [f"m{i}.h5" for i in range(5)]
    for r in second:
        assert r["status"] == ("skipped" if r["out"] in done else "ok"), r
    for name, state in before.items():
        assert _state(out, name) == state, f"{name} was redone"
    leftovers = [p for p in out.rglob("*") if PARTIAL_MARK in p.name]
    assert leftovers == []
    for i in range(5):
        files = {p.name for p in (out / f"m{i}").iterdir()}
        assert {converters.artifact_path(".", f"m{i}", f).name for f in converters.names()} \
            | {f"m{i}.manifest.json"} == files

    # a third run finds everything done: no worker is even started
    log_size = (out / "batch.log").stat().st_size
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["convert", str(zoo), "--out", str(out), "--jobs", "2"]) == 0
    assert [r["status"] for r in _rows(journal)[len(first) + 5:]] == ["skipped"] * 5
    assert (out / "batch.log").stat().st_size == log_size
