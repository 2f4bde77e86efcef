"""TFLite converts from the SavedModel artifact ``convert`` just published instead of
saving a SavedModel of its own, and without TensorFlow's two redundant loads: both only
where the bytes are the same as the public, self-contained way gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.conversion import convert
from modelport.converters import savedmodel, tflite_saved


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    import keras

    keras.utils.set_random_seed(13)
    a = keras.Input((8, 8, 3), name="img")
    x = keras.layers.Conv2D(4, 3, activation="relu")(a)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    path = tmp_path_factory.mktemp("reuse") / "small.keras"
    keras.Model(a, keras.layers.Dense(3, name="logits")(x)).save(path)
    return path


def _public_bytes(directory: Path) -> bytes:
    """TFLite as a user converts a SavedModel directory."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(directory), signature_keys=[savedmodel.SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def test_tflite_from_the_published_savedmodel(model_file, tmp_path, monkeypatch):
    saves: list[Path] = []
    real_save = savedmodel.save_to
    monkeypatch.setattr(savedmodel, "save_to",
                        lambda serving, d, **kw: (saves.append(Path(d)),
                                                  real_save(serving, d, **kw))[1])
    both = convert(model_file, tmp_path / "all", formats="savedmodel,tflite")
    assert both.ok
    # the SavedModel artifact is the only SavedModel written: TFLite read it
    assert len(saves) == 1 and saves[0].name == "small.savedmodel"

    alone = convert(model_file, tmp_path / "alone", formats="tflite")
    assert alone.ok and len(saves) == 2  # with no SavedModel artifact: its own copy
    assert both.artifact("tflite").sha256 == alone.artifact("tflite").sha256
    published = tmp_path / "all" / both.artifact("savedmodel").path
    assert (tmp_path / "all" / both.artifact("tflite").path).read_bytes() == \
        _public_bytes(published)


def test_direct_converter_matches_public(model_file, tmp_path, monkeypatch):
    import tensorflow as tf
    from tensorflow.lite.python import lite

    from modelport.loading.source import load

    source = load(model_file)
    savedmodel.save_to(source.serving, tmp_path / "sm")
    loads: list[str] = []
    real_load = lite._load
    counting = lambda *a, **kw: (loads.append(a[0]), real_load(*a, **kw))[1]  # noqa: E731
    monkeypatch.setattr(lite, "_load", counting)
    converter, context = tflite_saved.saved_model_converter(tmp_path / "sm",
                                                            savedmodel.SIGNATURE)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with context:
        data = converter.convert()
    assert loads == []  # the public path loads the SavedModel twice
    assert lite._load is counting  # TensorFlow's loader is put back
    public = _public_bytes(tmp_path / "sm")
    assert len(loads) == 2  # ... as the public path just did
    assert data == public


def test_published_dir_forgets_a_removed_artifact(model_file, tmp_path):
    import shutil

    from modelport.loading.source import load

    serving = load(model_file).serving
    savedmodel.save_to(serving, tmp_path / "sm")
    savedmodel.published(serving, tmp_path / "sm")
    assert savedmodel.published_dir(serving) == tmp_path / "sm"
    assert savedmodel.published_dir(serving, 1) is None  # another batch size: not this one
    shutil.rmtree(tmp_path / "sm")
    assert savedmodel.published_dir(serving) is None


def test_the_savedmodel_save_does_not_trace_again(model_file, tmp_path, monkeypatch):
    """The serving function is traced once for the SavedModel: a ``tf.function`` attribute
    would be traced a second time inside ``tf.saved_model.save``; its ``serve`` still runs
    positionally, and agrees with the signature."""
    import numpy as np
    import tensorflow as tf

    from modelport.loading import serving

    traces: list[int] = []
    real = serving._call_model
    monkeypatch.setattr(serving, "_call_model",
                        lambda *a, **k: traces.append(1) or real(*a, **k))
    convert(model_file, tmp_path, "savedmodel", check=False)
    assert len(traces) == 1
    loaded = tf.saved_model.load(str(tmp_path / "small.savedmodel"))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    direct = loaded.serve(tf.constant(x))["logits"].numpy()
    signed = loaded.signatures[savedmodel.SIGNATURE](img=tf.constant(x))["logits"].numpy()
    np.testing.assert_array_equal(direct, signed)
    assert np.ptp(direct[:, 0]) > 0  # outputs that follow the inputs
