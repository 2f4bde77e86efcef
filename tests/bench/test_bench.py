"""``modelport bench``: every artifact and the Keras model measured in a process of its own
(distinct pids, none the parent's), with the same intra-op threads and the runtimes'
versions stated; the figures are checked for structure, never as timings. Bad input is a
one-line exit 2; an artifact that cannot run fails alone."""

from __future__ import annotations

import json
import os
from importlib import metadata

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

from modelport.bench import bench
from modelport.cli import main
from modelport.conversion import convert
from modelport.core.errors import UserInputError

FIGURES = ("import_s", "load_s", "first_s", "p50_ms", "p90_ms", "p99_ms", "mean_ms",
           "throughput", "runtime_rss_mb", "peak_rss_mb")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small NHWC CNN, its TFLite and ONNX artifacts."""
    import keras
    from keras import layers

    root = tmp_path_factory.mktemp("bench")
    keras.utils.set_random_seed(3)
    inp = keras.Input((12, 10, 3), name="image")
    x = layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    out = layers.Dense(3, name="logits")(layers.Flatten(name="flat")(x))
    model = root / "small.keras"
    keras.Model(inp, out).save(model)
    manifest = convert(model, root / "out", formats="tflite,onnx")
    assert manifest.ok
    return model, root / "out"


@pytest.fixture(scope="module")
def report(small):
    model, out = small
    return bench([out], model, threads=2, runs=7, warmup=1, batch=3)


def test_every_artifact_and_the_model_in_its_own_process(report):
    assert report.ok and report.exit_code == 0
    assert [r.format for r in report.results] == ["keras", "tflite", "onnx"]
    pids = [r.pid for r in report.results]
    assert len(set(pids)) == len(pids) and report.parent_pid == os.getpid()
    assert os.getpid() not in pids and all(p > 0 for p in pids)


def test_figures_are_all_there(report):
    for r in report.results:
        assert r.size_bytes > 0 and r.batch == 3 and r.threads == 2
        for name in FIGURES:
            value = getattr(r, name)
            assert isinstance(value, float) and value > 0, (r.format, name, value)
        assert r.p50_ms <= r.p90_ms <= r.p99_ms
        assert r.peak_rss_mb >= r.runtime_rss_mb


def test_runtimes_and_their_versions_are_stated(report):
    by_format = {r.format: r.runtime for r in report.results}
    assert by_format["onnx"] == f"onnxruntime {metadata.version('onnxruntime')}"
    assert by_format["tflite"] == f"ai-edge-litert {metadata.version('ai-edge-litert')}"
    assert by_format["keras"] == (f"tensorflow {metadata.version('tensorflow')}, "
                                  f"keras {metadata.version('keras')}")
    text = report.text()
    assert "2 intra-op thread(s)" in text and "onnxruntime " in text
    assert report.inputs["image"]["shape"] == [3, 12, 10, 3]


def test_cli_table_and_json(small, tmp_path, capsys):
    model, out = small
    path = tmp_path / "bench.json"
    assert main(["bench", str(out / "small.tflite"), "--runs", "3", "--warmup", "0",
                 "--json", str(path)]) == 0
    table = capsys.readouterr().out
    assert "small.tflite" in table and "p99" in table and "vs keras" not in table
    data = json.loads(path.read_text())
    assert data["ok"] is True and data["threads"] == 1 and data["runs"] == 3
    (row,) = data["results"]
    assert row["format"] == "tflite" and row["pid"] != os.getpid()
    assert set(FIGURES) <= set(row) and data["versions"]["ai-edge-litert"]


def test_an_artifact_that_cannot_run_fails_alone(small, tmp_path, capsys):
    import shutil

    model, out = small
    bad = tmp_path / "out"
    shutil.copytree(out, bad)
    (bad / "small.tflite").write_bytes(b"not a flatbuffer" * 8)
    assert main(["bench", str(bad), "--runs", "2"]) == 2
    text = capsys.readouterr().out
    assert "FAILED" in text and "small.tflite" in text
    lines = [l for l in text.splitlines() if l.startswith("small.onnx")]
    assert lines and "FAILED" not in lines[0]


@pytest.mark.parametrize("argv, message", [
    (["bench", "/nonexistent/model.onnx"], "no such file or directory"),
    (["bench", "{empty}"], "no artifacts in this directory"),
    (["bench", "{out}", "--runs", "0"], "--runs must be at least 1"),
    (["bench", "{out}", "--model", "/nonexistent.h5"], "--model /nonexistent.h5: no such file"),
])
def test_bad_input_is_a_one_line_exit_2(small, tmp_path, capsys, argv, message):
    _, out = small
    (tmp_path / "empty").mkdir()
    argv = [a.format(empty=tmp_path / "empty", out=out) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("modelport: error:") and message in err[-1]


def test_artifacts_of_different_models_are_refused(small, fixture_models, tmp_path):
    model, out = small
    other = convert(fixture_models.get("cnn_bn").path, tmp_path, formats="onnx")
    with pytest.raises(UserInputError, match="come from 2 models"):
        bench([out, tmp_path / other.artifact("onnx").path])


def test_channels_last_artifacts_get_moved_inputs(fixture_models, tmp_path):
    """The NHWC artifacts of an NCHW model are fed the model's inputs transposed: fed as
    they are (NCHW) they could not run."""
    fx = fixture_models.get("cnn_cf")
    manifest = convert(fx.path, tmp_path, formats="onnx", layout="channels_last")
    got = bench([tmp_path], fx.path, runs=2, warmup=0)
    assert got.ok, [r.error for r in got.results]
    assert got.inputs["image"]["shape"] == [1, 3, 16, 12]
    assert manifest.artifact("onnx").layout["image"] == "NHWC"


def test_int8_io_tflite_is_measured(tmp_path):
    """An int8-I/O TFLite (``convert --quantize int8-full`` writes such): bench feeds the
    float inputs to its runner, whose job it is to quantize them, and measures it."""
    import numpy as np
    import tensorflow as tf

    module = tf.Module()
    module.w = tf.Variable(np.linspace(-1, 1, 32).reshape(8, 4).astype("float32"))
    module.f = tf.function(lambda x: {"y": tf.nn.relu(tf.matmul(x, module.w))},
                           input_signature=[tf.TensorSpec([1, 8], tf.float32, name="x")])
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.f})
    conv = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([np.random.rand(1, 8).astype("float32")]
                                           for _ in range(16))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    path = tmp_path / "q.tflite"
    path.write_bytes(conv.convert())
    got = bench([path], runs=2, warmup=0)
    assert got.ok, [r.error for r in got.results]
    assert got.results[0].p50_ms > 0 and got.results[0].runtime.startswith("ai-edge-litert")


def test_user_inputs_are_fed(small, tmp_path):
    import numpy as np

    _, out = small
    arrays = tmp_path / "in.npz"
    np.savez(arrays, image=np.linspace(0, 1, 2 * 12 * 10 * 3, dtype=np.float32)
             .reshape(2, 12, 10, 3))
    got = bench([out / "small.onnx"], inputs=str(arrays), runs=2, warmup=0)
    assert got.ok and got.results[0].batch == 2
    assert got.inputs["image"] == {"shape": [2, 12, 10, 3], "dtype": "float32",
                                   "distribution": "user-supplied"}
    with pytest.raises(UserInputError, match=r"image has shape \[1, 10, 12, 3\], the model "
                                             r"expects \[\?,12,10,3\]"):
        bench([out / "small.onnx"], inputs={"image": np.zeros((1, 10, 12, 3), np.float32)})
