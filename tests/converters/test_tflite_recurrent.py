"""Recurrent models to TFLite: the artifact computes what Keras computes on every call.

The cause of the mismatches seen on real tf.keras LSTM files: the TFLite converter fuses
tf_keras's LSTM into ``UNIDIRECTIONAL_SEQUENCE_LSTM``, whose hidden and cell state are
variable tensors that survive between invocations, so every call after the first starts
from the previous call's final state. That route is rejected; the recurrent layers are
traced as plain ops instead (a loop at batch 1, or unrolled when the time dimension is
known).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from modelport import converters
from modelport.conversion import convert
from modelport.loading.source import load

STEPS, FEATURES = 12, 6


def _sequence_model(K, layer: Callable, steps: int | None = STEPS):
    """``Input(steps, FEATURES) -> layer -> Dense(3)``; ``layer(K)`` builds the middle."""
    inp = K.Input((steps, FEATURES), name="x")
    return K.Model(inp, K.layers.Dense(3, name="y")(layer(K)(inp)))


def _lrcn(K):
    inp = K.Input((5, 8, 8, 1), name="x")
    x = K.layers.TimeDistributed(K.layers.Conv2D(4, 3, activation="relu"))(inp)
    x = K.layers.TimeDistributed(K.layers.Flatten())(x)
    return K.Model(inp, K.layers.Dense(3, name="y")(K.layers.LSTM(8)(x)))


def _bilstm(K):
    return lambda x: K.layers.Flatten()(
        K.layers.Bidirectional(K.layers.LSTM(8, return_sequences=True))(x))


def _lstm_gru(K):
    return lambda x: K.layers.GRU(8)(K.layers.LSTM(8, return_sequences=True)(x))


BUILDERS: dict[str, tuple[str, Callable]] = {
    "tf_keras_lstm": ("tf_keras", lambda K: _sequence_model(K, lambda K: K.layers.LSTM(16))),
    "tf_keras_gru": ("tf_keras", lambda K: _sequence_model(K, lambda K: K.layers.GRU(16))),
    "tf_keras_bilstm": ("tf_keras", lambda K: _sequence_model(K, _bilstm)),
    "tf_keras_lrcn": ("tf_keras", _lrcn),
    "tf_keras_free_time": ("tf_keras", lambda K: _sequence_model(
        K, lambda K: K.layers.LSTM(16), steps=None)),
    "keras3_lstm_gru": ("keras", lambda K: _sequence_model(K, _lstm_gru)),
}


def _save(name: str, directory: Path) -> Path:
    import importlib

    framework, build = BUILDERS[name]
    K = importlib.import_module(framework)
    K.utils.set_random_seed(17)
    path = directory / f"{name}.h5"
    build(K).save(path)
    return path


def _feeds(source, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = [batch] + [STEPS if d is None else d for d in source.inputs[0].shape[1:]]
    return {"x": rng.standard_normal(shape).astype("float32")}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_recurrent_tflite_matches_keras_on_every_call(name, tmp_path):
    path = _save(name, tmp_path)
    source = load(path)
    manifest = convert(source, tmp_path / "out", formats="tflite")
    record = manifest.artifact("tflite")
    assert record.ok, record.error
    assert record.check["status"] == "passed"
    runner = converters.get("tflite").load(tmp_path / "out" / record.path)
    for call, batch in enumerate((3, 2, 3)):  # several calls: state must not carry over
        feeds = _feeds(source, batch, seed=call)
        want = source.predict(feeds)["y"]
        got = runner.run(feeds)["y"]
        assert float(np.std(want, axis=0).max()) > 1e-3  # outputs move with the input
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3,
                                   err_msg=f"{name}, call {call + 1}")
    if name == "tf_keras_lstm":
        outcomes = {r["name"]: r for r in record.routes}
        assert "keeps state between calls" in outcomes["builtins-batch1"]["reason"]
        assert record.route == "loop-batch1"


@pytest.mark.parametrize("name", ["tf_keras_lstm", "tf_keras_free_time"])
def test_each_tflite_route_of_an_lstm(name, tmp_path):
    """Every route, written on its own: what it does with a tf_keras LSTM."""
    from modelport.converters import tflite
    from modelport.core.errors import ConversionError
    from modelport.core.records import ConvertOptions

    source = load(_save(name, tmp_path))
    routes = {r.name: r for r in tflite.routes(source, source.serving, ConvertOptions())}
    assert list(routes) == ["builtins", "builtins-batch1", "loop-batch1", "unrolled",
                            "frozen-graph"]
    expected = {  # route -> the reason it must refuse, or whether its batch is dynamic
        "builtins": "lower to builtins only with a fixed batch size",
        "builtins-batch1": "keeps state between calls",
        "loop-batch1": False,
        "unrolled": True if name == "tf_keras_lstm" else "unroll",
        "frozen-graph": "lower to builtins only with a fixed batch size",
    }
    for route_name, want in expected.items():
        dest = tmp_path / f"{route_name}.tflite"
        if isinstance(want, str):
            with pytest.raises(ConversionError, match=want):
                routes[route_name].write(dest)
            assert not dest.exists()
            continue
        record = routes[route_name].write(dest)
        assert (record.details["fixed_batch"] is None) is want
        runner = converters.get("tflite").load(dest)
        for call in range(2):
            feeds = _feeds(source, 3, seed=call)
            np.testing.assert_allclose(runner.run(feeds)["y"], source.predict(feeds)["y"],
                                       atol=1e-4, rtol=1e-3, err_msg=f"{route_name} {call}")


def test_fused_lstm_kernel_keeps_state_between_calls(tmp_path):
    """The cause, shown on the converter's own output: the same input twice gives two
    answers, and the flatbuffer holds variable tensors."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from modelport.converters.savedmodel import save_to
    from modelport.converters.tflite_flatbuffer import read_model, variable_tensors

    source = load(_save("tf_keras_lstm", tmp_path))
    save_to(source.serving, tmp_path / "sm", batch_size=1)
    data = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm")).convert()
    assert variable_tensors(read_model(data))
    run = Interpreter(model_content=data).get_signature_runner()
    x = _feeds(source, 1, seed=0)["x"]
    first, second = run(x=x)["y"], run(x=x)["y"]
    np.testing.assert_allclose(first, source.predict({"x": x})["y"], atol=1e-5)
    assert float(np.max(np.abs(second - first))) > 1e-3


def test_plain_recurrent_restores_the_layers(tmp_path):
    from modelport.converters.recurrent import plain_recurrent, recurrent_layers

    source = load(_save("tf_keras_bilstm", tmp_path))
    layers = recurrent_layers(source.model)
    assert len(layers) == 2  # the forward and the backward copy the wrapper runs
    before = [(l.unroll, l.__dict__.get("_could_use_gpu_kernel")) for l in layers]
    with plain_recurrent(source.model, unroll=True) as names:
        assert len(names) == 2 and all(l.unroll for l in layers)
        assert not any(l.__dict__.get("_could_use_gpu_kernel") for l in layers)
    assert [(l.unroll, l.__dict__.get("_could_use_gpu_kernel")) for l in layers] == before
