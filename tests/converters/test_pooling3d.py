"""3-D pooling as 2-D pooling and a depth pass: the same numbers as TensorFlow's 3-D
pooling (padding included), and a TFLite route for models TFLite builtins could not take."""

from __future__ import annotations

import numpy as np
import pytest

from modelport import converters
from modelport.conversion import convert


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("pool, strides, padding", [
    ((2, 2, 2), (2, 2, 2), "VALID"), ((3, 2, 3), (2, 1, 2), "SAME"),
    ((1, 2, 2), (1, 2, 2), "VALID"), ((2, 3, 1), (1, 2, 1), "SAME"),
])
def test_separable_pooling_equals_tensorflows_3d_pooling(kind, pool, strides, padding):
    import tensorflow as tf

    from modelport.converters.pooling3d import _pool

    x = tf.constant(np.random.default_rng(0).standard_normal((2, 7, 9, 8, 3)), tf.float32)
    want = (tf.nn.max_pool3d if kind == "max" else tf.nn.avg_pool3d)(
        x, pool, strides, padding)
    got = _pool(x, kind, pool, strides, padding)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6, rtol=1e-6)


def test_3d_pooling_models_reach_tflite_through_2d_pooling(tmp_path):
    import keras

    keras.utils.set_random_seed(12)
    inp = keras.Input((None, 12, 10, 2), name="clip")  # unknown depth (time), as in video
    x = keras.layers.Conv3D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling3D((1, 2, 2))(x)
    x = keras.layers.AveragePooling3D((2, 2, 1), strides=(2, 1, 1), padding="same")(x)
    out = keras.layers.Conv3D(2, 1, name="y")(x)
    model = keras.Model(inp, out)
    path = tmp_path / "clip.keras"
    model.save(path)

    record = convert(path, tmp_path / "out", formats="tflite").artifact("tflite")
    assert record.ok, record.error
    assert record.route == "pooling-2d" and record.check["status"] == "passed"
    assert any("MaxPool3D" in r["reason"] for r in record.routes if r["name"] == "builtins")
    from modelport.converters.tflite_flatbuffer import op_names, read_model

    ops = op_names(read_model((tmp_path / "out" / record.path).read_bytes()))
    assert "MAX_POOL_2D" in ops and not any("3D" in op and "POOL" in op for op in ops)
    runner = converters.get("tflite").load(tmp_path / "out" / record.path)
    for depth in (6, 5):
        x = np.random.default_rng(depth).standard_normal((2, depth, 12, 10, 2)).astype("float32")
        want = model.predict(x, verbose=0)
        assert float(np.std(want)) > 1e-2
        np.testing.assert_allclose(runner.run({"clip": x})["y"], want, atol=1e-5, rtol=1e-4)
    # the rewrite lasts only while tracing: the layers' own call is back afterwards
    from modelport.converters.pooling3d import pooling_as_2d, pooling_layers
    from modelport.loading.source import load

    loaded = load(path).model
    layers = pooling_layers(loaded)
    before = [layer.call for layer in layers]
    with pooling_as_2d(loaded) as switched:
        assert len(switched) == 2 and all(l.call != b for l, b in zip(layers, before))
    assert [layer.call for layer in layers] == before
