"""ONNX float16: the converter's known trap (a ``Cast(to=FLOAT)`` whose output became
float16) repaired, and the fallback route (float16 weights, float32 compute) taken when
the converter's graph is invalid."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.converters import onnx_quant


def _cast_graph(w: np.ndarray):
    """``relu(cast_to_float(x @ w))``: the Cast is a no-op in float32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Cast", ["m"], ["c"], to=TensorProto.FLOAT),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, w.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, w.shape[1]])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _session(model):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_float16_retargets_casts_the_converter_leaves_behind():
    from onnxconverter_common import float16

    w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    plain = float16.convert_float_to_float16(_cast_graph(w), keep_io_types=True)
    with pytest.raises(Exception, match="float16"):  # the upstream trap, as it is today
        _session(plain)
    fixed = onnx_quant._float16(_cast_graph(w))
    y = _session(fixed).run(None, {"x": x})[0]
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, np.maximum(x @ w, 0), atol=5e-3, rtol=5e-3)


def test_float16_weights_halve_the_file_and_compute_in_float32():
    import onnx

    w = np.random.default_rng(1).normal(size=(64, 32)).astype(np.float32)
    x = np.random.default_rng(2).normal(size=(3, 64)).astype(np.float32)
    model = _cast_graph(w)
    halved = onnx_quant._fp16_weights(_cast_graph(w))
    onnx.checker.check_model(halved)
    assert len(halved.SerializeToString()) <= 0.55 * len(model.SerializeToString())
    stored = {i.name: i.data_type for i in halved.graph.initializer}
    assert stored == {"w__fp16": onnx.TensorProto.FLOAT16}
    y = _session(halved).run(None, {"x": x})[0]
    w16 = w.astype(np.float16).astype(np.float32)  # the only rounding is the weights'
    np.testing.assert_allclose(y, np.maximum(x @ w16, 0), rtol=1e-5, atol=1e-5)
    assert not np.allclose(y, np.maximum(x @ w, 0), rtol=1e-7, atol=0)


@pytest.mark.parametrize("fault, outcome", [("dangling", "conversion failed"),
                                           ("garbage", "check failed")])
def test_a_bad_float16_graph_falls_back_to_float16_weights(tmp_path, monkeypatch, fault,
                                                           outcome):
    """``dangling``: an invalid graph (a node reads a tensor nothing makes) is refused
    before it is checked; ``garbage``: a valid graph whose largest weight is x1.5 loads
    and runs, and fails the float16 tier. Either way the next route writes the variant."""
    from onnx import numpy_helper

    from modelport.conversion import convert
    from tests.models import dense_model

    model = dense_model(tmp_path / "net.keras", 6, 1000, 3, seed=5)

    def broken(proto):
        converted = onnx_quant._float16_module().convert_float_to_float16(proto,
                                                                          keep_io_types=True)
        if fault == "dangling":
            converted.graph.node[-1].input[0] = "made_by_nothing"
            return converted
        biggest = max(converted.graph.initializer, key=lambda t: int(np.prod(t.dims)))
        scaled = numpy_helper.to_array(biggest) * np.float16(1.5)
        biggest.CopyFrom(numpy_helper.from_array(scaled, biggest.name))
        return converted

    monkeypatch.setattr(onnx_quant, "_float16", broken)
    manifest = convert(model, tmp_path / "out", formats="onnx", quantize="float16")
    assert manifest.ok, [a.error for a in manifest.artifacts]
    record = next(a for a in manifest.artifacts if a.quantization == "float16")
    assert [r["outcome"] for r in record.routes] == [outcome, "used"]
    assert ("invalid ONNX graph" if fault == "dangling" else "float16 tier") in \
        record.routes[0]["reason"]
    assert record.route == "float16-weights" and record.check["status"] == "passed"
    plain = next(a for a in manifest.artifacts if a.quantization is None)
    assert record.size <= 0.55 * plain.size


def test_variants_of_an_external_data_model_keep_their_weights_beside_them(tmp_path,
                                                                           monkeypatch):
    """A float32 ONNX whose weights sit in a side file (models over 1 GiB; forced here)
    gives variants written the same way: each names its own hash-named side file, no
    quantizer leftovers remain, and the directory can move."""
    import onnx

    from modelport import converters
    from modelport.conversion import convert
    from modelport.converters import onnx as onnx_fmt
    from tests.models import dense_model

    monkeypatch.setattr(onnx_fmt, "EXTERNAL_DATA_OVER", 0)
    model = dense_model(tmp_path / "wide.keras", 12, 400, 3, seed=8)
    out = tmp_path / "out"
    manifest = convert(model, out, formats="onnx", quantize="dynamic,int8,float16",
                       synthetic_calibration=True)
    assert manifest.ok, [(a.path, a.error) for a in manifest.artifacts if not a.ok]
    data = sorted(p.name for p in out.glob("*.data"))
    assert len(data) == 4 and all(".onnx." in name for name in data)  # hash-named, one each
    moved = tmp_path / "moved"
    out.rename(moved)
    x = np.random.default_rng(1).standard_normal((3, 12)).astype("float32")
    for a in manifest.artifacts:
        assert a.details["external_data"] is True
        proto = onnx.load(str(moved / a.path), load_external_data=False)
        (location,) = {e.value for t in proto.graph.initializer for e in t.external_data
                       if e.key == "location"}
        assert location.startswith(a.path + ".") and (moved / location).is_file()
        y = converters.get("onnx").load(moved / a.path).run({"x": x})["y"]
        assert y.shape == (3, 3) and np.isfinite(y).all()
