"""Keras 3 random draws with a ``SeedGenerator`` (the keras.io VAE's ``Sampling`` layer)
reach every format: traced as TensorFlow's stateful random ops, not as a seed variable
advanced by assignment (which a frozen graph, TFLite and tf2onnx cannot keep)."""

from __future__ import annotations

import numpy as np

SAMPLING = '''
import keras
from keras import ops


class Sampling(keras.layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, as in the keras.io VAE example."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon
'''


def test_seed_generator_sampling_converts_and_validates_everywhere(tmp_path):
    import keras

    from modelport.conversion import convert
    from modelport.loading.customobjects import collect_custom_objects
    from modelport.validators.validation import validate

    objects = tmp_path / "objs.py"
    objects.write_text(SAMPLING)
    Sampling = collect_custom_objects(str(objects))["Sampling"]
    keras.utils.set_random_seed(3)
    inp = keras.Input((12,), name="x")
    h = keras.layers.Dense(16, activation="relu")(inp)
    z_mean = keras.layers.Dense(4, name="z_mean")(h)
    z_log_var = keras.layers.Dense(4, name="z_log_var")(h)
    z = Sampling(name="z")([z_mean, z_log_var])
    path = tmp_path / "encoder.keras"
    keras.Model(inp, [z_mean, z_log_var, z]).save(path)

    manifest = convert(path, tmp_path / "out", custom_objects=str(objects))
    assert [(a.format, a.error) for a in manifest.artifacts if not a.ok] == []
    report = validate(path, [tmp_path / "out"], custom_objects=str(objects))
    assert report.passed, [r.diagnosis for r in report.results]
    assert any("are random at inference" in w and "z" in w for w in report.warnings)
    # each artifact draws afresh per call, around z_mean, as Keras does
    from modelport import converters

    x = np.zeros((512, 12), np.float32)
    for record in manifest.artifacts:
        got = converters.get(record.format).load(tmp_path / "out" / record.path).run({"x": x})
        spread = got["z"] - got["z_mean"]
        assert float(np.std(spread[:, 0])) > 0.05, record.format  # not one repeated draw
        assert not np.allclose(got["z"][0], got["z"][1]), record.format
