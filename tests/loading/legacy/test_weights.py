"""Weight conversions, each checked against Keras' own implementation of the same change
(tf_keras still carries Keras 2's ``preprocess_weights_for_loading``), and end to end."""

from __future__ import annotations

import copy
import json

import h5py
import numpy as np
import pytest

from modelport.loading.legacy import weights as W
from modelport.loading.legacy.upgrade import STAMP_VERSION, needs_weight_upgrade, upgrade_config, \
    upgrade_weights
from modelport.loading.modelfile import read_model_file

from tests.loading.legacy.oldfiles import load_upgraded, write_h5

RNG = np.random.default_rng(3)


def arrays(*shapes):
    return [RNG.standard_normal(s).astype(np.float32) for s in shapes]


def tfk_preprocess(layer, weights, version="1"):
    from tf_keras.src.saving.legacy import hdf5_format

    return hdf5_format.preprocess_weights_for_loading(layer, [w.copy() for w in weights], version)


def built(layer, shape):
    layer.build(shape)
    return layer


def keras2_convert_kernel(kernel):
    """Keras 2.x ``conv_utils.convert_kernel``, verbatim in spirit (gone from tf_keras)."""
    slices = [slice(None, None, -1) for _ in range(kernel.ndim)]
    slices[-2:] = (slice(None, None), slice(None, None))
    return np.copy(kernel[tuple(slices)])


def test_convert_kernel_flips_spatial_axes_only():
    convert_kernel = keras2_convert_kernel
    for shape in [(3, 4, 5), (3, 2, 4, 5), (2, 3, 2, 4, 5)]:
        k = arrays(shape)[0]
        np.testing.assert_array_equal(W.convert_kernel(k), convert_kernel(k))
        assert not np.array_equal(W.convert_kernel(k), k)


def test_keras1_lstm_matches_keras():
    import tf_keras

    layer = built(tf_keras.layers.LSTM(5), (None, 7, 3))
    w = arrays(*[(3, 5), (5, 5), (5,)] * 4)  # i, c, f, o
    for got, want in zip(W.keras1_lstm(w), tfk_preprocess(layer, w)):
        np.testing.assert_array_equal(got, want)


def test_keras1_gru_matches_keras():
    import tf_keras

    layer = built(tf_keras.layers.GRU(4, reset_after=False), (None, 7, 3))
    w = arrays(*[(3, 4), (4, 4), (4,)] * 3)
    for got, want in zip(W.keras1_gru(w), tfk_preprocess(layer, w)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("stored", [(3, 1, 6, 8), (8, 6, 3, 1)])  # Keras 1.2 and Keras 1.1
def test_keras1_conv1d_matches_keras(stored):
    import tf_keras

    layer = built(tf_keras.layers.Conv1D(8, 3), (None, 10, 6))
    k = arrays(stored)[0]
    np.testing.assert_array_equal(W.keras1_conv1d(k, 3), tfk_preprocess(layer, [k])[0])


def test_keras1_channels_first_kernel_matches_keras():
    import tf_keras

    layer = built(tf_keras.layers.Conv2D(4, (3, 2), data_format="channels_first"),
                  (None, 2, 6, 5))
    k = arrays((4, 2, 3, 2))[0]
    np.testing.assert_array_equal(W.keras1_channels_first_kernel(k), tfk_preprocess(layer, [k])[0])


@pytest.mark.parametrize("cls, gates", [("LSTM", 4), ("GRU", 3)])
def test_cudnn_weights_match_keras(cls, gates):
    import tf_keras

    units, dim = 5, 3
    target = (tf_keras.layers.LSTM(units) if cls == "LSTM"
              else tf_keras.layers.GRU(units, reset_after=True))
    built(target, (None, 7, dim))
    w = arrays((dim, gates * units), (units, gates * units), (2 * gates * units,))
    ours = W.cudnn_lstm(w) if cls == "LSTM" else W.cudnn_gru(w)
    from tf_keras.src.saving.legacy.hdf5_format import _convert_rnn_weights

    for got, want in zip(ours, _convert_rnn_weights(target, [a.copy() for a in w])):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def keras1_lstm_file(tmp_path):
    config = {"class_name": "Sequential", "config": [
        {"class_name": "LSTM", "config": {
            "name": "lstm_1", "output_dim": 5, "inner_activation": "hard_sigmoid",
            "activation": "tanh", "batch_input_shape": [None, 6, 3], "input_dtype": "float32",
            "input_dim": 3, "input_length": None, "return_sequences": False,
            "consume_less": "cpu", "forget_bias_init": "one", "init": "glorot_uniform",
            "inner_init": "orthogonal", "dropout_W": 0.0, "dropout_U": 0.0}},
        {"class_name": "Dense", "config": {"name": "dense_1", "output_dim": 2, "input_dim": 5,
                                           "activation": "linear", "bias": True}}]}
    gates = "icfo"
    lstm = []
    for g in gates:
        lstm += [(f"lstm_1_W_{g}", arrays((3, 5))[0]), (f"lstm_1_U_{g}", arrays((5, 5))[0]),
                 (f"lstm_1_b_{g}", arrays((5,))[0])]
    weights = {"lstm_1": lstm, "dense_1": [("dense_1_W", arrays((5, 2))[0]),
                                           ("dense_1_b", arrays((2,))[0])]}
    return write_h5(tmp_path / "keras1_lstm.h5", config, weights)


def test_upgrade_weights_rewrites_groups_and_stamps(tmp_path):
    path = keras1_lstm_file(tmp_path)
    raw = read_model_file(path)
    config = copy.deepcopy(raw.config)
    upgrade_config(raw, config)
    assert needs_weight_upgrade(raw, config)
    with h5py.File(path, "r+") as f:
        notes = upgrade_weights(raw, config, f)
        g = f["model_weights"]
        assert g.attrs["keras_version"] in (STAMP_VERSION, STAMP_VERSION.decode())
        names = [n.decode() for n in g["lstm_1"].attrs["weight_names"]]
        assert names == ["lstm_1/kernel:0", "lstm_1/recurrent_kernel:0", "lstm_1/bias:0"]
        assert g["lstm_1"]["lstm_1/kernel:0"].shape == (3, 20)
        assert "lstm_1_W_i" not in g["lstm_1"]
        assert [n.decode() for n in g["dense_1"].attrs["weight_names"]] == ["dense_1_W",
                                                                           "dense_1_b"]
    assert notes == ["weights converted to the Keras 2 layout for: lstm_1"]


@pytest.mark.parametrize("framework", ["tf_keras", "keras3"])
def test_keras1_lstm_file_matches_tf_keras_own_keras1_conversion(tmp_path, framework):
    """Reference: tf_keras builds the upgraded config and converts the *original* Keras 1
    arrays itself; both loaders must compute the same from modelport's converted copy
    (Keras 3 with ``compat_objects``: its own hard_sigmoid has another slope)."""
    import tf_keras
    from tf_keras.src.saving.legacy import hdf5_format

    from modelport.loading.legacy.upgrade import compat_objects

    path = keras1_lstm_file(tmp_path)
    raw = read_model_file(path)
    config = copy.deepcopy(raw.config)
    upgrade_config(raw, config)
    ref = tf_keras.models.model_from_json(json.dumps(config))
    with h5py.File(path, "r") as f:
        hdf5_format.load_weights_from_hdf5_group(f["model_weights"], ref)
    x = RNG.standard_normal((4, 6, 3)).astype(np.float32) * 3
    custom = compat_objects(raw) if framework == "keras3" else {}
    model = load_upgraded(path, framework, tmp_path, custom)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(ref(x)), atol=1e-5)
    if framework == "keras3":  # without the compat objects Keras 3 computes something else
        plain = load_upgraded(path, framework, tmp_path)
        assert np.abs(np.asarray(plain(x)) - np.asarray(ref(x))).max() > 1e-3
