"""``modelport inspect --map MODEL OUT_DIR``: every Keras layer output that survives
conversion has a counterpart in every artifact, and the ones that do not are named as
fused; on the demo model and on real files from the corpus."""

from __future__ import annotations

import json

import pytest

from modelport.cli import main
from modelport.inspection.namemap import name_maps
from tests.paths import CORPUS

SURVIVES = {"matched", "identity"}


def test_demo_model_every_layer_output_has_a_counterpart(converted, capsys):
    conv = converted.get("siamese")
    report = name_maps(conv.source, [conv.out_dir])
    assert sorted(m.format for m in report.maps) == ["onnx", "pb", "savedmodel", "tflite"]
    for m in report.maps:
        assert {r.status for r in m.rows} <= SURVIVES, (m.format, [
            (r.layer, r.status, r.note) for r in m.rows])
        rows = {r.layer: r for r in m.rows}
        # the two calls of the shared tower are told apart by their values
        assert rows["base_network/base_dense_1"].tensor != rows["base_network#2/base_dense_1"].tensor
        assert rows["base_network/base_dropout"].status == "identity"
        assert rows["distance"].method == "output"
        assert all(r.relative_error < 1e-5 for r in m.rows if r.status == "matched")
    assert main(["inspect", "--map", str(conv.fixture.path), str(conv.out_dir), "--json",
                 "--custom-objects", str(conv.fixture.custom_objects)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["artifacts"]) == 4 and not data["failed"]
    tflite = next(a for a in data["artifacts"] if a["format"] == "tflite")
    assert all(isinstance(r["index"], int) for r in tflite["rows"] if r["status"] == "matched")


def test_folded_batchnorm_is_listed_as_fused(converted, capsys):
    """cnn_bn: Conv2D, BatchNormalization, ReLU; TFLite fuses the three into one op, whose
    tensor carries the ReLU's output: the convolution and the BatchNorm are fused."""
    conv = converted.get("cnn_bn")
    report = name_maps(conv.source, [conv.out_dir])
    by_format = {m.format: m for m in report.maps}
    for fmt in ("savedmodel", "pb", "onnx"):  # each layer's output kept as a tensor
        assert {r.status for r in by_format[fmt].rows} <= SURVIVES, fmt
    rows = {r.layer: r for r in by_format["tflite"].rows}
    for layer in ("conv1", "bn1", "conv2", "bn2"):
        assert rows[layer].status == "fused", rows[layer]
    assert rows["conv1"].note == rows["bn1"].note == "fused into relu1's tensor"
    assert rows["relu1"].status == "matched" and "conv1" in rows["relu1"].tensor
    assert main(["inspect", "--map", str(conv.fixture.path), str(conv.out_dir)]) == 0
    text = capsys.readouterr().out
    assert "fused into" in text and "name+value" in text


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["HsinM__mnist-NCS__model.h5",
                                  "MohammadDaadour__MNIST-Digit-Classification__mnist_model_aug.h5"])
def test_corpus_model_every_layer_output_has_a_counterpart(name, tmp_path):
    from modelport.conversion import convert
    from modelport.loading.source import load

    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"corpus file {name} not present")
    source = load(path)
    assert convert(source, tmp_path, formats="all").ok
    report = name_maps(source, [tmp_path])
    assert len(report.maps) == 4
    for m in report.maps:
        assert m.rows and {r.status for r in m.rows} <= SURVIVES | {"fused"}, (m.format, [
            (r.layer, r.status) for r in m.rows])


def test_map_needs_artifacts_and_extra_paths_need_map(converted, capsys):
    conv = converted.get("siamese")
    assert main(["inspect", "--map", str(conv.fixture.path)]) == 2
    assert "--map needs the artifacts" in capsys.readouterr().err
    assert main(["inspect", str(conv.fixture.path), str(conv.out_dir)]) == 2
    assert "only for --map" in capsys.readouterr().err
