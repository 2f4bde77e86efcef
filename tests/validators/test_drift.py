"""Layer-wise drift (``validate(..., layers=True)``): a weight fault planted in one layer of
one artifact is named as the first divergent layer, in every format; correct artifacts
have none; an int8 TFLite shows its error growing and where it grows most."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from modelport import converters
from modelport.validators import faults
from modelport.validators.validation import validate

FORMATS = converters.names()
MIDDLE = {"savedmodel": faults.savedmodel_scale_middle_layer,
          "pb": faults.pb_scale_middle_layer,
          "tflite": faults.tflite_scale_middle_layer,
          "onnx": faults.onnx_scale_middle_layer}


def _chain(path: Path) -> None:
    """Five weighted layers whose outputs every format keeps (no BatchNorm to fold in):
    the middle one (``dw``) is the one the ``*_scale_middle_layer`` faults scale."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(21)
    inp = keras.Input((12, 12, 3), name="image")
    x = layers.Conv2D(8, 3, activation="relu", name="conv_a")(inp)
    x = layers.Conv2D(8, 3, activation="tanh", name="conv_b")(x)
    x = layers.DepthwiseConv2D(3, activation="relu", name="dw")(x)
    x = layers.Conv2D(12, 1, activation="tanh", name="conv_c")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    out = layers.Dense(5, name="logits")(x)
    keras.Model(inp, out, name="chain").save(path)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    from modelport.conversion import convert
    from modelport.loading.source import load

    root = tmp_path_factory.mktemp("chain")
    path = root / "chain.keras"
    _chain(path)
    source = load(path)
    manifest = convert(source, root / "out", formats="all")
    assert manifest.ok, [a.error for a in manifest.artifacts]
    return source, root / "out"


def test_correct_artifacts_have_no_divergent_layer(chain):
    source, out = chain
    report = validate(source, out, layers=True)
    assert report.passed
    for r in report.results:
        assert r.first_divergent_layer is None, (r.format, r.first_divergent_layer)
        compared = [l.layer for l in r.layers]
        # every weighted layer's output is kept by every format and found
        assert {"conv_a", "conv_b", "dw", "conv_c", "logits"} <= set(compared), (r.format,
                                                                                compared)
        assert all(l.passed for l in r.layers)
    d = json.loads(report.to_json())
    assert all(res["first_divergent_layer"] is None and res["layers"] for res in d["results"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_scaled_middle_layer_is_the_first_divergent_layer(chain, tmp_path, fmt, caplog):
    source, good = chain
    out = tmp_path / "out"
    shutil.copytree(good, out)
    bad = converters.artifact_path(out, source.stem, fmt)
    if bad.is_dir():
        shutil.rmtree(bad)
    with caplog.at_level(logging.INFO, logger="modelport.validators.faults"):
        MIDDLE[fmt](converters.artifact_path(good, source.stem, fmt), bad, 1.05)
    report = validate(source, out, layers=True)
    by_format = {r.format: r for r in report.results}
    assert not by_format[fmt].passed
    assert by_format[fmt].first_divergent_layer == "dw", [
        (l.layer, l.passed, l.max_abs_error, l.atol) for l in by_format[fmt].layers]
    rows = {l.layer: l for l in by_format[fmt].layers}
    assert rows["conv_a"].passed and rows["conv_b"].passed and not rows["dw"].passed
    for other, r in by_format.items():
        if other != fmt:
            assert r.passed and r.first_divergent_layer is None, other
    text = "\n".join(caplog.messages)
    if fmt in ("pb", "savedmodel"):  # their weights are named after the layer
        assert "dw" in text, text


def test_fused_layer_is_reported_with_the_tensor_that_hides_it(models, tmp_path):
    """TFLite folds a BatchNorm into the convolution before it: the fault in the
    depthwise kernel shows in the BatchNorm's tensor, which carries the fused ``dw``."""
    deep = models.get("deep")
    out = tmp_path / "out"
    shutil.copytree(deep.out, out)
    bad = converters.artifact_path(out, deep.model.stem, "tflite")
    faults.tflite_scale_middle_layer(deep.artifact("tflite"), bad, 1.05)
    report = validate(deep.source, out, layers=True)
    r = report.result("tflite")
    assert r.first_divergent_layer == "bn_dw"
    first = next(l for l in r.layers if l.layer == "bn_dw")
    assert first.fused == ["dw"]
    assert r.name_map.row("dw").status == "fused"
    for other in ("savedmodel", "pb", "onnx"):
        res = report.result(other)
        assert res.passed and res.first_divergent_layer is None, (other, [
            (l.layer, l.max_abs_error, l.atol) for l in res.layers if not l.passed])


def _int8(sm: Path, dest: Path, shape: tuple[int, ...]) -> Path:
    import tensorflow as tf

    rng = np.random.default_rng(3)

    def data():
        for _ in range(32):
            yield [rng.normal(size=(1, *shape)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_saved_model(str(sm))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = data
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    dest.write_bytes(conv.convert())
    return dest


def _outlier(path: Path) -> None:
    """An MLP where one layer (``spread``) has one output 40x the others: int8 gives
    that tensor one scale, so its small channels lose their precision, which shows in
    the next layer (``mix``), which ignores the large channel."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(5)
    inp = keras.Input((16,), name="x")
    a = layers.Dense(16, activation="tanh", name="first")(inp)
    spread = layers.Dense(16, name="spread")
    b = spread(a)
    mix = layers.Dense(8, activation="tanh", name="mix")
    c = mix(b)
    out = layers.Dense(4, name="head")(c)
    model = keras.Model(inp, out, name="outlier")
    k, bias = spread.get_weights()
    k[:, 0] *= 40.0
    spread.set_weights([k, bias])
    w, bias = mix.get_weights()
    w[0, :] = 0.0  # mix ignores the large channel
    mix.set_weights([w, bias])
    model.save(path)


def test_int8_tflite_error_grows_and_the_largest_jump_is_named(tmp_path):
    from modelport.conversion import convert
    from modelport.loading.source import load

    path = tmp_path / "outlier.keras"
    _outlier(path)
    source = load(path)
    out = tmp_path / "out"
    manifest = convert(source, out, formats="savedmodel")
    assert manifest.ok
    q = _int8(converters.artifact_path(out, source.stem, "savedmodel"),
              tmp_path / "outlier_int8.tflite", (16,))
    report = validate(source, q, layers=True, tolerances={"tflite": (1e-3, 1e-2)})
    r = report.results[0]
    assert not r.passed  # int8 is not float: the verdict stays honest
    errors = {l.layer: l.relative_error for l in r.layers}
    assert {"first", "spread", "mix", "head"} <= set(errors), errors
    assert errors["first"] < errors["mix"]  # grows through the network
    assert errors["mix"] > 5 * errors["spread"]
    assert r.layer_growth[0]["layer"] == "mix", r.layer_growth
    assert r.first_divergent_layer == "first"  # int8 differs from the first layer on
