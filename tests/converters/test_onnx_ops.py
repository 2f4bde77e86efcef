"""TensorFlow ops tf2onnx does not map are lowered by modelport: Keras 3's exact GELU
(``gelu(approximate=False)``, every Keras 3 transformer) traces to ``Erfc``."""

from __future__ import annotations

import numpy as np

from modelport import converters
from modelport.conversion import convert


def test_keras3_exact_gelu_converts_to_onnx(tmp_path):
    import keras
    import onnx

    keras.utils.set_random_seed(4)
    inp = keras.Input((8,), name="x")
    x = keras.layers.Dense(16)(inp)
    x = keras.layers.Activation("gelu")(x)  # keras.activations.gelu: approximate=False
    x = keras.layers.Dense(16, activation="gelu")(x)
    model = keras.Model(inp, keras.layers.Dense(2, name="y")(x))
    path = tmp_path / "gelu.keras"
    model.save(path)

    record = convert(path, tmp_path / "out", formats="onnx").artifact("onnx")
    assert record.ok, record.error
    ops = {n.op_type for n in onnx.load(str(tmp_path / "out" / record.path)).graph.node}
    assert "Erf" in ops and "Erfc" not in ops
    # negative inputs exercise erfc's tail, where 1 - erf(x) is computed
    x = (np.random.default_rng(0).standard_normal((6, 8)) * 3).astype("float32")
    got = converters.get("onnx").load(tmp_path / "out" / record.path).run({"x": x})["y"]
    want = model.predict(x, verbose=0)
    assert float(np.std(want, axis=0).max()) > 1e-2
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)
