"""``convert --input-shape``: the shapes are static in all four artifacts (read back by
``inspect``), recorded in the manifest, fed by the check and by ``validate``; a shape that
contradicts the model is a one-line error (exit 2) and nothing is written."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

from modelport import converters
from modelport.cli import main
from modelport.conversion import convert
from modelport.core.errors import UserInputError
from modelport.inspection import inspect
from modelport.validators.inputs import DEFAULT_SPATIAL_DIM
from modelport.validators.validation import validate

FIXED = [1, 24, 16, 3]  # not DEFAULT_SPATIAL_DIM: the validator must feed what is fixed


@pytest.fixture(scope="module")
def free_model(tmp_path_factory) -> Path:
    """Fully convolutional: height and width unknown, the batch too."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(5)
    inp = keras.Input((None, None, 3), name="img")
    x = layers.Conv2D(4, 3, padding="same", activation="tanh", name="conv1")(inp)
    out = layers.Conv2D(2, 3, strides=2, padding="same", name="feat")(x)
    path = tmp_path_factory.mktemp("free") / "free.keras"
    keras.Model(inp, out).save(path)
    return path


@pytest.fixture(scope="module")
def fixed(free_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("fixed")
    manifest = convert(free_model, out, input_shapes=["img=" + ",".join(map(str, FIXED))])
    return manifest, out


def test_every_artifact_is_static_as_inspect_reads_it(fixed):
    manifest, out = fixed
    assert manifest.ok, [a.error for a in manifest.artifacts]
    assert manifest.options["input_shapes"] == {"img": FIXED}
    assert {a.format for a in manifest.artifacts} == set(converters.names())
    for record in manifest.artifacts:
        assert record.check["status"] == "passed"
        desc = inspect(out / record.path, nodes=False)
        (inp,) = desc.inputs
        (feat,) = desc.outputs
        assert inp.shape == FIXED, (record.format, inp.shape)
        assert feat.shape == [1, 12, 8, 2], (record.format, feat.shape)
        assert record.inputs[0].shape == FIXED and record.outputs[0].shape == [1, 12, 8, 2]
        if record.format == "onnx":
            assert desc.details["named_dimensions"] == []  # no "batch" dim_param left


def test_dynamic_conversion_keeps_them_open(free_model, tmp_path):
    """The control: without --input-shape the same model has open dimensions."""
    manifest = convert(free_model, tmp_path, formats="onnx")
    desc = inspect(tmp_path / manifest.artifact("onnx").path, nodes=False)
    assert desc.inputs[0].shape[0] == "batch" and desc.details["named_dimensions"]
    assert any(not isinstance(d, int) for d in desc.inputs[0].shape[1:3])


def test_validate_feeds_the_fixed_shapes(free_model, fixed):
    manifest, out = fixed
    report = validate(free_model, [out], samples=3)
    assert report.passed, [r.diagnosis for r in report.results]
    assert len(report.results) == 4
    # the model alone would be fed DEFAULT_SPATIAL_DIM squares, which these artifacts refuse
    assert report.inputs["img"]["shape"] == [3, *FIXED[1:]]
    assert FIXED[1:3] != [DEFAULT_SPATIAL_DIM, DEFAULT_SPATIAL_DIM]


def test_open_batch_stays_open(free_model, tmp_path):
    manifest = convert(free_model, tmp_path, formats="onnx,tflite",
                       input_shapes={"img": [None, 24, 16, 3]})
    assert manifest.ok
    onnx_in = inspect(tmp_path / manifest.artifact("onnx").path, nodes=False).inputs[0]
    assert onnx_in.shape == ["batch", 24, 16, 3]
    tfl_in = inspect(tmp_path / manifest.artifact("tflite").path, nodes=False).inputs[0]
    assert tfl_in.shape == [None, 24, 16, 3]


@pytest.mark.parametrize("spec, message", [
    ("img=1,24,16,4", "dimension 3 is fixed at 3 in the model"),
    ("img=1,24,16", "3 dimensions given, the input has rank 4"),
    ("image=1,24,16,3", "no input 'image'; its inputs are: img"),
])
def test_contradicting_shape_is_a_one_line_error_and_writes_nothing(free_model, tmp_path,
                                                                   capsys, spec, message):
    out = tmp_path / "out"
    with pytest.raises(UserInputError, match=message):
        convert(free_model, out, input_shapes=[spec])
    assert not out.exists()
    assert main(["convert", str(free_model), "--out", str(out), "--input-shape", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("modelport: error: --input-shape") and message in err[-1]
    assert "Traceback" not in "\n".join(err) and not out.exists()


def test_manifest_on_disk_records_them(fixed):
    manifest, out = fixed
    data = json.loads(Path(manifest.path).read_text())
    assert data["options"]["input_shapes"] == {"img": FIXED}
    assert data["source"]["inputs"][0]["shape"] == [None, None, None, 3]


def test_inspect_of_the_output_directory_shows_the_fixed_shapes(fixed):
    from modelport.inspection import render_text

    manifest, out = fixed
    text = render_text(inspect(out))
    assert text.count("in: img[1,24,16,3]") == 4
