"""Every layer output of a Keras model, with the values of Keras sub-models: Keras 3 and
tf_keras, shared layers, nested models called twice, multi-output layers."""

from __future__ import annotations

import numpy as np

from modelport.loading.layer_outputs import keys_by_depth, layer_outputs, layer_values
from modelport.loading.source import load


def _feeds(source, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return {t.name: rng.normal(size=[n] + list(t.shape[1:])).astype("float32")
            for t in source.inputs}


def test_tf_keras_nested_model_called_twice_is_expanded_per_call(fixture_models):
    fx = fixture_models.get("siamese")
    source = load(fx.path, custom_objects=str(fx.custom_objects))
    entries = layer_outputs(source)
    keys = [e.key for e in entries]
    assert keys == ["base_network/base_dense_1", "base_network/base_dropout",
                    "base_network/base_dense_2", "base_network#2/base_dense_1",
                    "base_network#2/base_dropout", "base_network#2/base_dense_2", "distance"]
    by_key = {e.key: e for e in entries}
    assert by_key["base_network#2/base_dense_1"].inputs == ["input_b"]
    assert by_key["distance"].inputs == ["base_network/base_dense_2",
                                         "base_network#2/base_dense_2"]
    assert by_key["distance"].model_output == "distance"
    assert by_key["base_network/base_dense_1"].scope == ("base_network", "base_dense_1")
    feeds = _feeds(source)
    values = layer_values(source, feeds, entries)
    # the towers see different inputs, so the two calls differ; the last layer is the output
    assert not np.allclose(values["base_network/base_dense_2"],
                           values["base_network#2/base_dense_2"])
    np.testing.assert_array_equal(values["distance"], source.predict(feeds)["distance"])
    # each call's first layer, recomputed by hand from its own input
    dense = source.model.get_layer("base_network").get_layer("base_dense_1")
    k, b = dense.get_weights()
    np.testing.assert_allclose(values["base_network#2/base_dense_1"],
                               np.maximum(feeds["input_b"] @ k + b, 0), rtol=1e-5, atol=1e-6)
    assert keys_by_depth(entries)["distance"] == 4


def test_keras3_shared_layer_and_multiple_outputs(tmp_path):
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    shared = layers.Dense(3, activation="tanh", name="shared")
    ya, yb = shared(a), shared(b)
    seq = layers.Reshape((3, 1), name="seq")(layers.Add(name="add")([ya, yb]))
    lstm_out, h, c = layers.LSTM(2, return_state=True, name="lstm")(seq)
    model = keras.Model([a, b], [lstm_out, c], name="m")
    path = tmp_path / "m.keras"
    model.save(path)
    source = load(path)
    entries = layer_outputs(source)
    keys = [e.key for e in entries]
    assert keys[:2] == ["shared", "shared#2"]
    assert {"add", "seq", "lstm", "lstm:1", "lstm:2"} <= set(keys)
    outputs = {e.key: e.model_output for e in entries if e.model_output}
    assert outputs == {"lstm": source.output_names[0], "lstm:2": source.output_names[1]}
    feeds = _feeds(source, seed=1)
    values = layer_values(source, feeds, entries)
    assert values["lstm:1"].shape == (3, 2)
    predicted = source.predict(feeds)
    np.testing.assert_allclose(values["lstm:2"], predicted[source.output_names[1]],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values["add"], values["shared"] + values["shared#2"],
                               rtol=1e-6, atol=1e-6)
