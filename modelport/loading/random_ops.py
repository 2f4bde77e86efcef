"""Keras 3 random draws traced as TensorFlow's stateful random ops.

Keras 3 draws with a ``SeedGenerator``: a variable holding the seed, read and advanced
(``AssignVariableOp``) on every call, feeding stateless random ops. A frozen graph cannot
keep the assignment (constants replace variables), TFLite has no builtin for the stateless
key/counter ops, and tf2onnx cannot convert either. TensorFlow's stateful ops
(``RandomStandardNormal``, ``RandomUniform``) draw afresh on every call, as the seed
generator does, need no variable, and every runtime has them. Draws seeded with a fixed
integer are left alone: Keras repeats those on purpose.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

__all__ = ["stateful_random"]


def _patched(original: Callable[..., Any], stateful: Callable[..., Any],
             seed_generator: type) -> Callable[..., Any]:
    def draw(*args: Any, **kwargs: Any) -> Any:
        seed = kwargs.get("seed")
        if seed is None or isinstance(seed, seed_generator):
            kwargs.pop("seed", None)
            return stateful(*args, **kwargs)
        return original(*args, **kwargs)

    return draw


@contextlib.contextmanager
def stateful_random() -> Iterator[None]:
    """While inside, Keras 3's TensorFlow backend draws ``normal``, ``uniform`` and
    ``truncated_normal`` numbers with stateful ops when their seed is a ``SeedGenerator``
    (or none). Only what is traced inside the block is affected."""
    try:
        import tensorflow as tf
        from keras.src.backend.tensorflow import random as backend_random
        from keras.src.random.seed_generator import SeedGenerator
    except ImportError:  # another Keras backend, or no Keras 3: nothing to patch
        yield
        return

    def normal(shape, mean=0.0, stddev=1.0, dtype=None):
        return tf.random.normal(shape, mean, stddev, dtype=dtype or "float32")

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None):
        dtype = dtype or "float32"
        return tf.random.uniform(shape, tf.cast(minval, dtype), tf.cast(maxval, dtype),
                                 dtype=dtype)

    def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None):
        return tf.random.truncated_normal(shape, mean, stddev, dtype=dtype or "float32")

    saved = {name: getattr(backend_random, name)
             for name in ("normal", "uniform", "truncated_normal")}
    replacements = {"normal": normal, "uniform": uniform, "truncated_normal": truncated_normal}
    try:
        for name, original in saved.items():
            setattr(backend_random, name,
                    _patched(original, replacements[name], SeedGenerator))
        yield
    finally:
        for name, original in saved.items():
            setattr(backend_random, name, original)
