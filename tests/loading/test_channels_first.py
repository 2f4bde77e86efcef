"""The channels_first fixture: modelport's NHWC-wrapped reference must equal the same model
run unwrapped under XLA (which implements NCHW on CPU) and an independent numpy forward
pass, and the fixture must actually be sensitive to the layout."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.validators.inputs import generate_inputs

ATOL = 1e-4


@pytest.fixture(scope="module")
def cf(fixture_models):
    from modelport.loading.source import load

    fx = fixture_models.get("cnn_cf")
    source = load(fx.path)
    feeds = generate_inputs(source.inputs, samples=3, seed=7)
    return fx, source, feeds


def test_loader_reports_nchw(cf) -> None:
    fx, source, _ = cf
    assert fx.data_format == "channels_first"
    assert source.data_format == "channels_first"
    assert source.layout == {"image": "NCHW"}
    assert source.inputs[0].shape == [None, 3, 16, 12]


def test_wrapped_reference_equals_xla(cf) -> None:
    import keras
    import tensorflow as tf

    fx, source, feeds = cf
    plain = keras.saving.load_model(fx.path, compile=False)  # not wrapped by modelport
    xla = tf.function(lambda x: plain(x, training=False), jit_compile=True)
    want = np.asarray(xla(tf.constant(feeds["image"])))
    got = source.predict(feeds)["logits"]
    assert float(np.std(want, axis=0).max()) > 1e-2
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


def _conv_nchw(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: tuple[int, int],
               pad: bool) -> np.ndarray:
    """Cross-correlation of NCHW ``x`` with an HWIO kernel (Keras' storage order)."""
    kh, kw, _, _ = kernel.shape
    if pad:  # "same" with odd kernels and stride 1
        x = np.pad(x, ((0, 0), (0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
    n, _, h, w = x.shape
    oh, ow = (h - kh) // stride[0] + 1, (w - kw) // stride[1] + 1
    out = np.zeros((n, kernel.shape[3], oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + stride[0] * oh:stride[0], j:j + stride[1] * ow:stride[1]]
            out += np.einsum("nchw,co->nohw", patch, kernel[i, j])
    return out + bias[None, :, None, None]


def test_wrapped_reference_equals_numpy(cf) -> None:
    import keras

    fx, source, feeds = cf
    plain = keras.saving.load_model(fx.path, compile=False)
    w = {layer.name: [np.asarray(v, dtype=np.float64) for v in layer.get_weights()]
         for layer in plain.layers}
    x = feeds["image"].astype(np.float64)
    x = np.maximum(_conv_nchw(x, *w["conv1"], stride=(1, 1), pad=True), 0.0)
    n, c, h, wd = x.shape
    x = x[:, :, : h // 2 * 2, : wd // 2 * 2].reshape(n, c, h // 2, 2, wd // 2, 2).max(axis=(3, 5))
    x = np.tanh(_conv_nchw(x, *w["conv2"], stride=(1, 2), pad=False))
    # Keras' channels_first Flatten moves channels last first (so the Dense weights are
    # those of the channels_last twin)
    x = x.transpose(0, 2, 3, 1).reshape(n, -1)
    want = x @ w["logits"][0] + w["logits"][1]
    got = source.predict(feeds)["logits"]
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


def test_fixture_is_layout_sensitive(cf) -> None:
    """Feeding NHWC-ordered data (or swapped channels) must change the answer, otherwise
    the parity tests could not catch a layout bug."""
    _, source, feeds = cf
    base = source.predict(feeds)["logits"]
    image = feeds["image"]
    rolled = {"image": np.roll(image, 1, axis=1)}
    assert np.abs(source.predict(rolled)["logits"] - base).max() > 1e-2
    flipped = {"image": image[:, :, ::-1, :].copy()}
    assert np.abs(source.predict(flipped)["logits"] - base).max() > 1e-2
