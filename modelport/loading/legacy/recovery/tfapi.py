"""TensorFlow 1/2 functions (``tf.*``, ``tf.nn.*``) reimplemented with ``keras.ops``.

TF 1 spellings of arguments (``keep_dims``, ``reduction_indices``, ``dim``) are accepted
next to the TF 2 ones.
"""

from __future__ import annotations

from typing import Any, Callable

from modelport.loading.legacy.recovery.kbackend import axis_arg, either, keras_ops, l2_normalize


def reduction(op: str) -> Callable[..., Any]:
    def fn(input_tensor, axis=None, keepdims=None, name=None, reduction_indices=None,
           keep_dims=None):
        axis = axis_arg(either(axis, reduction_indices))
        return getattr(keras_ops(), op)(input_tensor, axis=axis,
                                        keepdims=bool(either(keepdims, keep_dims, False)))

    fn.__name__ = f"reduce_{op}"
    return fn


def tf_concat(values, axis, name=None):
    return keras_ops().concatenate(list(values), axis=axis)


def tf_reshape(tensor, shape, name=None):
    return keras_ops().reshape(tensor, tuple(shape))


def tf_expand_dims(input, axis=None, name=None, dim=None):
    return keras_ops().expand_dims(input, either(axis, dim))


def tf_squeeze(input, axis=None, name=None, squeeze_dims=None):
    return keras_ops().squeeze(input, axis_arg(either(axis, squeeze_dims)))


def tf_transpose(a, perm=None, name=None, conjugate=False):
    return keras_ops().transpose(a, None if perm is None else tuple(perm))


def tf_stack(values, axis=0, name=None):
    return keras_ops().stack(list(values), axis=axis)


def tf_clip_by_value(t, clip_value_min, clip_value_max, name=None):
    return keras_ops().clip(t, clip_value_min, clip_value_max)


def tf_matmul(a, b, transpose_a=False, transpose_b=False, name=None):
    ops = keras_ops()
    a = ops.swapaxes(a, -1, -2) if transpose_a else a
    b = ops.swapaxes(b, -1, -2) if transpose_b else b
    return ops.matmul(a, b)


def tf_cast(x, dtype, name=None):
    return keras_ops().cast(x, dtype)


def tf_softmax(logits, axis=None, name=None, dim=None):
    return keras_ops().softmax(logits, axis=either(axis, dim, -1))


def tf_l2_normalize(x, axis=None, epsilon=1e-12, name=None, dim=None):
    return l2_normalize(x, either(axis, dim), epsilon)


def tf_leaky_relu(features, alpha=0.2, name=None):
    return keras_ops().leaky_relu(features, alpha)


def space_to_depth(input, block_size, data_format="NHWC", name=None):
    """Same element order as ``tf.nn.space_to_depth`` (NHWC), as reshape + transpose."""
    if data_format != "NHWC":
        raise ValueError("space_to_depth: only data_format='NHWC' is in the vetted subset")
    ops = keras_ops()
    _, h, w, c = (int(d) if d is not None else None for d in input.shape)
    b = block_size
    y = ops.reshape(input, (-1, h // b, b, w // b, b, c))
    y = ops.transpose(y, (0, 1, 3, 2, 4, 5))
    return ops.reshape(y, (-1, h // b, w // b, b * b * c))


def depth_to_space(input, block_size, data_format="NHWC", name=None):
    if data_format != "NHWC":
        raise ValueError("depth_to_space: only data_format='NHWC' is in the vetted subset")
    ops = keras_ops()
    _, h, w, c = (int(d) if d is not None else None for d in input.shape)
    b = block_size
    y = ops.reshape(input, (-1, h, w, b, b, c // (b * b)))
    y = ops.transpose(y, (0, 1, 3, 2, 4, 5))
    return ops.reshape(y, (-1, h * b, w * b, c // (b * b)))


def tf_pad(tensor, paddings, mode="CONSTANT", constant_values=0, name=None):
    if str(mode).upper() != "CONSTANT":
        raise ValueError(f"tf.pad(mode={mode!r}) is not in the vetted subset")
    return keras_ops().pad(tensor, [list(p) for p in paddings], constant_values=constant_values)


def tf_identity(input, name=None):
    return input


_TF1_METHODS = {0: "bilinear", 1: "nearest", 2: "bicubic", 3: "area"}


def tf1_resize_images(images, size, method=0, align_corners=False,
                      preserve_aspect_ratio=False, name=None):
    """TF 1 ``tf.image.resize_images``: no half-pixel centres, unlike TF 2's resize."""
    import tensorflow as tf

    method = _TF1_METHODS.get(method, method)
    if preserve_aspect_ratio:
        raise ValueError("resize_images(preserve_aspect_ratio=True) is not vetted")
    return tf.compat.v1.image.resize(images, list(size), method=method,
                                     align_corners=align_corners)


def tf2_resize(images, size, method="bilinear", preserve_aspect_ratio=False, antialias=False,
               name=None):
    import tensorflow as tf

    return tf.image.resize(images, list(size), method=method,
                           preserve_aspect_ratio=preserve_aspect_ratio, antialias=antialias)


def rgb_to_grayscale(images, name=None):
    return keras_ops().image.rgb_to_grayscale(images)


def tf1_resize_bilinear(images, size, align_corners=False, name=None, half_pixel_centers=False):
    import tensorflow as tf

    return tf.compat.v1.image.resize_bilinear(images, list(size), align_corners=align_corners,
                                              half_pixel_centers=half_pixel_centers)


def tf1_resize_nearest_neighbor(images, size, align_corners=False, name=None,
                                half_pixel_centers=False):
    import tensorflow as tf

    return tf.compat.v1.image.resize_nearest_neighbor(
        images, list(size), align_corners=align_corners, half_pixel_centers=half_pixel_centers)
