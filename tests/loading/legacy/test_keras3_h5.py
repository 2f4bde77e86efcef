"""Keras 3 ``.h5`` files that stock Keras 3 cannot reload: each repair, from a model built
with Keras 3 code, loads and computes what the model that was saved computes."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from modelport.loading.legacy import keras3_h5
from modelport.loading.modelfile import read_model_file
from modelport.loading.source import load


def _attention():
    import keras

    q, v = keras.Input((5, 4), name="q"), keras.Input((6, 4), name="v")
    return keras.Model([q, v], keras.layers.Attention(name="att")([q, v]))


def _mha_residual():
    import keras

    x = keras.Input((5, 8), name="x")
    y = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(x, x)
    return keras.Model(x, keras.layers.LayerNormalization(name="norm")(x + y))  # ops.add


def _masked_embedding():
    import keras

    ids = keras.Input((6,), dtype="int32", name="ids")
    x = keras.layers.Embedding(20, 4, mask_zero=True, name="emb")(ids)  # ops.not_equal
    return keras.Model(ids, keras.layers.LSTM(3, name="lstm")(x))


def _ops_and_layers_of_the_same_name():
    import keras
    from keras import ops

    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    layer_sum = keras.layers.Add(name="add_layer")([a, b])  # the layer, called with a list
    op_sum = a + b  # the operation of the same class name, called with two tensors
    y = ops.concatenate([ops.softmax(layer_sum, axis=-1), ops.cast(op_sum, "float32")], -1)
    return keras.Model([a, b], ops.mean(ops.reshape(y, (-1, 2, 4)), axis=1))


def _feeds(model, rng):
    feeds = {}
    for t in model.inputs:
        shape = (3, *t.shape[1:])
        feeds[t.name] = rng.integers(0, 20, shape).astype("int32") if "int" in t.dtype \
            else rng.normal(size=shape).astype("float32")
    if "ids" in feeds:
        feeds["ids"][:, 4:] = 0  # padded ids: the mask matters
    return feeds


@pytest.mark.parametrize("build, repair", [
    (_attention, "keras3_h5_function_strings"),
    (_mha_residual, "keras3_h5_operations"),
    (_masked_embedding, "keras3_h5_operations"),
    (_ops_and_layers_of_the_same_name, "keras3_h5_operations"),
])
def test_stock_keras3_cannot_reload_it_modelport_does_and_computes_the_same(tmp_path, build,
                                                                             repair):
    import keras

    keras.utils.set_random_seed(7)
    model = build()
    path = tmp_path / "m.h5"
    model.save(path)
    with pytest.raises(Exception):  # Keras 3's own .h5 reader: the bug being repaired
        keras.saving.load_model(path, compile=False)
    src = load(path)
    assert src.framework == "keras3"
    assert any(w.startswith(f"upgrade {repair}:") for w in src.warnings)
    feeds = _feeds(model, np.random.default_rng(0))
    want = np.asarray(model([feeds[n] for n in src.input_names] if len(feeds) > 1
                            else feeds[src.input_names[0]]))
    got = src.predict(feeds)[src.output_names[0]]
    assert np.std(want) > 0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_repairs_are_gated_on_a_keras3_h5_and_on_what_keras3_writes(tmp_path):
    import keras

    model = _ops_and_layers_of_the_same_name()
    model.save(tmp_path / "m.h5")
    raw = read_model_file(tmp_path / "m.h5")
    config = copy.deepcopy(raw.config)
    objects, notes = keras3_h5.repair(raw, config)
    classes = sorted(l["class_name"] for l in config["config"]["layers"])
    # the layer keeps its name, the operation of the same class name is named by module
    assert "Add" in classes and "keras.src.ops>Add" in classes
    assert "keras.src.ops>Cast" in classes  # an operation whose config has a dtype
    assert objects["keras.src.ops>Add"] is keras.src.ops.numpy.Add
    assert [n.split(":")[0] for n in notes] == ["upgrade keras3_h5_operations"]
    for version in ("2.15.0", "1.2.2"):  # the same config recorded by an older Keras
        older = copy.deepcopy(raw)
        older.keras_version = version
        assert keras3_h5.repair(older, copy.deepcopy(raw.config)) == ({}, [])
    model.save(tmp_path / "m.keras")
    keras_file = read_model_file(tmp_path / "m.keras")
    assert keras3_h5.repair(keras_file, copy.deepcopy(keras_file.config)) == ({}, [])


def test_an_authors_class_without_trainable_is_left_for_the_custom_object_check():
    layer = {"class_name": "MyOp", "config": {"name": "my_op"}, "name": "my_op",
             "inbound_nodes": []}
    config = {"class_name": "Functional", "config": {"name": "m", "layers": [layer]}}
    objects: dict = {}
    assert keras3_h5.operations(config, objects) == [] and objects == {}
    assert layer["class_name"] == "MyOp"


def test_public2_attention_model_loads(tmp_path):
    from tests.paths import CORPUS2

    path = CORPUS2 / "StylianosIoannou__INM706-Code__attention_model.h5"
    if not path.is_file():
        pytest.skip(f"corpus not found at {CORPUS2}")
    src = load(Path(path))
    assert any("keras3_h5_function_strings" in w for w in src.warnings)
