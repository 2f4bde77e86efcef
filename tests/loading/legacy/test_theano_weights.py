"""Theano kernels, proven with numbers: files written the way Keras 1 / Keras 2 on Theano
stored them load through modelport and compute what Theano computed."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.loading.legacy.upgrade import BACKEND_ENV
from modelport.loading.source import load

from tests.loading.legacy.oldfiles import load_upgraded, true_conv2d_nchw, write_h5, xcorr2d_nchw

RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 2, 6, 5)).astype(np.float32)  # NCHW
W_TH = RNG.standard_normal((4, 2, 3, 2)).astype(np.float32)  # Keras 1 'th': (out, in, rows, cols)
B = RNG.standard_normal(4).astype(np.float32)
DENSE_W = RNG.standard_normal((4 * 4 * 4, 3)).astype(np.float32)
DENSE_B = RNG.standard_normal(3).astype(np.float32)


def keras1_th_config() -> dict:
    return {"class_name": "Sequential", "config": [
        {"class_name": "Convolution2D", "config": {
            "name": "convolution2d_1", "trainable": True, "batch_input_shape": [None, 2, 6, 5],
            "input_dtype": "float32", "nb_filter": 4, "nb_row": 3, "nb_col": 2,
            "init": "glorot_uniform", "activation": "linear", "border_mode": "valid",
            "subsample": [1, 1], "dim_ordering": "th", "W_regularizer": None,
            "b_regularizer": None, "activity_regularizer": None, "W_constraint": None,
            "b_constraint": None, "bias": True}},
        {"class_name": "Flatten", "config": {"name": "flatten_1", "trainable": True}},
        {"class_name": "Dense", "config": {
            "name": "dense_1", "trainable": True, "output_dim": 3, "init": "glorot_uniform",
            "activation": "linear", "input_dim": 64, "bias": True, "W_regularizer": None,
            "b_regularizer": None, "activity_regularizer": None, "W_constraint": None,
            "b_constraint": None}}]}


def keras1_th_file(tmp_path):
    weights = {"convolution2d_1": [("convolution2d_1_W", W_TH), ("convolution2d_1_b", B)],
               "dense_1": [("dense_1_W", DENSE_W), ("dense_1_b", DENSE_B)]}
    return write_h5(tmp_path / "keras1_th.h5", keras1_th_config(), weights)


def theano_reference(x: np.ndarray) -> np.ndarray:
    conv = true_conv2d_nchw(x, W_TH, B)  # (n, 4, 4, 4), flattened in (C, H, W) order
    return conv.reshape(len(x), -1) @ DENSE_W + DENSE_B


def predict(src, x: np.ndarray) -> np.ndarray:
    return next(iter(src.predict({src.input_names[0]: x}).values()))


def test_keras1_theano_conv_flatten_dense_matches_theano_maths(tmp_path, monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    src = load(keras1_th_file(tmp_path))
    assert src.data_format == "channels_first" and src.input_names == ["convolution2d_1_input"]
    assert any("Theano is assumed" in w for w in src.warnings)
    got = predict(src, X)
    np.testing.assert_allclose(got, theano_reference(X), rtol=1e-4, atol=1e-4)
    # the same kernels read as a cross-correlation give clearly different numbers
    wrong = xcorr2d_nchw(X, W_TH, B).reshape(len(X), -1) @ DENSE_W + DENSE_B
    assert np.abs(got - wrong).max() > 0.5


def test_declared_tensorflow_backend_keeps_kernels_as_stored(tmp_path, monkeypatch):
    monkeypatch.setenv(BACKEND_ENV, "tensorflow")
    got = predict(load(keras1_th_file(tmp_path)), X)
    expected = xcorr2d_nchw(X, W_TH, B).reshape(len(X), -1) @ DENSE_W + DENSE_B
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_keras2_theano_backend_channels_last_is_flipped(tmp_path):
    """Keras 2 on Theano stored (rows, cols, in, out) kernels but still convolved for real."""
    import tf_keras

    kernel_hwio = np.transpose(W_TH, (2, 3, 1, 0))
    config = {"class_name": "Sequential", "config": [
        {"class_name": "Conv2D", "config": {
            "name": "conv2d_1", "batch_input_shape": [None, 6, 5, 2], "dtype": "float32",
            "filters": 4, "kernel_size": [3, 2], "strides": [1, 1], "padding": "valid",
            "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "linear",
            "use_bias": True}}]}
    path = write_h5(tmp_path / "keras2_theano.h5", config,
                    {"conv2d_1": [("conv2d_1/kernel:0", kernel_hwio), ("conv2d_1/bias:0", B)]},
                    keras_version="2.1.3", backend="theano")
    got = predict(load(path), np.transpose(X, (0, 2, 3, 1)))
    expected = np.transpose(true_conv2d_nchw(X, W_TH, B), (0, 2, 3, 1))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # stock tf_keras no longer flips Theano kernels: it computes the cross-correlation
    stock = tf_keras.models.load_model(path, compile=False)
    stock_out = np.asarray(stock(np.transpose(X, (0, 2, 3, 1))))
    assert np.abs(stock_out - expected).max() > 0.5


def test_flip_matches_a_keras_built_channels_last_model(tmp_path, monkeypatch):
    """The converted th kernel is exactly what a channels_last Keras model needs."""
    import tf_keras

    monkeypatch.delenv(BACKEND_ENV, raising=False)
    ref = tf_keras.Sequential([tf_keras.layers.Conv2D(4, (3, 2), input_shape=(6, 5, 2))])
    # Theano's stored kernel K_th computes conv(x, K_th) = xcorr(x, flip(K_th))
    ref.layers[0].set_weights([np.transpose(W_TH[:, :, ::-1, ::-1], (2, 3, 1, 0)), B])
    expected = np.transpose(np.asarray(ref(np.transpose(X, (0, 2, 3, 1)))), (0, 3, 1, 2))
    config = keras1_th_config()
    config["config"] = config["config"][:1]
    path = write_h5(tmp_path / "conv_only.h5", config,
                    {"convolution2d_1": [("convolution2d_1_W", W_TH), ("convolution2d_1_b", B)]})
    np.testing.assert_allclose(predict(load(path), X), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("framework", ["tf_keras", "keras3"])
def test_both_loaders_read_the_converted_file(tmp_path, monkeypatch, framework):
    """The patched copy is loader-neutral: the fallback loader computes the same."""
    from modelport.loading.channels_first import patch_channels_first

    monkeypatch.delenv(BACKEND_ENV, raising=False)
    model = load_upgraded(keras1_th_file(tmp_path), framework, tmp_path)
    patch_channels_first(model)
    np.testing.assert_allclose(np.asarray(model(X)), theano_reference(X), rtol=1e-4, atol=1e-4)
