"""The input domains a model declares through its first layers, read from live Keras 3 and
tf_keras models: Rescaling, Normalization, Embedding, CategoryEncoding, Discretization,
IntegerLookup, through pass-through layers and nested models."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from modelport.loading.domain import input_domains


def _only(model):
    domains = input_domains(model)
    assert len(domains) == 1, domains
    return next(iter(domains.values()))


@pytest.mark.parametrize("scale,offset,high", [
    (1 / 255, 0.0, 255.0),  # pixels -> [0, 1]
    (1 / 127.5, -1.0, 255.0),  # pixels -> [-1, 1] (MobileNet-style)
    (1 / 58.4, -123.7 / 58.4, 2 * 123.7),  # ImageNet mean/std written as a Rescaling
    (255.0, 0.0, 1.0),  # a magnifying Rescaling takes unit-range values
])
def test_rescaling_declares_the_range_it_maps_from(scale, offset, high):
    import keras

    inp = keras.Input((4, 4, 3))
    out = keras.layers.Conv2D(2, 3)(keras.layers.Rescaling(scale, offset, name="r")(inp))
    d = _only(keras.Model(inp, out))
    assert d.kind == "uniform" and d.low == 0.0
    assert d.high == pytest.approx(high, rel=1e-6)
    assert "Rescaling 'r'" in d.reason


def test_normalization_declares_its_mean_and_spread_per_channel_in_both_frameworks():
    import keras
    import tf_keras

    for k in (keras, tf_keras):
        inp = k.Input((5, 3))
        norm = k.layers.Normalization(mean=[1.0, -2.0, 30.0], variance=[4.0, 1.0, 9.0], name="n")
        d = _only(k.Model(inp, k.layers.Dense(2)(norm(inp))))
        assert d.kind == "normal" and "Normalization 'n'" in d.reason
        np.testing.assert_allclose(np.ravel(d.mean), [1.0, -2.0, 30.0])
        np.testing.assert_allclose(np.ravel(d.std), [2.0, 1.0, 3.0])


def test_an_inverting_normalization_declares_nothing():
    import keras

    inp = keras.Input((3,))
    norm = keras.layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 1.0, 1.0],
                                      invert=True)
    assert input_domains(keras.Model(inp, norm(inp))) == {}


def test_the_walk_passes_augmentation_and_nested_models_to_the_declaring_layer():
    import keras
    from keras import layers

    aug = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)])
    base = keras.Sequential([keras.Input((8, 8, 3)), layers.Rescaling(1 / 127.5, -1, name="pre"),
                             layers.Conv2D(2, 3)])
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, layers.Dense(2)(layers.Flatten()(base(aug(inp)))))
    d = _only(model)
    assert d.kind == "uniform" and d.high == pytest.approx(255.0) and "'pre'" in d.reason


def test_a_layer_that_changes_values_ends_the_walk():
    import keras
    from keras import layers

    inp = keras.Input((6,))
    out = layers.Rescaling(1 / 255)(layers.Dense(6)(inp))  # the Rescaling reads Dense outputs
    assert input_domains(keras.Model(inp, out)) == {}


def test_ids_and_vocabularies():
    import keras
    import tf_keras
    from keras import layers

    a = keras.Input((4,), name="a")
    b = keras.Input((3,), dtype="int32", name="b")
    c = keras.Input((2,), dtype="int64", name="c")
    e = keras.Input((5,), name="e")
    outs = [layers.Discretization(bin_boundaries=[0.0, 1.0, 2.0])(a),
            layers.CategoryEncoding(num_tokens=7, output_mode="multi_hot")(b),
            layers.IntegerLookup(vocabulary=[12, 36, 1138, 42])(c),
            layers.Embedding(30, 2)(e)]
    d = input_domains(keras.Model([a, b, c, e], outs))
    assert d["a"].kind == "uniform" and d["a"].low < 0.0 and d["a"].high > 2.0
    assert (d["b"].kind, d["b"].low, d["b"].high) == ("integers", 0, 7)
    assert d["c"].kind == "values" and sorted(d["c"].values) == [12, 36, 42, 1138]
    assert (d["e"].kind, d["e"].high) == ("integers", 30)
    t = tf_keras.Input((5,))
    d = _only(tf_keras.Model(t, tf_keras.layers.Embedding(11, 2)(t)))
    assert (d.kind, d.high) == ("integers", 11)


def test_keras_applications_declare_pixels():
    import keras

    effnet = _only(keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3)))
    assert effnet.describe() == "uniform [0, 255]"
    assert input_domains(keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3))) == {}
