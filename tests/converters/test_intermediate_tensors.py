"""The runners' optional capability: list the intermediate tensors and return them with
the outputs (``Runner.tensors()``, ``Runner.run_with()``), in every format; quantized
TFLite tensors come back dequantized."""

from __future__ import annotations

import numpy as np
import pytest

from modelport import converters

FORMATS = converters.names()


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_exposes_its_tensors(converted, fmt):
    conv = converted.get("siamese")
    runner = converters.get(fmt).load(conv.artifact_path(fmt))
    assert runner.exposes_tensors
    tensors = runner.tensors()
    names = [t.name for t in tensors]
    assert len(names) == len(set(names)) and len(names) >= 6, names
    assert all(t.extra.get("op") for t in tensors)
    assert [t.extra["order"] for t in tensors] == list(range(len(tensors)))
    # the first tower's first Dense shows up under its name scope
    dense = [n for n in names if "base_dense_1" in n]
    assert dense, names
    rng = np.random.default_rng(0)
    feeds = {t.name: rng.normal(size=(3, 16)).astype(np.float32) for t in runner.inputs}
    outputs, extra = runner.run_with(feeds, names)
    assert set(extra) == set(names)
    assert all(np.asarray(v).shape[0] == 3 for v in extra.values() if np.ndim(v))
    plain = runner.run(feeds)
    for k in plain:
        np.testing.assert_allclose(outputs[k], plain[k], rtol=1e-6, atol=1e-7)
    ins, outs = runner.io_tensors()
    assert set(ins) == {"input_a", "input_b"} and set(outs) == {"distance"}
    # the output's graph tensor is one of the listed tensors, with the output's values
    assert outs["distance"] in extra
    np.testing.assert_allclose(np.asarray(extra[outs["distance"]]).reshape(-1),
                               plain["distance"].reshape(-1), rtol=1e-6, atol=1e-7)


def test_int8_tflite_tensors_come_back_dequantized(tmp_path):
    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    keras.utils.set_random_seed(2)
    inp = keras.Input((8,), name="x")
    h = keras.layers.Dense(6, activation="tanh", name="hidden")(inp)
    out = keras.layers.Dense(3, name="y")(h)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(1)

    def data():
        for _ in range(32):
            yield [rng.normal(size=(1, 8)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = data
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = tmp_path / "q.tflite"
    path.write_bytes(conv.convert())
    runner = converters.get("tflite").load(path)
    tensors = runner.tensors()
    quantized = [t for t in tensors if t.extra.get("quantization")]
    assert quantized and all(t.dtype == "float32" for t in quantized)
    hidden = next(t for t in quantized if "hidden" in t.name and t.extra["op"] == "TANH")
    raw = Interpreter(model_path=str(path))
    assert np.dtype(raw.get_tensor_details()[hidden.extra["index"]]["dtype"]).kind == "i"
    x = rng.normal(size=(4, 8)).astype(np.float32)
    _, extra = runner.run_with({runner.inputs[0].name: x}, [hidden.name])
    want = np.tanh(x @ model.get_layer("hidden").get_weights()[0]
                   + model.get_layer("hidden").get_weights()[1])
    got = extra[hidden.name]
    assert got.dtype == np.float32 and got.shape == want.shape
    # int8 codes times the scale: values on the quantization grid, near the float ones
    q = hidden.extra["quantization"]
    codes = got / q["scale"] + q["zero_point"]
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-3)
    assert np.median(np.abs(got - want)) < 0.02
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.99
