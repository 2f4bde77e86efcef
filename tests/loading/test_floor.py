"""The floor: what stock Keras 3 or stock tf_keras opens, modelport opens too (and computes
the same); what needs its author's code is refused naming all of it at once."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from modelport.core.errors import MissingCustomObjectsError, UnsafeModelError
from modelport.loading.source import load


def _same(src, model, feeds: dict[str, np.ndarray]) -> None:
    got = src.predict(feeds)
    want = model(feeds[src.input_names[0]] if len(feeds) == 1 else
                 [feeds[n] for n in src.input_names])
    (name,) = src.output_names
    assert np.std(np.asarray(want)) > 0  # the comparison means something
    np.testing.assert_allclose(got[name], np.asarray(want), rtol=1e-5, atol=1e-5)


def test_tf_keras_model_with_tf_ops_loads_and_computes_what_tf_keras_does(tmp_path):
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(3)
    inp = tf_keras.Input((6,), name="x")
    h = tf_keras.layers.Dense(8, name="dense")(inp)
    y = tf.reduce_mean(h, axis=-1, keepdims=True) + h * 2.0  # TFOpLambda layers
    y = y[:, 1:5]  # a SlicingOpLambda layer
    model = tf_keras.Model(inp, y)
    assert {type(l).__name__ for l in model.layers} >= {"TFOpLambda", "SlicingOpLambda"}
    model.save(tmp_path / "tfops.h5", save_format="h5")
    src = load(tmp_path / "tfops.h5")
    assert src.framework == "tf_keras"
    _same(src, model, {"x": np.random.default_rng(0).normal(size=(3, 6)).astype("float32")})


def _rmse(y_true, y_pred):  # a custom metric nobody registers: compile config only
    import keras

    return keras.ops.sqrt(keras.ops.mean(keras.ops.square(y_true - y_pred)))


def test_keras3_layerscale_masked_embedding_and_a_custom_metric_load(tmp_path):
    import keras
    from keras.src.applications.convnext import LayerScale

    keras.utils.set_random_seed(4)
    ids = keras.Input((5,), dtype="int32", name="ids")
    x = keras.layers.Embedding(12, 4, mask_zero=True, name="emb")(ids)  # adds NotEqual
    x = keras.layers.LSTM(6, name="lstm")(x)
    x = LayerScale(0.5, 6, name="scale")(x)  # ConvNeXt's own layer
    model = keras.Model(ids, keras.layers.Dense(3, name="out")(x))
    model.compile(optimizer="adam", loss="mse", metrics=[_rmse])
    model.save(tmp_path / "m.keras")
    src = load(tmp_path / "m.keras")
    assert src.framework == "keras3"
    feeds = {"ids": np.array([[1, 2, 0, 0, 0], [3, 4, 5, 6, 7], [11, 0, 0, 0, 0]], "int32")}
    _same(src, model, feeds)


def _collapse_file(tmp_path):
    path = tmp_path / "objs.py"
    path.write_text(textwrap.dedent("""
        import keras

        def collapse_hw(x):
            return keras.ops.reshape(x, (-1, 4, 6))
    """))
    return path


def test_a_function_keras3_names_under_builtins_is_asked_for_then_used(tmp_path):
    import keras

    from modelport.loading.customobjects import collect_custom_objects

    fn = collect_custom_objects(_collapse_file(tmp_path))["collapse_hw"]
    inp = keras.Input((4, 3, 2), name="x")
    y = keras.layers.Lambda(fn, name="collapse")(inp)
    model = keras.Model(inp, keras.layers.Dense(2, name="out")(y))
    model.save(tmp_path / "fn.keras")
    with pytest.raises(MissingCustomObjectsError) as err:
        load(tmp_path / "fn.keras")
    assert "collapse_hw" in str(err.value) and "--custom-objects" in str(err.value)
    assert "def collapse_hw(x)" in str(err.value)
    src = load(tmp_path / "fn.keras", custom_objects=_collapse_file(tmp_path))
    feeds = {"x": np.random.default_rng(1).normal(size=(2, 4, 3, 2)).astype("float32")}
    _same(src, model, feeds)


def test_python_builtins_named_as_functions_stay_refused_as_unsafe(tmp_path):
    import json
    import zipfile

    import keras

    inp = keras.Input((3,), name="x")
    keras.Model(inp, keras.layers.Dense(2, name="d")(inp)).save(tmp_path / "ok.keras")
    with zipfile.ZipFile(tmp_path / "ok.keras") as src, \
            zipfile.ZipFile(tmp_path / "evil.keras", "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                cfg = json.loads(data)
                dense = cfg["config"]["layers"][1]["config"]
                dense["activation"] = {"module": "builtins", "class_name": "function",
                                       "config": "eval", "registered_name": "function"}
                data = json.dumps(cfg).encode()
            out.writestr(item, data)
    with pytest.raises(UnsafeModelError, match="builtins.eval"):
        load(tmp_path / "evil.keras")


def test_every_class_of_its_author_is_named_at_once_top_level_model_included(tmp_path):
    import keras

    class L1Dist(keras.layers.Layer):
        def call(self, a, b):
            return keras.ops.abs(a - b)

    class SelfAttention(keras.layers.Layer):
        def call(self, x):
            return x * keras.ops.softmax(x)

    class CTCModel(keras.Model):
        pass

    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    y = SelfAttention(name="att")(L1Dist(name="dist")(a, b))
    CTCModel([a, b], y).save(tmp_path / "authors.keras")
    with pytest.raises(MissingCustomObjectsError) as err:
        load(tmp_path / "authors.keras")
    assert set(err.value.names) == {"CTCModel", "L1Dist", "SelfAttention"}


def test_tf_keras_applications_layer_loads_where_stock_tf_keras_does_not(tmp_path):
    import tf_keras
    from tf_keras.src.applications.convnext import LayerScale

    tf_keras.utils.set_random_seed(5)
    inp = tf_keras.Input((4,), name="x")
    y = LayerScale(0.5, 3, name="scale")(tf_keras.layers.Dense(3, name="dense")(inp))
    model = tf_keras.Model(inp, y)
    model.save(tmp_path / "convnext_part.h5", save_format="h5")
    with pytest.raises(ValueError, match="Unknown layer: 'LayerScale'"):
        tf_keras.models.load_model(tmp_path / "convnext_part.h5")  # stock tf_keras
    src = load(tmp_path / "convnext_part.h5")
    assert src.framework == "tf_keras"
    _same(src, model, {"x": np.random.default_rng(2).normal(size=(3, 4)).astype("float32")})
