"""Atomic outputs: a conversion killed with SIGKILL at any moment leaves only complete
artifacts under final names, and the next run cleans the leftovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from modelport import converters
from modelport.core.atomic import PARTIAL_MARK, atomic_path, clean_partials


def test_atomic_path_failure_leaves_nothing(tmp_path):
    dest = tmp_path / "a.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_only_when_complete(tmp_path):
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"old complete")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"new but broken")
            raise RuntimeError
    assert dest.read_bytes() == b"old complete"
    with atomic_path(dest) as tmp:
        tmp.write_bytes(b"new complete")
    assert dest.read_bytes() == b"new complete"
    d = tmp_path / "m.savedmodel"
    with atomic_path(d, directory=True) as tmp:
        tmp.mkdir()
        (tmp / "x").write_text("1")
    with atomic_path(d, directory=True) as tmp:
        tmp.mkdir()
        (tmp / "y").write_text("2")
    assert sorted(p.name for p in d.iterdir()) == ["y"]
    assert [p.name for p in tmp_path.iterdir() if PARTIAL_MARK in p.name] == []


def test_clean_partials_removes_only_leftovers(tmp_path):
    (tmp_path / f".m.onnx{PARTIAL_MARK}abc").write_text("x")
    (tmp_path / f".m.savedmodel{PARTIAL_MARK}def").mkdir()
    (tmp_path / "m.onnx").write_text("keep")
    removed = clean_partials(tmp_path)
    assert len(removed) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    import keras

    keras.utils.set_random_seed(7)
    inp = keras.Input((10, 10, 3), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(4, name="probs")(x)
    path = tmp_path_factory.mktemp("atomic") / "net.h5"
    keras.Model(inp, out).save(path)
    return path


def _kill_when(proc: subprocess.Popen, out: Path, nth_partial: int, deadline: float) -> bool:
    """SIGKILL the run when the n-th distinct partial artifact appears; True if caught."""
    seen: set[str] = set()
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            names = [e.name for e in os.scandir(out)]
        except FileNotFoundError:
            names = []
        for n in names:
            if PARTIAL_MARK in n:
                seen.add(n.split(PARTIAL_MARK)[0])
        if len(seen) >= nth_partial:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.001)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return False


def _check_complete(out: Path) -> list[str]:
    """Every artifact under a final name loads in its runtime and runs."""
    x = np.random.default_rng(0).standard_normal((2, 10, 10, 3)).astype("float32")
    checked = []
    for p in out.iterdir():
        if p.name.startswith("."):
            continue
        fmt = converters.detect(p)
        if fmt is None:
            continue
        result = converters.get(fmt).load(p).run({"image": x})
        assert result["probs"].shape == (2, 4)
        assert np.isfinite(result["probs"]).all()
        checked.append(fmt)
    return checked


@pytest.mark.slow
def test_sigkill_at_several_moments_leaves_only_complete_artifacts(small_model, tmp_path):
    caught = 0
    for nth in (1, 2, 3, 4):
        out = tmp_path / f"run{nth}"
        out.mkdir()
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelport", "convert", str(small_model), "--out", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        killed = _kill_when(proc, out, nth, time.monotonic() + 240)
        caught += killed
        _check_complete(out)
        if killed:  # the manifest is written last: a run killed mid-artifact has none
            assert not (out / "net.manifest.json").exists()
        # the next run removes the leftovers and completes everything
        from modelport.conversion import convert

        manifest = convert(small_model, out)
        assert manifest.ok
        assert [p.name for p in out.iterdir() if PARTIAL_MARK in p.name] == []
        assert sorted(_check_complete(out)) == sorted(converters.names())
    # the kill must really have hit mid-write, or the test proved nothing; the other
    # moments fall where they fall (a .pb or .tflite is written in milliseconds)
    assert caught >= 1  # the SavedModel directory takes long enough to be caught every time


def test_publish_moves_complete_files_and_directories(tmp_path):
    from modelport.core.atomic import publish, staging_dir

    stage = staging_dir(tmp_path, "m.onnx")
    assert stage.parent == tmp_path and stage.name.startswith(f".m.onnx{PARTIAL_MARK}")
    (stage / "m.onnx").write_text("new")
    (tmp_path / "m.onnx").write_text("old")
    publish(stage / "m.onnx", tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_text() == "new"
    built = staging_dir(tmp_path, "m.savedmodel") / "m.savedmodel"
    built.mkdir()
    (built / "saved_model.pb").write_text("2")
    (tmp_path / "m.savedmodel").mkdir()
    (tmp_path / "m.savedmodel" / "stale").write_text("1")
    publish(built, tmp_path / "m.savedmodel")
    assert sorted(p.name for p in (tmp_path / "m.savedmodel").iterdir()) == ["saved_model.pb"]
    # the emptied staging directories are leftovers the next run removes
    assert len(clean_partials(tmp_path)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.savedmodel"]
