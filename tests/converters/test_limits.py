"""Size limits: a frozen .pb over protobuf's 2 GiB is refused with a clear message; a large
ONNX keeps its weights in a side file referenced by a relative path."""

from __future__ import annotations

import numpy as np
import pytest

from modelport import converters
from modelport.conversion import convert
from tests.models import dense_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return dense_model(tmp_path_factory.mktemp("limits") / "wide.h5", 12, 16, 5, seed=11)


def test_oversized_frozen_graph_is_refused(model_file, tmp_path, monkeypatch):
    from modelport.converters import frozen_pb

    # the real limit is 2 GiB; lower it so a small model crosses it
    monkeypatch.setattr(frozen_pb, "MAX_BYTES", 100)
    manifest = convert(model_file, tmp_path, formats="pb,onnx")
    pb = manifest.artifact("pb")
    assert not pb.ok and "2 GiB" in pb.error and "SavedModel or ONNX" in pb.error
    assert not (tmp_path / "wide.pb").exists()
    assert manifest.artifact("onnx").ok  # one format failing does not stop the others


def test_cli_exit_3_when_a_format_fails(model_file, tmp_path, monkeypatch, capsys):
    from modelport.cli import main
    from modelport.converters import frozen_pb

    monkeypatch.setattr(frozen_pb, "MAX_BYTES", 100)
    rc = main(["convert", str(model_file), "--out", str(tmp_path), "--to", "pb,tflite"])
    captured = capsys.readouterr()
    assert rc == 3
    assert "pb" in captured.err and "FAILED" in captured.err and "tflite" in captured.err
    assert (tmp_path / "wide.tflite").exists()


def test_large_onnx_uses_relative_external_data(model_file, tmp_path, monkeypatch):
    import onnx

    from modelport.converters import onnx as onnx_fmt

    monkeypatch.setattr(onnx_fmt, "EXTERNAL_DATA_OVER", 0)
    out = tmp_path / "out"
    manifest = convert(model_file, out, formats="onnx")
    rec = manifest.artifact("onnx")
    assert rec.ok and rec.details["external_data"]
    proto = onnx.load(str(out / "wide.onnx"), load_external_data=False)
    locations = {e.value for t in proto.graph.initializer for e in t.external_data
                 if e.key == "location"}
    assert len(locations) == 1
    (location,) = locations
    assert "/" not in location and (out / location).is_file()  # relative, next to the model
    # a second conversion replaces the pair and leaves no stale side file
    convert(model_file, out, formats="onnx")
    assert [p.name for p in out.glob("wide.onnx.*.data")] == [location]
    # moving the directory keeps it loadable: nothing points at the old absolute path
    moved = tmp_path / "moved"
    out.rename(moved)
    x = np.random.default_rng(1).standard_normal((3, 12)).astype("float32")
    got = converters.get("onnx").load(moved / "wide.onnx").run({"x": x})["y"]
    import keras

    want = keras.models.load_model(model_file, compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(got, want, atol=1e-5)
