"""Every class of unusable input gets its own typed error, and the CLI exits 2 without a
traceback."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest

from modelport.cli import main
from modelport.core.errors import ModelFileError, MissingCustomObjectsError, UnsafeModelError
from modelport.loading.source import load
from tests.models import dense_model


@pytest.fixture(scope="module")
def good_h5(tmp_path_factory) -> Path:
    return dense_model(tmp_path_factory.mktemp("bad") / "good.h5", 6, 5, 3, seed=1,
                       input_name="features", output_name="scores")


def _cli(args: list[str], capsys) -> tuple[int, str]:
    rc = main(args)
    err = capsys.readouterr().err
    return rc, err


@pytest.mark.parametrize("case, expect", [
    ("missing", "no such file"),
    ("directory", "is a directory"),
    ("empty", "empty (0 bytes)"),
    ("garbage", "not an HDF5 or .keras file"),
    ("truncated", "truncated"),
    ("wrong_ext_zip", "rename it to .keras"),
    ("wrong_ext_h5", "rename it to .h5"),
    ("unknown_ext", "unsupported file type"),
    ("bad_zip", "damaged or truncated"),
    ("not_keras_h5", "neither a Keras model config nor Keras weights"),
    ("keras0_weights", "weights saved by Keras 0.x"),
    ("empty_weights", "an empty Keras weights file (Keras 2.2.4 wrote it"),
])
def test_each_bad_file_has_its_own_message(case, expect, good_h5, tmp_path, capsys):
    import h5py

    p = tmp_path / "model.h5"
    if case == "missing":
        p = tmp_path / "nope.h5"
    elif case == "directory":
        p = tmp_path / "dir.h5"
        p.mkdir()
    elif case == "empty":
        p.write_bytes(b"")
    elif case == "garbage":
        p.write_bytes(os.urandom(64).replace(b"\x89", b"x").replace(b"PK", b"xx") + b"garbage")
        p.write_bytes(b"GARBAGE!" + p.read_bytes())
    elif case == "truncated":
        data = good_h5.read_bytes()
        p.write_bytes(data[: len(data) // 3])
    elif case == "wrong_ext_zip":
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("config.json", "{}")
    elif case == "wrong_ext_h5":
        p = tmp_path / "model.keras"
        p.write_bytes(good_h5.read_bytes())
    elif case == "unknown_ext":
        p = tmp_path / "model.bin"
        p.write_bytes(b"\x00\x01\x02 not a model")
    elif case == "bad_zip":
        p = tmp_path / "model.keras"
        p.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    elif case == "not_keras_h5":
        with h5py.File(p, "w") as f:
            f["x"] = [1, 2, 3]
    elif case == "keras0_weights":  # Keras 0.x save_weights: arrays by position only
        with h5py.File(p, "w") as f:
            f.attrs["nb_layers"] = 2
            f.create_group("layer_0").attrs["nb_params"] = 1
            f["layer_0/param_0"] = [[1.0, 2.0]]
            f.create_group("layer_1").attrs["nb_params"] = 0
    elif case == "empty_weights":  # save_weights of a model with no layers
        with h5py.File(p, "w") as f:
            f.attrs["keras_version"] = b"2.2.4"
            f.attrs["backend"] = b"tensorflow"
    with pytest.raises(ModelFileError, match="") as info:
        load(p)
    assert expect in str(info.value)
    rc, err = _cli(["convert", str(p), "--out", str(tmp_path / "out")], capsys)
    assert rc == 2
    assert expect in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_permission_denied(good_h5, tmp_path):
    import shutil
    import subprocess
    import sys
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="modelport-perm-"))
    try:
        shared.chmod(0o755)
        p = shared / "locked.h5"
        p.write_bytes(good_h5.read_bytes())
        p.chmod(0)
        if os.geteuid() != 0:
            with pytest.raises(ModelFileError, match="permission denied"):
                load(p)
            return
        # root reads anything: run the CLI as an unprivileged user instead
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root without setpriv: cannot drop privileges")
        proc = subprocess.run(
            [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
             "-m", "modelport", "convert", str(p), "--out", str(shared / "out")],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "HOME": str(shared)},
        )
        assert proc.returncode == 2, proc.stderr
        assert "permission denied" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_pickle_is_refused_without_unpickling(tmp_path, capsys):
    marker = tmp_path / "pwned.txt"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    p = tmp_path / "model.h5"
    p.write_bytes(pickle.dumps(Evil(), protocol=4))
    with pytest.raises(ModelFileError, match="pickle"):
        load(p)
    rc, err = _cli(["convert", str(p), "--out", str(tmp_path / "out")], capsys)
    assert rc == 2 and "pickle" in err
    assert not marker.exists()


def test_weights_only_file_says_so(good_h5, tmp_path):
    import keras

    model = keras.models.load_model(good_h5, compile=False)
    weights = tmp_path / "only.weights.h5"
    model.save_weights(weights)
    with pytest.raises(ModelFileError, match="weights only.*--architecture"):
        load(weights)


def test_weights_only_with_architecture_json_and_builder(tmp_path):
    import numpy as np
    import tf_keras

    tf_keras.utils.set_random_seed(3)
    inp = tf_keras.Input((4,), name="x")
    h = tf_keras.layers.Dense(6, activation="tanh", name="hidden")(inp)
    out = tf_keras.layers.Dense(2, name="y")(h)
    model = tf_keras.Model(inp, out)
    weights = tmp_path / "w.h5"
    model.save_weights(str(weights), save_format="h5")
    arch = tmp_path / "arch.json"
    arch.write_text(model.to_json())
    builder = tmp_path / "build_arch.py"
    builder.write_text(
        "import tf_keras\n"
        "def build():\n"
        "    inp = tf_keras.Input((4,), name='x')\n"
        "    h = tf_keras.layers.Dense(6, activation='tanh', name='hidden')(inp)\n"
        "    return tf_keras.Model(inp, tf_keras.layers.Dense(2, name='y')(h))\n"
    )
    x = np.random.default_rng(0).standard_normal((5, 4)).astype("float32")
    expected = model.predict(x, verbose=0)
    for spec in (str(arch), f"{builder}:build"):
        src = load(weights, architecture=spec)
        got = src.predict({"x": x})["y"]
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert src.path == weights


def test_architecture_with_wrong_layer_names(tmp_path):
    import tf_keras

    inp = tf_keras.Input((4,), name="x")
    model = tf_keras.Model(inp, tf_keras.layers.Dense(2, name="y")(inp))
    weights = tmp_path / "w.h5"
    model.save_weights(str(weights), save_format="h5")
    other = tf_keras.Model(inp, tf_keras.layers.Dense(2, name="renamed")(inp))
    arch = tmp_path / "arch.json"
    arch.write_text(other.to_json())
    with pytest.raises(ModelFileError, match="no weights for layer"):
        load(weights, architecture=str(arch))


def test_missing_custom_objects_are_all_named(tmp_path, capsys):
    import keras

    @keras.saving.register_keras_serializable(package="tmpx")
    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    @keras.saving.register_keras_serializable(package="tmpx")
    class Shift(keras.layers.Layer):
        def call(self, x):
            return x + 1.0

    inp = keras.Input((3,), name="a")
    out = Shift()(Scale()(keras.layers.Dense(3)(inp)))
    p = tmp_path / "custom.keras"
    keras.Model(inp, out).save(p)
    # forget the registrations, as in a fresh process
    from keras.src.saving import object_registration

    for key in ("tmpx>Scale", "tmpx>Shift"):
        object_registration.GLOBAL_CUSTOM_OBJECTS.pop(key, None)
    with pytest.raises(MissingCustomObjectsError) as info:
        load(p)
    assert set(info.value.names) == {"tmpx>Scale", "tmpx>Shift"}
    assert "--custom-objects" in str(info.value) and "class Scale" in str(info.value)
    rc, err = _cli(["convert", str(p), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and "tmpx>Scale" in err and "tmpx>Shift" in err and "Traceback" not in err


def test_hdf5_external_link_is_refused(good_h5, tmp_path):
    import h5py

    p = tmp_path / "linked.h5"
    p.write_bytes(good_h5.read_bytes())
    with h5py.File(p, "r+") as f:
        f["model_weights/sneaky"] = h5py.ExternalLink("/etc/passwd", "/")
    with pytest.raises(UnsafeModelError, match="external link"):
        load(p)


def test_hdf5_virtual_and_external_datasets_are_refused(good_h5, tmp_path):
    import h5py

    p = tmp_path / "virtual.h5"
    p.write_bytes(good_h5.read_bytes())
    with h5py.File(p, "r+") as f:
        layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
        layout[:] = h5py.VirtualSource("/etc/hostname", "x", shape=(4,))
        f.create_virtual_dataset("model_weights/v", layout)
    with pytest.raises(UnsafeModelError, match="virtual dataset"):
        load(p)
    q = tmp_path / "external.h5"
    q.write_bytes(good_h5.read_bytes())
    with h5py.File(q, "r+") as f:
        f.create_dataset("model_weights/e", shape=(4,), dtype="u1",
                         external=[("/etc/hostname", 0, 4)])
    with pytest.raises(UnsafeModelError, match="external file"):
        load(q)


def test_module_reference_outside_keras_is_refused(tmp_path):
    import json

    import keras

    marker = tmp_path / "ran.txt"
    inp = keras.Input((3,), name="a")
    out = keras.layers.Dense(2, name="d")(inp)
    p = tmp_path / "evil.keras"
    keras.Model(inp, out).save(p)
    with zipfile.ZipFile(p) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(files["config.json"])
    dense = next(l for l in config["config"]["layers"] if l["class_name"] == "Dense")
    dense["config"]["activation"] = {"module": "os", "class_name": "function",
                                     "config": "system", "registered_name": "function"}
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(p, "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)
    with pytest.raises(UnsafeModelError, match="os.system"):
        load(p)
    assert not marker.exists()


def test_hdf5_library_crash_is_a_clean_refusal(good_h5, tmp_path, monkeypatch):
    """libhdf5 can segfault on crafted files (seen while fuzzing): the file is read in a
    child process first, and a child killed by a signal becomes a ModelFileError."""
    import subprocess

    from modelport.loading import h5probe

    real_run = subprocess.run

    def crashing_run(cmd, *args, **kwargs):
        if "modelport.loading.h5probe" in cmd:
            # the child really dies by SIGSEGV
            cmd = [cmd[0], "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(h5probe.subprocess, "run", crashing_run)
    with pytest.raises(ModelFileError, match="crashed reading this file.*signal 11"):
        load(good_h5)
