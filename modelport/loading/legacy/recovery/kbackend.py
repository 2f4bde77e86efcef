"""Keras 1/2 backend functions (``K.*``) reimplemented with ``keras.ops``.

Parameter names are the old ones, so a recovered call binds exactly as it did; where
the old semantics differ from ``keras.ops`` (``K.sqrt`` clipped negatives to 0,
``K.hard_sigmoid`` had slope 0.2) the old behaviour is kept.
"""

from __future__ import annotations

import math
from typing import Any, Callable

def keras_ops() -> Any:
    import keras

    return keras.ops


def axis_arg(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def either(new: Any, old: Any, default: Any = None) -> Any:
    """TF 1 spelled some arguments differently (``keep_dims``, ``dim``); either works."""
    return new if new is not None else old if old is not None else default


# ------------------------------------------------------------------ keras.backend (K.*)


def k_mean(x, axis=None, keepdims=False):
    x = keras_ops().cast(x, "float32") if str(getattr(x, "dtype", "")) == "bool" else x
    return keras_ops().mean(x, axis=axis_arg(axis), keepdims=keepdims)


def k_sum(x, axis=None, keepdims=False):
    return keras_ops().sum(x, axis=axis_arg(axis), keepdims=keepdims)


def k_max(x, axis=None, keepdims=False):
    return keras_ops().max(x, axis=axis_arg(axis), keepdims=keepdims)


def k_min(x, axis=None, keepdims=False):
    return keras_ops().min(x, axis=axis_arg(axis), keepdims=keepdims)


def k_prod(x, axis=None, keepdims=False):
    return keras_ops().prod(x, axis=axis_arg(axis), keepdims=keepdims)


def k_var(x, axis=None, keepdims=False):
    return keras_ops().var(x, axis=axis_arg(axis), keepdims=keepdims)


def k_std(x, axis=None, keepdims=False):
    return keras_ops().std(x, axis=axis_arg(axis), keepdims=keepdims)


def k_sqrt(x):
    return keras_ops().sqrt(keras_ops().maximum(x, 0.0))  # Keras 1/2 clipped to [0, inf) first


def k_concatenate(tensors, axis=-1):
    return keras_ops().concatenate(list(tensors), axis=axis)


def k_reshape(x, shape):
    return keras_ops().reshape(x, tuple(shape))


def k_expand_dims(x, axis=-1):
    return keras_ops().expand_dims(x, axis)


def k_squeeze(x, axis):
    return keras_ops().squeeze(x, axis)


def k_permute_dimensions(x, pattern):
    return keras_ops().transpose(x, tuple(pattern))


def k_transpose(x):
    return keras_ops().transpose(x)


def k_stack(x, axis=0):
    return keras_ops().stack(list(x), axis=axis)


def l2_normalize(x, axis=None, epsilon=1e-12):
    ops = keras_ops()
    square_sum = ops.sum(ops.square(x), axis=axis_arg(axis), keepdims=True)
    return x * ops.rsqrt(ops.maximum(square_sum, epsilon))


def k_l2_normalize(x, axis=None):
    return l2_normalize(x, axis)


def k_clip(x, min_value, max_value):
    if max_value is not None and min_value is not None and max_value < min_value:
        max_value = min_value
    return keras_ops().clip(x, min_value, math.inf if max_value is None else max_value)


def k_pow(x, a):
    return keras_ops().power(x, a)


def k_relu(x, alpha=0.0, max_value=None, threshold=0.0):
    ops = keras_ops()
    if alpha or threshold:
        y = ops.where(x > threshold, x, alpha * (x - threshold))  # 0 at the threshold
    else:
        y = ops.relu(x)
    return y if max_value is None else ops.minimum(y, max_value)


def k_hard_sigmoid(x):
    return keras_ops().clip(0.2 * x + 0.5, 0.0, 1.0)  # Keras 1/2 slope, not Keras 3's 1/6


def k_softmax(x, axis=-1):
    return keras_ops().softmax(x, axis=axis)


def k_elu(x, alpha=1.0):
    return keras_ops().elu(x, alpha)


def k_dot(x, y):
    if len(getattr(y, "shape", ())) > 2:
        raise ValueError("K.dot with an N-D right operand is not in the vetted subset")
    return keras_ops().matmul(x, y)


def k_cast(x, dtype):
    return keras_ops().cast(x, dtype)


def k_tile(x, n):
    return keras_ops().tile(x, n)


def k_repeat_elements(x, rep, axis):
    return keras_ops().repeat(x, rep, axis=axis)


def k_repeat(x, n):
    return keras_ops().repeat(keras_ops().expand_dims(x, 1), n, axis=1)


def k_flatten(x):
    return keras_ops().reshape(x, (-1,))


def k_batch_flatten(x):
    return keras_ops().reshape(x, (-1, int(math.prod(int(d) for d in x.shape[1:]))))


def k_gather(reference, indices):
    return keras_ops().take(reference, keras_ops().cast(indices, "int32"), axis=0)


def k_argmax(x, axis=-1):
    return keras_ops().argmax(x, axis=axis)


def k_argmin(x, axis=-1):
    return keras_ops().argmin(x, axis=axis)


def k_cumsum(x, axis=0):
    return keras_ops().cumsum(x, axis=axis)


def k_one_hot(indices, num_classes):
    return keras_ops().one_hot(keras_ops().cast(indices, "int32"), num_classes)


def k_int_shape(x):
    return tuple(None if d is None else int(d) for d in x.shape)


def unary(name: str) -> Callable[[Any], Any]:
    def fn(x):
        return getattr(keras_ops(), name)(x)

    fn.__name__ = name
    return fn


def binary(name: str) -> Callable[[Any, Any], Any]:
    def fn(x, y):
        return getattr(keras_ops(), name)(x, y)

    fn.__name__ = name
    return fn


def k_reverse(x, axes):
    return keras_ops().flip(x, axis=tuple(axes) if isinstance(axes, (list, tuple)) else axes)


def k_stop_gradient(variables):
    return keras_ops().stop_gradient(variables)


def k_resize_images(x, height_factor, width_factor, data_format=None, interpolation="nearest"):
    """Keras 1/2 ``K.resize_images`` (TensorFlow 1 semantics: no half-pixel centres)."""
    import tensorflow as tf

    first = data_format in ("channels_first", "th")
    if first:
        x = tf.transpose(x, (0, 2, 3, 1))
    size = tf.shape(x)[1:3] * tf.constant([height_factor, width_factor], dtype=tf.int32)
    if interpolation == "nearest":
        y = tf.compat.v1.image.resize_nearest_neighbor(x, size, half_pixel_centers=False)
    elif interpolation == "bilinear":
        y = tf.compat.v1.image.resize_bilinear(x, size, half_pixel_centers=False)
    else:
        raise ValueError(f"K.resize_images(interpolation={interpolation!r}) is not vetted")
    return tf.transpose(y, (0, 3, 1, 2)) if first else y
