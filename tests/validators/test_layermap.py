"""The name map's pieces: reading name scopes out of tensor names (TensorFlow, TFLite's
``;``-joined fused names, Keras 3's ``_1`` scopes), aligning channels-first tensors, and
finding layers by their values alone when an artifact's names say nothing."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.validators.drift import sqnr_db
from modelport.validators.tensor_match import align, mentions, relative_error, scopes


def test_scopes_of_tensor_names():
    assert scopes("StatefulPartitionedCall/model/conv1_1/BiasAdd:0") == [
        ["StatefulPartitionedCall", "model", "conv1_1"]]
    assert scopes("m/relu1/Relu;m/bn1/batchnorm/add_1;m/conv1/BiasAdd") == [
        ["m", "relu1"], ["m", "bn1", "batchnorm"], ["m", "conv1"]]
    assert scopes("probs") == [[]]


@pytest.mark.parametrize("name,scope,quality", [
    ("m/conv1/BiasAdd:0", ("conv1",), 2),
    ("m/conv1_1/BiasAdd:0", ("conv1",), 1),  # Keras 3 reuses the scope with a suffix
    ("m/conv1_1/BiasAdd:0", ("conv1_1",), 2),
    ("m/conv10/BiasAdd:0", ("conv1",), 0),
    ("m/conv1/Relu", ("Relu",), 0),  # an op's own name is not a scope
    ("s/base_network/base_dense_1/MatMul_1", ("base_network", "base_dense_1"), 2),
    ("s/base_dense_1/MatMul", ("base_network", "base_dense_1"), 0),
    ("a/x/Relu;b/tower_1/dense_2/MatMul", ("tower", "dense"), 1),
])
def testmentions(name, scope, quality):
    assert mentions(scopes(name), scope) == quality


def test_align_finds_channels_first_and_squeezed_forms():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(2, 5, 4, 3))
    forms = align(np.transpose(ref, (0, 3, 1, 2)), ref)
    assert [f[1] for f in forms] == ["channels_first"]
    np.testing.assert_array_equal(forms[0][0], ref)
    assert align(ref.reshape(2, 60, 1), ref.reshape(2, 60))[0][1] == ""
    assert align(rng.normal(size=(2, 7)), ref) == []
    # a channels-first model's tensor held channels-last
    cf = rng.normal(size=(2, 3, 5, 4))
    assert "channels_last" in [f[1] for f in align(np.transpose(cf, (0, 2, 3, 1)), cf)]


def test_relative_error_and_sqnr():
    ref = np.array([3.0, 4.0])
    assert relative_error(ref, ref) == 0.0 and sqnr_db(ref, ref) is None
    got = ref + np.array([0.3, 0.4])
    assert relative_error(got, ref) == pytest.approx(0.1)
    assert sqnr_db(got, ref) == pytest.approx(20.0)
    assert relative_error(np.array([np.nan, 4.0]), ref) == float("inf")
    assert relative_error(np.zeros(2), np.zeros(2)) == 0.0


def test_artifact_without_names_is_mapped_by_values(converted, tmp_path):
    """An ONNX whose every internal value was renamed (as another tool might name them):
    nothing in the names points to a layer, yet the layers are found by their values."""
    import onnx

    from modelport.converters.onnx import rename_values
    from modelport.inspection.namemap import name_maps

    conv = converted.get("siamese")
    model = onnx.load(str(conv.artifact_path("onnx")))
    g = model.graph
    io = {v.name for v in list(g.input) + list(g.output)}
    inner = [o for n in g.node for o in n.output if o not in io]
    rename_values(g, {name: f"t{i}" for i, name in enumerate(inner)})
    for i, n in enumerate(g.node):
        n.name = f"node{i}"
    dest = tmp_path / "siamese.onnx"
    onnx.save(model, str(dest))
    report = name_maps(conv.source, [dest])
    (m,) = report.maps
    rows = {r.layer: r for r in m.rows}
    for key in ("base_network/base_dense_1", "base_network/base_dense_2",
                "base_network#2/base_dense_1", "base_network#2/base_dense_2"):
        assert rows[key].status == "matched" and rows[key].method == "value", rows[key]
        assert rows[key].tensor.startswith("t") and rows[key].relative_error < 1e-5
    assert rows["base_network/base_dense_1"].tensor != rows["base_network#2/base_dense_1"].tensor
