"""``convert --layout channels_last``: channels_first models come out with NHWC inputs and
no TRANSPOSE next to any convolution in the TFLite graph (op types counted in the
flatbuffer), and every artifact validates against the original channels_first model."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

from modelport.cli import main
from modelport.conversion import convert
from modelport.inspection import inspect
from modelport.validators.validation import validate

CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "CONV_3D")


def _transposes_next_to_convs(tflite: Path) -> tuple[int, int]:
    """(TRANSPOSE ops in the graph, those feeding or fed by a convolution)."""
    nodes = inspect(tflite, nodes=True).nodes
    producer = {n.name: n for n in nodes}
    consumers: dict[str, list] = {}
    for n in nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)
    around = 0
    for n in nodes:
        if n.op not in CONVS:
            continue
        before = [producer[i] for i in n.inputs if i in producer]
        after = consumers.get(n.name, [])
        around += sum(m.op == "TRANSPOSE" for m in before + after)
    return sum(n.op == "TRANSPOSE" for n in nodes), around


def _convert_cf(path, out, **kw):
    manifest = convert(path, out, layout="channels_last", **kw)
    assert manifest.ok, [(a.format, a.error) for a in manifest.artifacts]
    return manifest


@pytest.fixture(scope="module")
def cnn_cf(fixture_models, tmp_path_factory):
    fx = fixture_models.get("cnn_cf")
    out = tmp_path_factory.mktemp("cnn_cf_last")
    return fx.path, _convert_cf(fx.path, out), out


@pytest.fixture(scope="module")
def zoo_cf(tmp_path_factory):
    from modelport.fixtures.zoo import build_model

    root = tmp_path_factory.mktemp("zoo_cf")
    saved = build_model("channels_first", root)
    path = root / "channels_first.keras"
    assert path.exists(), saved
    return path, _convert_cf(path, root / "out"), root / "out"


@pytest.fixture(scope="module")
def theano(tmp_path_factory):
    from tests.loading.legacy.test_theano_weights import keras1_th_file

    root = tmp_path_factory.mktemp("theano")
    os.environ.pop("MODELPORT_KERAS1_BACKEND", None)
    path = keras1_th_file(root)
    return path, _convert_cf(path, root / "out"), root / "out"


@pytest.mark.parametrize("case", ["cnn_cf", "zoo_cf", "theano"])
def test_nhwc_inputs_no_transposes_and_parity_with_the_original(case, request):
    path, manifest, out = request.getfixturevalue(case)
    (name,) = [t["name"] for t in manifest.source["inputs"]]
    assert manifest.source["layout"][name] == "NCHW"  # the source as it is
    assert manifest.options["layout"] == "channels_last"
    nchw = manifest.source["inputs"][0]["shape"]
    for record in manifest.artifacts:
        assert record.layout[name] == "NHWC"
        assert record.check["status"] == "passed"
        shape = inspect(out / record.path, nodes=False).inputs[0].shape
        assert shape[1:] == [nchw[2], nchw[3], nchw[1]], (record.format, shape)
    transposes, around = _transposes_next_to_convs(out / manifest.artifact("tflite").path)
    assert (transposes, around) == (0, 0)
    report = validate(path, [out])
    assert report.passed and len(report.results) == 4, [r.diagnosis for r in report.results]
    assert all(r.layout[name] == "NHWC" for r in report.results)


def test_without_layout_the_same_model_has_transposes_around_convs(converted):
    """The control: the default conversion keeps NCHW, between transposes (the converter
    folds the pairs between consecutive convolutions; the ones at the ends stay)."""
    conv = converted.get("cnn_cf")
    transposes, around = _transposes_next_to_convs(conv.artifact_path("tflite"))
    assert around >= 1 and transposes >= 2
    assert conv.manifest.artifact("tflite").layout["image"] == "NCHW"


def test_validate_catches_an_nhwc_artifact_declared_nchw(cnn_cf, tmp_path):
    """Parity is proven with transposed feeds, not assumed: the same artifacts with the
    manifest claiming NCHW fail, and the diagnosis names the layout they expect."""
    import shutil

    path, manifest, out = cnn_cf
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    mpath = next(copy.glob("*.manifest.json"))
    data = json.loads(mpath.read_text())
    for a in data["artifacts"]:
        a["layout"]["image"] = "NCHW"
    mpath.write_text(json.dumps(data))
    report = validate(path, [copy / manifest.artifact("onnx").path])
    assert not report.passed
    assert "expects NHWC input" in report.results[0].diagnosis


def test_layout_with_fixed_shapes(fixture_models, tmp_path):
    """--input-shape gives the artifacts' (NHWC) shape; the check feeds it to the NCHW model."""
    fx = fixture_models.get("cnn_cf")
    manifest = _convert_cf(fx.path, tmp_path, input_shapes=["image=1,16,12,3"],
                           formats="tflite,onnx")
    for record in manifest.artifacts:
        assert inspect(tmp_path / record.path, nodes=False).inputs[0].shape == [1, 16, 12, 3]
    assert validate(fx.path, [tmp_path]).passed


def test_channels_last_model_is_unchanged_with_a_note(fixture_models, tmp_path):
    manifest = convert(fixture_models.get("cnn_bn").path, tmp_path, formats="onnx",
                       layout="channels_last")
    assert manifest.ok and manifest.artifact("onnx").layout["pixels"] == "NHWC"
    assert any("changed nothing" in w for w in manifest.warnings)


def test_refusal_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    import keras
    from keras import layers

    from tests.loading.test_relayout import _save, flip_rows

    objects = tmp_path / "objects.py"
    objects.write_text("import keras\n\n\ndef flip_rows(x):\n"
                       "    return keras.ops.flip(x, axis=2)\n")
    inp = keras.Input((3, 8, 6), name="image")
    x = layers.Conv2D(4, 3, data_format="channels_first", name="conv")(inp)
    x = layers.Lambda(flip_rows, name="flip")(x)
    model = _save(keras.Model(inp, layers.Flatten(name="flat")(x)), tmp_path / "flip.keras")
    out = tmp_path / "out"
    code = main(["convert", str(model), "--out", str(out), "--layout", "channels_last",
                 "--custom-objects", str(objects)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("modelport: error: --layout channels_last: layer 'flip' (Lambda)")
    assert not out.exists()


def test_inspect_of_the_output_directory_shows_the_moved_layout(cnn_cf):
    from modelport.inspection import render_text

    _, manifest, out = cnn_cf
    text = render_text(inspect(out))
    assert "in: image[?,16,12,3] NHWC" in text  # the tflite row (ONNX names its batch)
    assert "image  [?,3,16,12]" in text  # the Keras source, as it is
