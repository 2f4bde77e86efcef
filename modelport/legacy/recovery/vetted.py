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

__all__ = ["FUNCTIONS", "CONSTANTS", "NAMESPACES", "GLOBAL_ALIASES", "canonical"]


def _ops() -> Any:
    import keras

    return keras.ops


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def _kw(new: Any, old: Any, default: Any = None) -> Any:
    """TF 1 spelled some arguments differently (``keep_dims``, ``dim``); either works."""
    return new if new is not None else old if old is not None else default


# ------------------------------------------------------------------ keras.backend (K.*)


def k_mean(x, axis=None, keepdims=False):
    x = _ops().cast(x, "float32") if str(getattr(x, "dtype", "")) == "bool" else x
    return _ops().mean(x, axis=_axis(axis), keepdims=keepdims)


def k_sum(x, axis=None, keepdims=False):
    return _ops().sum(x, axis=_axis(axis), keepdims=keepdims)


def k_max(x, axis=None, keepdims=False):
    return _ops().max(x, axis=_axis(axis), keepdims=keepdims)


def k_min(x, axis=None, keepdims=False):
    return _ops().min(x, axis=_axis(axis), keepdims=keepdims)


def k_prod(x, axis=None, keepdims=False):
    return _ops().prod(x, axis=_axis(axis), keepdims=keepdims)


def k_var(x, axis=None, keepdims=False):
    return _ops().var(x, axis=_axis(axis), keepdims=keepdims)


def k_std(x, axis=None, keepdims=False):
    return _ops().std(x, axis=_axis(axis), keepdims=keepdims)


def k_sqrt(x):
    return _ops().sqrt(_ops().maximum(x, 0.0))  # Keras 1/2 clipped to [0, inf) first


def k_concatenate(tensors, axis=-1):
    return _ops().concatenate(list(tensors), axis=axis)


def k_reshape(x, shape):
    return _ops().reshape(x, tuple(shape))


def k_expand_dims(x, axis=-1):
    return _ops().expand_dims(x, axis)


def k_squeeze(x, axis):
    return _ops().squeeze(x, axis)


def k_permute_dimensions(x, pattern):
    return _ops().transpose(x, tuple(pattern))


def k_transpose(x):
    return _ops().transpose(x)


def k_stack(x, axis=0):
    return _ops().stack(list(x), axis=axis)


def l2_normalize(x, axis=None, epsilon=1e-12):
    ops = _ops()
    square_sum = ops.sum(ops.square(x), axis=_axis(axis), keepdims=True)
    return x * ops.rsqrt(ops.maximum(square_sum, epsilon))


def k_l2_normalize(x, axis=None):
    return l2_normalize(x, axis)


def k_clip(x, min_value, max_value):
    if max_value is not None and min_value is not None and max_value < min_value:
        max_value = min_value
    return _ops().clip(x, min_value, math.inf if max_value is None else max_value)


def k_pow(x, a):
    return _ops().power(x, a)


def k_relu(x, alpha=0.0, max_value=None, threshold=0.0):
    ops = _ops()
    y = ops.where(x > threshold, x, alpha * (x - threshold)) if (alpha or threshold) else ops.relu(x)
    return y if max_value is None else ops.minimum(y, max_value)


def k_hard_sigmoid(x):
    return _ops().clip(0.2 * x + 0.5, 0.0, 1.0)  # Keras 1/2 slope, not Keras 3's 1/6


def k_softmax(x, axis=-1):
    return _ops().softmax(x, axis=axis)


def k_elu(x, alpha=1.0):
    return _ops().elu(x, alpha)


def k_dot(x, y):
    if len(getattr(y, "shape", ())) > 2:
        raise ValueError("K.dot with an N-D right operand is not in the vetted subset")
    return _ops().matmul(x, y)


def k_cast(x, dtype):
    return _ops().cast(x, dtype)


def k_tile(x, n):
    return _ops().tile(x, n)


def k_repeat_elements(x, rep, axis):
    return _ops().repeat(x, rep, axis=axis)


def k_repeat(x, n):
    return _ops().repeat(_ops().expand_dims(x, 1), n, axis=1)


def k_flatten(x):
    return _ops().reshape(x, (-1,))


def k_batch_flatten(x):
    return _ops().reshape(x, (-1, int(math.prod(int(d) for d in x.shape[1:]))))


def k_gather(reference, indices):
    return _ops().take(reference, _ops().cast(indices, "int32"), axis=0)


def k_argmax(x, axis=-1):
    return _ops().argmax(x, axis=axis)


def k_argmin(x, axis=-1):
    return _ops().argmin(x, axis=axis)


def k_cumsum(x, axis=0):
    return _ops().cumsum(x, axis=axis)


def k_one_hot(indices, num_classes):
    return _ops().one_hot(_ops().cast(indices, "int32"), num_classes)


def k_int_shape(x):
    return tuple(None if d is None else int(d) for d in x.shape)


def _unary(name: str) -> Callable[[Any], Any]:
    def fn(x):
        return getattr(_ops(), name)(x)

    fn.__name__ = name
    return fn


def _binary(name: str) -> Callable[[Any, Any], Any]:
    def fn(x, y):
        return getattr(_ops(), name)(x, y)

    fn.__name__ = name
    return fn


# ------------------------------------------------------------------ tensorflow (tf.*)


def _reduce(op: str) -> Callable[..., Any]:
    def fn(input_tensor, axis=None, keepdims=None, name=None, reduction_indices=None,
           keep_dims=None):
        return getattr(_ops(), op)(input_tensor, axis=_axis(_kw(axis, reduction_indices)),
                                   keepdims=bool(_kw(keepdims, keep_dims, False)))

    fn.__name__ = f"reduce_{op}"
    return fn


def tf_concat(values, axis, name=None):
    return _ops().concatenate(list(values), axis=axis)


def tf_reshape(tensor, shape, name=None):
    return _ops().reshape(tensor, tuple(shape))


def tf_expand_dims(input, axis=None, name=None, dim=None):
    return _ops().expand_dims(input, _kw(axis, dim))


def tf_squeeze(input, axis=None, name=None, squeeze_dims=None):
    return _ops().squeeze(input, _axis(_kw(axis, squeeze_dims)))


def tf_transpose(a, perm=None, name=None, conjugate=False):
    return _ops().transpose(a, None if perm is None else tuple(perm))


def tf_stack(values, axis=0, name=None):
    return _ops().stack(list(values), axis=axis)


def tf_clip_by_value(t, clip_value_min, clip_value_max, name=None):
    return _ops().clip(t, clip_value_min, clip_value_max)


def tf_matmul(a, b, transpose_a=False, transpose_b=False, name=None):
    ops = _ops()
    a = ops.swapaxes(a, -1, -2) if transpose_a else a
    b = ops.swapaxes(b, -1, -2) if transpose_b else b
    return ops.matmul(a, b)


def tf_cast(x, dtype, name=None):
    return _ops().cast(x, dtype)


def tf_softmax(logits, axis=None, name=None, dim=None):
    return _ops().softmax(logits, axis=_kw(axis, dim, -1))


def tf_l2_normalize(x, axis=None, epsilon=1e-12, name=None, dim=None):
    return l2_normalize(x, _kw(axis, dim), epsilon)


def tf_leaky_relu(features, alpha=0.2, name=None):
    return _ops().leaky_relu(features, alpha)


def space_to_depth(input, block_size, data_format="NHWC", name=None):
    """Same element order as ``tf.nn.space_to_depth`` (NHWC), as reshape + transpose."""
    if data_format != "NHWC":
        raise ValueError("space_to_depth: only data_format='NHWC' is in the vetted subset")
    ops = _ops()
    _, h, w, c = (int(d) if d is not None else None for d in input.shape)
    b = block_size
    y = ops.reshape(input, (-1, h // b, b, w // b, b, c))
    y = ops.transpose(y, (0, 1, 3, 2, 4, 5))
    return ops.reshape(y, (-1, h // b, w // b, b * b * c))


def depth_to_space(input, block_size, data_format="NHWC", name=None):
    if data_format != "NHWC":
        raise ValueError("depth_to_space: only data_format='NHWC' is in the vetted subset")
    ops = _ops()
    _, h, w, c = (int(d) if d is not None else None for d in input.shape)
    b = block_size
    y = ops.reshape(input, (-1, h, w, b, b, c // (b * b)))
    y = ops.transpose(y, (0, 1, 3, 2, 4, 5))
    return ops.reshape(y, (-1, h * b, w * b, c // (b * b)))


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
_TF_NN = {"relu": _unary("relu"), "relu6": _unary("relu6"), "sigmoid": _unary("sigmoid"),
          "tanh": _unary("tanh"), "softplus": _unary("softplus"), "elu": _unary("elu"),
          "softmax": tf_softmax, "l2_normalize": tf_l2_normalize, "leaky_relu": tf_leaky_relu,
          "space_to_depth": space_to_depth, "depth_to_space": depth_to_space}
_KERAS_OPS = ["mean", "sum", "max", "min", "sqrt", "square", "abs", "exp", "log", "maximum",
              "minimum", "concatenate", "reshape", "expand_dims", "squeeze", "transpose",
              "stack", "clip", "sigmoid", "tanh", "relu", "softmax", "matmul", "power", "add",
              "subtract", "multiply", "divide", "cast", "normalize", "tile", "repeat"]


def _keras_op(name: str) -> Callable[..., Any]:
    def fn(*args, **kwargs):
        return getattr(_ops(), name)(*args, **kwargs)

    fn.__name__ = name
    return fn


FUNCTIONS: dict[str, Callable[..., Any]] = {
    **{f"keras.backend.{n}": _unary(n) for n in _K_UNARY},
    **{f"keras.backend.{n}": _binary(n) for n in _K_BINARY},
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
        "one_hot": k_one_hot, "int_shape": k_int_shape, "shape": _unary("shape"),
        "floatx": lambda: "float32", "epsilon": lambda: 1e-7}.items()},
    **{f"tensorflow.{n}": _unary(op) for n, op in _TF_UNARY.items()},
    **{f"tensorflow.{n}": _binary(op) for n, op in _TF_BINARY.items()},
    **{f"tensorflow.reduce_{n}": _reduce(n) for n in ("sum", "mean", "max", "min", "prod")},
    **{f"tensorflow.{n}": fn for n, fn in {
        "concat": tf_concat, "reshape": tf_reshape, "expand_dims": tf_expand_dims,
        "squeeze": tf_squeeze, "transpose": tf_transpose, "stack": tf_stack,
        "clip_by_value": tf_clip_by_value, "matmul": tf_matmul, "cast": tf_cast,
        "l2_normalize": tf_l2_normalize, "space_to_depth": space_to_depth,
        "depth_to_space": depth_to_space}.items()},
    **{f"tensorflow.nn.{n}": fn for n, fn in _TF_NN.items()},
    **{f"keras.ops.{n}": _keras_op(n) for n in _KERAS_OPS},
}

CONSTANTS: dict[str, Any] = {
    "numpy.pi": math.pi, "numpy.e": math.e, "math.pi": math.pi, "math.e": math.e,
    **{f"tensorflow.{t}": t for t in ("float16", "float32", "float64", "int32", "int64",
                                      "bool", "uint8")},
}

# the last three only lead to others (tf.compat.v1.nn, tf.python.keras.backend)
NAMESPACES = {"keras", "keras.backend", "keras.ops", "tensorflow", "tensorflow.nn", "numpy",
              "math", "tensorflow.compat", "tensorflow.python", "tensorflow.python.keras"}

# what a module-level name in a Lambda's globals most likely was (``import ... as K``)
GLOBAL_ALIASES = {"K": "keras.backend", "KB": "keras.backend", "backend": "keras.backend",
                  "tf": "tensorflow", "tensorflow": "tensorflow", "keras": "keras",
                  "ops": "keras.ops", "np": "numpy", "numpy": "numpy", "math": "math"}

_PREFIXES = [("tensorflow.compat.v1.", "tensorflow."), ("tensorflow.compat.v2.", "tensorflow."),
             ("tensorflow.keras.backend", "keras.backend"), ("tensorflow.keras.", "keras."),
             ("tensorflow.python.keras.backend", "keras.backend"),
             ("tf_keras.backend", "keras.backend"), ("tensorflow.math.", "tensorflow.")]


def canonical(name: str) -> str:
    """One spelling per function: ``tf.math.reduce_mean`` -> ``tensorflow.reduce_mean``."""
    for old, new in _PREFIXES:
        if name == old.rstrip(".") or name.startswith(old):
            name = new + name[len(old):] if name.startswith(old) else new.rstrip(".")
    return name
