"""``load(path, threads=N)``: the runners hand N intra-op threads to their runtime (what
``bench --threads`` relies on); without it each runtime keeps its default."""

from __future__ import annotations

import numpy as np

from modelport import converters


def test_onnxruntime_session_gets_the_threads(converted):
    conv = converted.get("cnn_bn")
    path = str(conv.artifact_path("onnx"))
    runner = converters.get("onnx").load(path, threads=3)
    opts = runner._sess.get_session_options()
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads) == (3, 1)
    default = converters.get("onnx").load(path)._sess.get_session_options()
    assert default.intra_op_num_threads == 0  # onnxruntime's own choice


def test_tf_session_gets_the_threads(converted):
    conv = converted.get("cnn_bn")
    runner = converters.get("pb").load(conv.artifact_path("pb"), threads=2)
    config = runner._graph_session.session._config
    assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (2, 1)
    x = np.zeros((1, 20, 20, 3), np.float32) + np.linspace(0, 1, 3, dtype=np.float32)
    assert runner.run({"pixels": x})["probs"].shape == (1, 4)


def test_tflite_interpreter_runs_with_threads(converted):
    conv = converted.get("cnn_bn")
    runner = converters.get("tflite").load(conv.artifact_path("tflite"), threads=2)
    x = np.linspace(-1, 1, 1200, dtype=np.float32).reshape(1, 20, 20, 3)
    one = converters.get("tflite").load(conv.artifact_path("tflite")).run({"pixels": x})
    np.testing.assert_allclose(runner.run({"pixels": x})["probs"], one["probs"], atol=1e-6)
