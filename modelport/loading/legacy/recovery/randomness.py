"""Random ops a recovered Lambda may call (a VAE's ``sampling``), with their semantics.

Each keeps the old API's parameter names and defaults (Keras 2 ``K.random_*``, TensorFlow
``tf.random.*`` and its TF 1 spellings, Keras 3 ``keras.random.*``) and, like the original,
draws a fresh sample on every call: the model's output is stochastic, which loading says
(``STOCHASTIC``) so the validator compares such outputs by distribution.

They are TensorFlow's stateful random ops, which is what Keras 2's TensorFlow backend ran.
``keras.random`` with ``seed=None`` would draw its seed from a seed-generator *variable*
that no Lambda tracks: tf_keras refuses the Lambda ("Variables were created within a
Lambda layer") and no export can save it ("untracked resource"). A stateful op needs no
variable and exports as itself (SavedModel, GraphDef), ``RandomStandardNormal``/
``RandomUniform`` in TFLite and ONNX. A Keras 3 call with an integer seed is
deterministic there, so it stays ``keras.random`` (stateless, seeded).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["RANDOM_FUNCTIONS", "STOCHASTIC"]


def _tf() -> Any:
    import tensorflow as tf

    return tf


def _shape(shape: Any) -> Any:
    """The shape as TensorFlow takes it (ints and scalar tensors, packed)."""
    return list(shape) if isinstance(shape, tuple) else shape


def _dtype(dtype: Any) -> Any:
    return "float32" if dtype is None else dtype


def k_random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    return _tf().random.normal(_shape(shape), mean, stddev, dtype=_dtype(dtype), seed=seed)


def k_random_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    return _tf().random.uniform(_shape(shape), minval, maxval, dtype=_dtype(dtype), seed=seed)


def k_truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    return _tf().random.truncated_normal(_shape(shape), mean, stddev, dtype=_dtype(dtype),
                                         seed=seed)


def k_random_binomial(shape, p=0.0, dtype=None, seed=None):
    tf = _tf()
    draw = tf.random.uniform(_shape(shape), dtype=_dtype(dtype), seed=seed)
    return tf.cast(draw <= p, _dtype(dtype))  # Keras 2: where(uniform <= p, 1, 0)


def tf_random_normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None, name=None):
    return k_random_normal(shape, mean, stddev, dtype, seed)


def tf_random_uniform(shape, minval=0, maxval=None, dtype="float32", seed=None, name=None):
    # TensorFlow: maxval defaults to 1 for floats
    return k_random_uniform(shape, minval, 1.0 if maxval is None else maxval, dtype, seed)


def tf_truncated_normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None, name=None):
    return k_truncated_normal(shape, mean, stddev, dtype, seed)


def keras_random(name: str, stateful: Callable[..., Any]) -> Callable[..., Any]:
    """``keras.random.<name>``: seeded, Keras 3's own (deterministic per seed); unseeded,
    a fresh sample per call like Keras 3's, from the stateful op."""

    def fn(shape, *args: Any, seed: Any = None, **kwargs: Any) -> Any:
        if isinstance(seed, int):
            import keras

            return getattr(keras.random, name)(shape, *args, seed=seed, **kwargs)
        return stateful(shape, *args, **kwargs)

    fn.__name__ = name
    return fn


RANDOM_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "keras.backend.random_normal": k_random_normal,
    "keras.backend.random_uniform": k_random_uniform,
    "keras.backend.truncated_normal": k_truncated_normal,
    "keras.backend.random_binomial": k_random_binomial,
    "keras.backend.random_bernoulli": k_random_binomial,
    "tensorflow.random.normal": tf_random_normal,
    "tensorflow.random_normal": tf_random_normal,
    "tensorflow.random.uniform": tf_random_uniform,
    "tensorflow.random_uniform": tf_random_uniform,
    "tensorflow.random.truncated_normal": tf_truncated_normal,
    "tensorflow.truncated_normal": tf_truncated_normal,
    "keras.random.normal": keras_random("normal", k_random_normal),
    "keras.random.uniform": keras_random("uniform", k_random_uniform),
    "keras.random.truncated_normal": keras_random("truncated_normal", k_truncated_normal),
}

STOCHASTIC = frozenset(RANDOM_FUNCTIONS)
