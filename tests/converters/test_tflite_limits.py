"""TFLite at its limits: inputs with unknown spatial dimensions (the interpreter is resized
to the fed shapes), and ops builtins cannot express (named, with what to do)."""

from __future__ import annotations

import numpy as np
import pytest

from modelport import converters
from modelport.conversion import convert
from modelport.converters.tflite_diagnosis import flex_delegate_available, missing_ops


def test_fully_convolutional_model_runs_at_any_size(tmp_path):
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((None, None, 3), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu")(inp)  # "valid": size 1 cannot run
    x = keras.layers.MaxPooling2D()(x)
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, padding="same", name="mask")(x))
    path = tmp_path / "fcn.keras"
    model.save(path)

    record = convert(path, tmp_path / "out", formats="tflite").artifact("tflite")
    assert record.ok, record.error
    assert record.check["status"] == "passed"
    assert record.details["dynamic_inputs"] == {"image": [None, None, None, 3]}
    assert any("dynamic dimensions" in w for w in record.warnings)
    runner = converters.get("tflite").load(tmp_path / "out" / record.path)
    for size in ((2, 20, 24), (1, 9, 9), (3, 20, 24)):  # resized up and down between calls
        x = np.random.default_rng(size[1]).standard_normal(size + (3,)).astype("float32")
        want = model.predict(x, verbose=0)
        np.testing.assert_allclose(runner.run({"image": x})["mask"], want, atol=1e-4,
                                   rtol=1e-3, err_msg=str(size))


def test_shapes_the_savedmodel_import_loses_go_through_the_graph_converter(tmp_path):
    """After an UpSampling2D of unknown size, Keras 3's traced ``repeat`` reshapes by a
    computed shape: the SavedModel importer loses the channel count and the next
    convolution cannot be lowered to a builtin; TensorFlow's graph importer keeps it."""
    import keras

    keras.utils.set_random_seed(9)
    inp = keras.Input((None, None, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.UpSampling2D()(x)
    x = keras.layers.Concatenate()([x, keras.layers.Conv2D(8, 1)(inp)])
    model = keras.Model(inp, keras.layers.Conv2D(2, 3, padding="same", name="mask")(x))
    path = tmp_path / "unet.keras"
    model.save(path)

    record = convert(path, tmp_path / "out", formats="tflite").artifact("tflite")
    assert record.ok, record.error
    assert record.route == "frozen-graph" and record.check["status"] == "passed"
    failed = [r for r in record.routes if r["outcome"] == "conversion failed"]
    assert failed and all("Conv2D" in r["reason"] for r in failed)
    runner = converters.get("tflite").load(tmp_path / "out" / record.path)
    assert [t.name for t in runner.inputs] == ["image"]  # the Keras names, as a signature
    assert [t.name for t in runner.outputs] == ["mask"]
    for size in ((2, 16, 24), (1, 8, 12)):
        x = np.random.default_rng(size[1]).standard_normal(size + (3,)).astype("float32")
        want = model.predict(x, verbose=0)
        assert float(np.std(want)) > 1e-2
        np.testing.assert_allclose(runner.run({"image": x})["mask"], want, atol=1e-4,
                                   rtol=1e-3, err_msg=str(size))


@pytest.fixture(scope="module")
def conv3d_file(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(8)
    # unknown spatial dimensions: not even the 2-D pooling rewrite can take its MaxPool3D
    inp = keras.Input((None, None, None, 2), name="clip")
    x = keras.layers.Conv3D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling3D(2)(x)
    out = keras.layers.Dense(3, name="y")(keras.layers.GlobalAveragePooling3D()(x))
    path = tmp_path_factory.mktemp("conv3d") / "clip.h5"
    keras.Model(inp, out).save(path)
    return path


def test_missing_ops_are_named_with_the_remedy(conv3d_file, tmp_path, capsys):
    from modelport.cli import main

    rc = main(["convert", str(conv3d_file), "--out", str(tmp_path), "--to", "tflite"])
    err = capsys.readouterr().err
    assert rc == 3
    line = next(l for l in err.splitlines() if "tflite" in l and "FAILED" in l)
    assert "MaxPool3D" in line and "--allow-flex" in line
    if not flex_delegate_available():
        assert "no Flex delegate" in line
    assert not (tmp_path / "clip.tflite").exists()


def test_allow_flex_says_when_this_litert_cannot_run_it(conv3d_file, tmp_path):
    record = convert(conv3d_file, tmp_path, formats="tflite", allow_flex=True).artifact("tflite")
    if flex_delegate_available():
        assert record.ok and record.route == "flex"
        assert record.details["flex_ops"] == ["FlexMaxPool3D"]
        return
    # the Flex artifact exists but cannot be run here, so it is not called good
    assert not record.ok and record.unverified
    assert "Flex delegate for FlexMaxPool3D" in record.error
    assert "cannot run here" in record.error
    assert (tmp_path / "clip.unverified.tflite").exists()
    assert not (tmp_path / "clip.tflite").exists()


def test_missing_ops_read_from_converter_text():
    text = ("<unknown>:0: error: 'tf.MaxPool3D' op is neither a custom op nor a flex op\n"
            "error: failed while converting: 'main':\nSome ops are not supported by the "
            "native TFLite runtime\nTF Select ops: MaxPool3D, Erfc\nDetails:\n")
    assert missing_ops(RuntimeError(text)) == ["Erfc", "MaxPool3D"]
    assert missing_ops(RuntimeError("error: failed while converting: 'main'")) == []
