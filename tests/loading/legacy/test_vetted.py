"""The vetted functions keep the *old* APIs' semantics; each is checked against TensorFlow's
own op or the old formula."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.loading.legacy.recovery.vetted import FUNCTIONS, canonical

from tests.loading.legacy.test_recovery import _tf1_bilinear

RNG = np.random.default_rng(5)
X = RNG.standard_normal((2, 4, 6, 3)).astype(np.float32)


def f(name):
    return FUNCTIONS[name]


def test_keras2_sqrt_clips_negatives_and_hard_sigmoid_has_slope_0_2():
    x = np.array([-4.0, -1.0, 0.0, 1.0, 4.0], np.float32)
    np.testing.assert_allclose(np.asarray(f("keras.backend.sqrt")(x)), [0, 0, 0, 1, 2])
    np.testing.assert_allclose(np.asarray(f("keras.backend.hard_sigmoid")(x)),
                               np.clip(0.2 * x + 0.5, 0, 1))


def test_keras2_relu_variants():
    x = np.array([-2.0, 0.5, 1.0, 3.0, 8.0], np.float32)
    relu = f("keras.backend.relu")
    np.testing.assert_allclose(np.asarray(relu(x, alpha=0.1)), np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(np.asarray(relu(x, max_value=6.0)), np.clip(x, 0, 6))
    np.testing.assert_allclose(np.asarray(relu(x, alpha=0.5, threshold=1.0)),
                               np.where(x > 1, x, 0.5 * (x - 1)))


@pytest.mark.parametrize("name", ["space_to_depth", "depth_to_space"])
def test_space_depth_match_tensorflow(name):
    import tensorflow as tf

    x = X if name == "space_to_depth" else RNG.standard_normal((2, 2, 3, 8)).astype(np.float32)
    want = getattr(tf.nn, name)(x, 2).numpy()
    np.testing.assert_array_equal(np.asarray(f(f"tensorflow.nn.{name}")(x, block_size=2)), want)


def test_l2_normalize_matches_tensorflow():
    import tensorflow as tf

    for axis in (-1, 1, [1, 2]):
        want = tf.math.l2_normalize(X, axis=axis).numpy()
        np.testing.assert_allclose(np.asarray(f("tensorflow.nn.l2_normalize")(X, axis=axis)),
                                   want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(f("tensorflow.nn.l2_normalize")(X, dim=2)),
                               tf.math.l2_normalize(X, axis=2).numpy(), rtol=1e-5, atol=1e-6)


def test_tf1_resizes_use_tf1_pixel_centres():
    img = X[:, :2, :3]
    for name in ("tensorflow.image.resize_images", "tensorflow.image.resize_bilinear"):
        np.testing.assert_allclose(np.asarray(f(name)(img, (4, 6))), _tf1_bilinear(img, 4, 6),
                                   rtol=1e-5, atol=1e-6)
    nearest = np.asarray(f("tensorflow.image.resize_nearest_neighbor")(img, (4, 6)))
    np.testing.assert_array_equal(nearest, img.repeat(2, axis=1).repeat(2, axis=2))
    # TF 2's resize uses half-pixel centres: a different result
    assert np.abs(np.asarray(f("tensorflow.image.resize")(img, (4, 6)))
                  - _tf1_bilinear(img, 4, 6)).max() > 1e-2


def test_keras2_resize_images_repeats_for_nearest():
    np.testing.assert_array_equal(
        np.asarray(f("keras.backend.resize_images")(X, 2, 3, "channels_last")),
        X.repeat(2, axis=1).repeat(3, axis=2))
    first = np.transpose(X, (0, 3, 1, 2))
    np.testing.assert_array_equal(
        np.asarray(f("keras.backend.resize_images")(first, 2, 2, "channels_first")),
        first.repeat(2, axis=2).repeat(2, axis=3))


def test_tf1_argument_spellings():
    np.testing.assert_allclose(
        np.asarray(f("tensorflow.reduce_sum")(X, reduction_indices=[1, 2], keep_dims=True)),
        X.sum(axis=(1, 2), keepdims=True), rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(f("tensorflow.expand_dims")(X, dim=0)), X[None])


@pytest.mark.parametrize("spelled, name", [
    ("tensorflow.math.reduce_mean", "tensorflow.reduce_mean"),
    ("tensorflow.compat.v1.nn.relu", "tensorflow.nn.relu"),
    ("tensorflow.keras.backend.mean", "keras.backend.mean"),
    ("keras.backend.tf.image.resize_images", "tensorflow.image.resize_images"),
    ("tensorflow.compat.v1.image.resize", "tensorflow.image.resize_images"),
])
def test_canonical_spellings(spelled, name):
    assert canonical(spelled) == name and name in FUNCTIONS
