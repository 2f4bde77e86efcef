"""What tf2onnx cannot take as TensorFlow gives it is prepared by modelport: ops it does not
map (Keras 3's exact GELU traces to ``Erfc``, ``celu`` to ``Expm1``, ...) and function calls
Keras marks for XLA (grouped convolutions)."""

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


def _convert_and_compare(tmp_path, model, name, x, custom_objects=None):
    import onnx

    path = tmp_path / f"{name}.keras"
    model.save(path)
    record = convert(path, tmp_path / name, formats="onnx",
                     custom_objects=custom_objects).artifact("onnx")
    assert record.ok, record.error
    onnx_path = tmp_path / name / record.path
    got = converters.get("onnx").load(onnx_path).run({"x": x})
    want = model.predict(x, verbose=0)
    want = want if isinstance(want, dict) else {model.output_names[0]: want}
    assert set(got) == set(want)
    for key, value in want.items():
        out = got[key]
        assert float(np.std(value, axis=0).max()) > 1e-2, key
        np.testing.assert_allclose(out, value, atol=1e-5, rtol=1e-4, err_msg=key)
    return {n.op_type for n in onnx.load(str(onnx_path)).graph.node}


def test_expm1_log1p_xlogy_xdivy_are_lowered(tmp_path):
    """``celu`` traces to ``Expm1``, ``keras.ops.log1p`` to ``Log1p``, ``tf.math.xlogy``
    and ``xdivy`` to ``Xlogy``/``Xdivy``: tf2onnx maps none of them."""
    import keras

    import tensorflow as tf

    class MathOps(keras.layers.Layer):
        def call(self, t):
            # xlogy(0, y) is 0 whatever log(y) is: about half the x entries are exact zeros
            x = keras.ops.relu(t)
            return [keras.ops.log1p(keras.ops.abs(t)),
                    tf.math.xlogy(x, keras.ops.abs(t) + 0.5) + tf.math.xdivy(x, t * t + 1)]

    keras.utils.set_random_seed(5)
    inp = keras.Input((6,), name="x")
    h = keras.layers.Dense(6)(inp)
    a = keras.layers.Activation("celu", name="celu")(h)
    b, c = MathOps(name="math")(h)
    model = keras.Model(inp, {"celu": a, "log1p": b, "xlogy": c})
    x = np.random.default_rng(1).standard_normal((8, 6)).astype("float32") * 2
    ops = _convert_and_compare(tmp_path, model, "mathops", x, {"MathOps": MathOps})
    assert not ops & {"Expm1", "Log1p", "Xlogy", "Xdivy"}


def test_xla_compiled_grouped_convolution_is_inlined(tmp_path):
    """Keras 3 traces a grouped convolution (ConvNeXt's depthwise blocks) as a function
    marked for XLA; the frozen graph keeps the call, which tf2onnx cannot convert unless
    it is made inlinable. The ``.pb`` keeps it as it is."""
    import keras

    from modelport.converters.onnx_ops import inlinable

    keras.utils.set_random_seed(6)
    inp = keras.Input((10, 10, 8), name="x")
    h = keras.layers.Conv2D(8, 3, padding="same", groups=4, name="grouped")(inp)
    model = keras.Model(inp, keras.layers.Conv2D(3, 1, name="y")(h))
    x = np.random.default_rng(2).standard_normal((3, 10, 10, 8)).astype("float32")
    ops = _convert_and_compare(tmp_path, model, "grouped", x)
    assert "Conv" in ops
    from modelport.converters.frozen_pb import frozen_graph_def
    from modelport.loading.source import load

    frozen = frozen_graph_def(load(tmp_path / "grouped.keras").serving)
    marked = [f for f in frozen.library.function if "_XlaMustCompile" in f.attr]
    assert marked, "the case this test exists for: Keras traced the grouped conv for XLA"
    assert not any("_XlaMustCompile" in f.attr for f in inlinable(frozen).library.function)
    # the frozen graph the .pb artifact is written from keeps the XLA marks
    assert [f.signature.name for f in frozen.library.function if "_XlaMustCompile" in f.attr] \
        == [f.signature.name for f in marked]
