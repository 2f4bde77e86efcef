"""The vetted subset: numeric functions a recovered Lambda may call, by canonical name.

Each entry reimplements the *old* API (Keras 2 backend ``K.*``, TensorFlow 1/2 ``tf.*``)
with ``keras.ops``, keeping the old parameter names so calls bind exactly as they did,
and the old semantics where they differ from today's (``K.sqrt`` clipped negatives to 0,
``K.hard_sigmoid`` was ``0.2 * x + 0.5``). Nothing here reads files, imports by name or
evaluates strings: an unknown name is simply absent and the Lambda is refused.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from modelport.loading.legacy.recovery.kbackend import (
    binary, k_argmax, k_argmin, k_batch_flatten, k_cast, k_clip, k_concatenate, k_cumsum,
    k_dot, k_elu, k_expand_dims, k_flatten, k_gather, k_hard_sigmoid, k_int_shape,
    k_l2_normalize, k_max, k_mean, k_min, k_one_hot, k_permute_dimensions, k_pow, k_prod,
    k_relu, k_repeat, k_repeat_elements, k_reshape, k_resize_images, k_reverse, k_softmax,
    k_sqrt, k_squeeze, k_stack, k_std, k_stop_gradient, k_sum, k_tile, k_transpose, k_var,
    keras_ops, unary)
from modelport.loading.legacy.recovery.randomness import RANDOM_FUNCTIONS
from modelport.loading.legacy.recovery.tfapi import (
    depth_to_space, reduction, rgb_to_grayscale, space_to_depth, tf1_resize_bilinear,
    tf1_resize_images, tf1_resize_nearest_neighbor, tf2_resize, tf_cast, tf_clip_by_value,
    tf_concat, tf_expand_dims, tf_identity, tf_l2_normalize, tf_leaky_relu, tf_matmul,
    tf_pad, tf_reshape, tf_softmax, tf_squeeze, tf_stack, tf_transpose)

__all__ = ["FUNCTIONS", "CONSTANTS", "NAMESPACES", "GLOBAL_ALIASES", "canonical"]


_K_UNARY = ["square", "abs", "exp", "log", "sign", "round", "sigmoid", "tanh", "softplus",
            "softsign", "sin", "cos", "ones_like", "zeros_like"]
_K_BINARY = ["maximum", "minimum", "equal", "not_equal", "greater", "greater_equal", "less",
             "less_equal"]
_TF_UNARY = {"sqrt": "sqrt", "rsqrt": "rsqrt", "square": "square", "abs": "abs", "exp": "exp",
             "log": "log", "sign": "sign", "round": "round", "negative": "negative",
             "reciprocal": "reciprocal", "sigmoid": "sigmoid", "tanh": "tanh", "sin": "sin",
             "cos": "cos", "ones_like": "ones_like", "zeros_like": "zeros_like",
             "shape": "shape"}
_TF_BINARY = {"add": "add", "subtract": "subtract", "multiply": "multiply",
              "divide": "divide", "truediv": "divide", "pow": "power", "maximum": "maximum",
              "minimum": "minimum", "tile": "tile"}
_TF_NN = {"relu": unary("relu"), "relu6": unary("relu6"), "sigmoid": unary("sigmoid"),
          "tanh": unary("tanh"), "softplus": unary("softplus"), "elu": unary("elu"),
          "softmax": tf_softmax, "l2_normalize": tf_l2_normalize, "leaky_relu": tf_leaky_relu,
          "space_to_depth": space_to_depth, "depth_to_space": depth_to_space}
_KERAS_OPS = ["mean", "sum", "max", "min", "sqrt", "square", "abs", "exp", "log", "maximum",
              "minimum", "concatenate", "reshape", "expand_dims", "squeeze", "transpose",
              "stack", "clip", "sigmoid", "tanh", "relu", "softmax", "matmul", "power", "add",
              "subtract", "multiply", "divide", "cast", "normalize", "tile", "repeat"]


def _keras_op(name: str) -> Callable[..., Any]:
    def fn(*args, **kwargs):
        return getattr(keras_ops(), name)(*args, **kwargs)

    fn.__name__ = name
    return fn


FUNCTIONS: dict[str, Callable[..., Any]] = {
    **{f"keras.backend.{n}": unary(n) for n in _K_UNARY},
    **{f"keras.backend.{n}": binary(n) for n in _K_BINARY},
    **{f"keras.backend.{n}": fn for n, fn in {
        "mean": k_mean, "sum": k_sum, "max": k_max, "min": k_min, "prod": k_prod,
        "var": k_var, "std": k_std, "sqrt": k_sqrt, "concatenate": k_concatenate,
        "reshape": k_reshape, "expand_dims": k_expand_dims, "squeeze": k_squeeze,
        "permute_dimensions": k_permute_dimensions, "transpose": k_transpose,
        "stack": k_stack, "l2_normalize": k_l2_normalize, "clip": k_clip, "pow": k_pow,
        "relu": k_relu, "hard_sigmoid": k_hard_sigmoid, "softmax": k_softmax, "elu": k_elu,
        "dot": k_dot, "cast": k_cast, "tile": k_tile, "repeat_elements": k_repeat_elements,
        "repeat": k_repeat, "flatten": k_flatten, "batch_flatten": k_batch_flatten,
        "gather": k_gather, "argmax": k_argmax, "argmin": k_argmin, "cumsum": k_cumsum,
        "one_hot": k_one_hot, "int_shape": k_int_shape, "shape": unary("shape"),
        "reverse": k_reverse, "stop_gradient": k_stop_gradient,
        "identity": tf_identity, "resize_images": k_resize_images,
        "floatx": lambda: "float32", "epsilon": lambda: 1e-7}.items()},
    **{f"tensorflow.{n}": unary(op) for n, op in _TF_UNARY.items()},
    **{f"tensorflow.{n}": binary(op) for n, op in _TF_BINARY.items()},
    **{f"tensorflow.reduce_{n}": reduction(n) for n in ("sum", "mean", "max", "min", "prod")},
    **{f"tensorflow.{n}": fn for n, fn in {
        "concat": tf_concat, "reshape": tf_reshape, "expand_dims": tf_expand_dims,
        "squeeze": tf_squeeze, "transpose": tf_transpose, "stack": tf_stack,
        "clip_by_value": tf_clip_by_value, "matmul": tf_matmul, "cast": tf_cast,
        "l2_normalize": tf_l2_normalize, "space_to_depth": space_to_depth,
        "depth_to_space": depth_to_space, "pad": tf_pad, "identity": tf_identity,
        "stop_gradient": k_stop_gradient}.items()},
    "tensorflow.image.resize_images": tf1_resize_images,
    "tensorflow.image.resize": tf2_resize,
    "tensorflow.image.resize_bilinear": tf1_resize_bilinear,
    "tensorflow.image.resize_nearest_neighbor": tf1_resize_nearest_neighbor,
    "tensorflow.image.rgb_to_grayscale": rgb_to_grayscale,
    **{f"tensorflow.nn.{n}": fn for n, fn in _TF_NN.items()},
    **{f"keras.ops.{n}": _keras_op(n) for n in _KERAS_OPS},
    **RANDOM_FUNCTIONS,  # draw a new sample per call: the model is stochastic
}

CONSTANTS: dict[str, Any] = {
    "numpy.pi": math.pi, "numpy.e": math.e, "math.pi": math.pi, "math.e": math.e,
    **{f"tensorflow.{t}": t for t in ("float16", "float32", "float64", "int32", "int64",
                                      "bool", "uint8")},
    # TF 1 enum values (ints) for resize_images; TF 2 uses the strings
    **{f"tensorflow.image.ResizeMethod.{k}": v for k, v in (
        ("BILINEAR", 0), ("NEAREST_NEIGHBOR", 1), ("BICUBIC", 2), ("AREA", 3))},
}

# the last three only lead to others (tf.compat.v1.nn, tf.python.keras.backend)
NAMESPACES = {"keras", "keras.backend", "keras.ops", "keras.random", "tensorflow",
              "tensorflow.nn", "tensorflow.random", "numpy",
              "math", "tensorflow.image", "tensorflow.image.ResizeMethod",
              "tensorflow.compat", "tensorflow.python", "tensorflow.python.keras"}

# what a module-level name in a Lambda's globals most likely was (``import ... as K``)
GLOBAL_ALIASES = {"K": "keras.backend", "KB": "keras.backend", "backend": "keras.backend",
                  "tf": "tensorflow", "tensorflow": "tensorflow", "keras": "keras",
                  "ktf": "tensorflow",  # ``from keras.backend import tf as ktf`` (Keras 2)
                  "ops": "keras.ops", "np": "numpy", "numpy": "numpy", "math": "math"}

_PREFIXES = [("keras.backend.tf.", "tensorflow."),  # Keras 2 exposed ``K.tf``
             ("tensorflow.compat.v1.", "tensorflow."), ("tensorflow.compat.v2.", "tensorflow."),
             ("tensorflow.keras.backend", "keras.backend"), ("tensorflow.keras.", "keras."),
             ("tensorflow.python.keras.backend", "keras.backend"),
             ("tf_keras.backend", "keras.backend"), ("tensorflow.math.", "tensorflow.")]


# spellings whose meaning the prefix rules below would lose
_EXACT = {"tensorflow.compat.v1.image.resize": "tensorflow.image.resize_images"}


def canonical(name: str) -> str:
    """One spelling per function: ``tf.math.reduce_mean`` -> ``tensorflow.reduce_mean``."""
    if name in _EXACT:
        return _EXACT[name]
    for old, new in _PREFIXES:
        if name == old.rstrip(".") or name.startswith(old):
            name = new + name[len(old):] if name.startswith(old) else new.rstrip(".")
    return name
