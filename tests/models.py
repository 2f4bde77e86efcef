"""Tiny models tests build inline (the fixture families live in modelport/fixtures)."""

from __future__ import annotations

from pathlib import Path


def dense_model(path: Path, inputs: int, hidden: int, outputs: int, *, seed: int,
                input_name: str = "x", output_name: str = "y") -> Path:
    """Save a Keras 3 ``Input -> Dense(hidden, tanh) -> Dense(outputs)`` model at ``path``."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((inputs,), name=input_name)
    hidden_out = keras.layers.Dense(hidden, activation="tanh")(inp)
    keras.Model(inp, keras.layers.Dense(outputs, name=output_name)(hidden_out)).save(path)
    return path
