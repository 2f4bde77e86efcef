"""What the reference can prove: retries when it outputs NaN/Inf or constants, a model that
is constant by construction, an ill-conditioned output, and outputs that are random at
inference (compared by distribution, in every format)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from modelport import converters
from modelport.validators.validation import baseline, validate

FORMATS = converters.names()


def _load(path: Path, **kw):
    from modelport.loading.source import load

    return load(path, **kw)


def test_nan_reference_is_retried_with_a_safer_distribution(tmp_path):
    import keras
    from keras import layers, initializers

    # exp(-100 x): Inf for any negative x (standard normal), finite on [0, 1)
    inp = keras.Input((3,), name="x")
    h = layers.Dense(3, kernel_initializer=initializers.Identity(gain=-100.0),
                     use_bias=False, name="gain")(inp)
    h = layers.Activation("exponential", name="exp")(h)
    out = layers.Dense(2, name="y")(h)
    keras.Model(inp, out).save(tmp_path / "exp.keras")
    base = baseline(_load(tmp_path / "exp.keras"))
    assert not base.ref.nonfinite and np.isfinite(base.ref.outputs["y"]).all()
    assert base.report.inputs["x"]["distribution"] == "uniform [0, 1]"
    note = next(w for w in base.report.warnings if "NaN/Inf" in w)
    assert "normal (mean 0, std 1)" in note and "used x: uniform [0, 1]" in note


def test_a_distribution_that_makes_outputs_vary_is_found(tmp_path):
    import keras
    from keras import layers, initializers

    # ReLU(0.05 * sum(x) - 5): dead for inputs of magnitude ~1, alive for ~100
    inp = keras.Input((4,), name="x")
    h = layers.Dense(3, kernel_initializer=initializers.Constant(0.05),
                     bias_initializer=initializers.Constant(-5.0), activation="relu",
                     name="dead")(inp)
    out = layers.Dense(2, name="y")(h)
    keras.Model(inp, out).save(tmp_path / "dead.keras")
    base = baseline(_load(tmp_path / "dead.keras"))
    assert base.ref.degenerate == []
    assert base.report.inputs["x"]["distribution"] == "normal (mean 0, std 100)"
    assert any("do not vary with the inputs on inputs drawn from" in w
               for w in base.report.warnings), base.report.warnings


def test_a_model_constant_by_construction_is_named_as_such(tmp_path):
    import keras
    from keras import layers

    # LayerNormalization over a last axis of size 1 outputs its beta whatever the input
    inp = keras.Input((7, 1), name="series")
    h = layers.Dense(1, name="mix")(inp)
    h = layers.LayerNormalization(name="ln")(h)
    out = layers.Dense(1, activation="sigmoid", name="p")(layers.Flatten()(h))
    keras.Model(inp, out).save(tmp_path / "ln.keras")
    source = _load(tmp_path / "ln.keras")
    convert_dir = tmp_path / "out"
    from modelport.conversion import convert

    assert convert(source, convert_dir, formats="onnx").ok
    report = validate(source, convert_dir)
    (r,) = report.results
    assert not r.passed and r.max_abs_error < 1e-6
    assert "layer 'ln' (LayerNormalization) normalises over an axis of size 1" in r.diagnosis
    assert "no input can show parity" in r.diagnosis
    assert any("on every input distribution tried" in w for w in report.warnings)
    assert validate(source, convert_dir, allow_degenerate=True).passed


def test_an_ill_conditioned_output_is_reported_with_the_layer_that_amplifies(tmp_path):
    import keras
    from keras import layers, initializers

    # y = 1e5 x - (1e5 - 1) x: the difference of two large products, each rounded
    inp = keras.Input((4,), name="x")
    a = layers.Dense(4, kernel_initializer=initializers.Identity(gain=1e5), use_bias=False,
                     name="big")(inp)
    b = layers.Dense(4, kernel_initializer=initializers.Identity(gain=-(1e5 - 1)),
                     use_bias=False, name="minus_big")(inp)
    out = layers.Add(name="y")([a, b])
    keras.Model(inp, out).save(tmp_path / "cancel.keras")
    base = baseline(_load(tmp_path / "cancel.keras"))
    floor = base.report.noise_floors["y"]
    assert floor > 1e-3 * np.abs(base.ref.outputs["y"]).max()
    note = next(w for w in base.report.warnings if "ill-conditioned" in w)
    assert "'y' (Add)" in note and "--inputs" in note


# ---- random outputs ---------------------------------------------------------------------

SAMPLING_SOURCE = '''
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mp_test")
class Sampling(keras.layers.Layer):
    """z = mean + exp(log_var / 2) * eps, eps ~ N(0, 1) drawn at every call."""

    def call(self, inputs):
        mean, log_var = inputs
        return mean + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mean))
'''


@pytest.fixture(scope="module")
def vae(tmp_path_factory: pytest.TempPathFactory):
    """A Keras 3 VAE encoder (z_mean, z_log_var, z) whose z is sampled at inference, in
    every format."""
    import keras
    from keras import layers

    from modelport.conversion import convert

    root = tmp_path_factory.mktemp("vae")
    (root / "sampling.py").write_text(SAMPLING_SOURCE)
    source_file = str(root / "sampling.py")
    import importlib.util

    spec = importlib.util.spec_from_file_location("mp_sampling", source_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    keras.utils.set_random_seed(5)
    inp = keras.Input((6,), name="x")
    h = layers.Dense(8, activation="tanh", name="h")(inp)
    mean = layers.Dense(3, name="z_mean")(h)
    log_var = layers.Dense(3, name="z_log_var")(h)
    z = module.Sampling(name="z")([mean, log_var])
    keras.Model(inp, [mean, log_var, z]).save(root / "vae.keras")
    source = _load(root / "vae.keras", custom_objects=source_file)
    manifest = convert(source, root / "out")
    assert manifest.ok, [a.error for a in manifest.artifacts]
    return source, root / "out"


def test_random_outputs_are_compared_by_distribution_in_every_format(vae):
    source, out = vae
    report = validate(source, out)
    assert report.stochastic == ["z"]
    assert "z" not in report.noise_floors and "z_mean" in report.noise_floors
    assert sorted(r.format for r in report.results) == sorted(FORMATS)
    for r in report.results:
        assert r.passed, (r.format, r.diagnosis)
        by_name = {o.name: o for o in r.outputs}
        assert by_name["z"].rule == "distribution"
        assert by_name["z"].distribution["draws"] >= 32
        assert by_name["z_mean"].rule == "measured"  # deterministic ones stay element-wise
    assert any("random at inference" in w and "by distribution" in w for w in report.warnings)
    assert "by distribution" in report.rule


def _onnx_with_noise(src: Path, dest: Path, scale: float) -> Path:
    import onnx
    from onnx import helper

    model = onnx.load(str(src))
    nodes = [n for n in model.graph.node if n.op_type.startswith("RandomNormal")]
    assert nodes, [n.op_type for n in model.graph.node]
    for node in nodes:
        kept = [a for a in node.attribute if a.name != "scale"]
        del node.attribute[:]
        node.attribute.extend(kept + [helper.make_attribute("scale", scale)])
    onnx.save(model, str(dest))
    return dest


def test_a_random_output_with_the_wrong_spread_fails(vae, tmp_path):
    source, out = vae
    bad = _onnx_with_noise(converters.artifact_path(out, source.stem, "onnx"),
                           tmp_path / "vae.onnx", 1.6)
    (r,) = validate(source, bad).results
    assert not r.passed
    by_name = {o.name: o for o in r.outputs}
    assert by_name["z_mean"].passed and by_name["z_log_var"].passed
    assert not by_name["z"].passed and "spread differs" in by_name["z"].reason


def test_an_output_without_randomness_where_the_model_has_some_fails(vae, tmp_path):
    source, out = vae
    bad = _onnx_with_noise(converters.artifact_path(out, source.stem, "onnx"),
                           tmp_path / "vae.onnx", 1e-6)
    (r,) = validate(source, bad).results
    assert not r.passed and "'z' is random in the Keras model" in r.diagnosis


@pytest.mark.parametrize("framework", ["keras", "tf_keras"])
def test_a_stateful_rnn_is_not_mistaken_for_a_random_model(tmp_path, framework):
    import importlib

    k = importlib.import_module(framework)
    inp = k.Input(batch_shape=(2, 5, 3), name="seq")
    out = k.layers.LSTM(4, stateful=True, name="lstm")(inp)
    path = tmp_path / ("rnn.keras" if framework == "keras" else "rnn.h5")
    k.Model(inp, out).save(path)
    base = baseline(_load(path))
    # every reference run starts from the same state, so two runs agree
    assert base.ref.stochastic == [] and 0 < base.report.noise_floors["lstm"] < 1e-5
    again = base.ref.outputs["lstm"]
    rerun = baseline(base.source).ref.outputs["lstm"]
    np.testing.assert_array_equal(again, rerun)
