"""Converting the same model twice gives the same signatures, I/O names and graph
structure; the formats the manifest calls byte-identical are byte-identical."""

from __future__ import annotations

import json

import pytest

from modelport import converters
from modelport.conversion import convert
from modelport.converters import determinism


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(5)
    a = keras.Input((6, 6, 2), name="img")
    b = keras.Input((3,), name="meta")
    x = keras.layers.Flatten()(keras.layers.Conv2D(3, 3)(a))
    x = keras.layers.Concatenate()([x, b])
    out1 = keras.layers.Dense(2, name="zeta")(x)
    out2 = keras.layers.Dense(1, name="alpha")(x)
    path = tmp_path_factory.mktemp("det") / "twice.h5"
    keras.Model([a, b], [out1, out2]).save(path)
    return path


def _structure(fmt, path):
    d = converters.get(fmt).describe(path)
    return ([t.to_dict() for t in d.inputs], [t.to_dict() for t in d.outputs],
            [(n.name, n.op, list(n.inputs)) for n in d.nodes])


def test_same_model_twice(model_file, tmp_path):
    # something else converted in between shifts every process-wide counter
    first = convert(model_file, tmp_path / "a")
    convert(model_file, tmp_path / "noise", formats="onnx,pb")
    second = convert(model_file, tmp_path / "b")
    assert first.ok and second.ok
    for fmt in converters.names():
        pa = tmp_path / "a" / first.artifact(fmt).path
        pb = tmp_path / "b" / second.artifact(fmt).path
        assert _structure(fmt, pa) == _structure(fmt, pb), fmt
        same = first.artifact(fmt).sha256 == second.artifact(fmt).sha256
        if fmt in determinism()["byte_identical"]:
            assert same, f"{fmt} is declared byte-identical but differs"
    recorded = json.loads((tmp_path / "a" / "twice.manifest.json").read_text())
    assert recorded["determinism"]["byte_identical"] == determinism()["byte_identical"]


def test_merged_constants_are_named_by_their_place(tmp_path):
    """Equal constants (the 1/6 of every hard-swish) are merged by Grappler/tf2onnx under
    whichever of their names a run sees first; modelport names them by position instead
    (MobileNetV3Small's ONNX differed between identical runs before)."""
    import keras
    import onnx

    keras.utils.set_random_seed(3)
    x = inp = keras.Input((8, 8, 3), name="img")
    for i in range(3):
        x = keras.layers.Conv2D(4, 3, padding="same", activation="hard_swish")(x)
    path = tmp_path / "hswish.keras"
    keras.Model(inp, keras.layers.GlobalAveragePooling2D(name="pool")(x)).save(path)
    manifest = convert(path, tmp_path / "out", formats="onnx")
    assert manifest.ok
    graph = onnx.load(tmp_path / "out" / manifest.artifact("onnx").path).graph
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in set(node.input):
            readers[name] = readers.get(name, 0) + 1
    shared = [i.name for i in graph.initializer if readers.get(i.name, 0) > 1]
    assert shared, "the model should hold a constant several nodes read"
    assert all(name.startswith("const__mp") for name in shared), shared


def test_the_frozen_graph_has_one_node_order(model_file):
    """TensorFlow emits a frozen graph's nodes in an order that varies between processes:
    whatever order they come in, the ``.pb`` (and what ONNX converts) has the same one,
    topological, and serialises to the same bytes."""
    import random

    from modelport.converters.frozen_pb import canonical_order, frozen_graph_def
    from modelport.loading.source import load

    gd = frozen_graph_def(load(model_file).serving)
    want = canonical_order(gd).SerializeToString(deterministic=True)
    rng = random.Random(3)
    for _ in range(5):
        shuffled = type(gd)()
        shuffled.CopyFrom(gd)
        nodes = list(shuffled.node)
        rng.shuffle(nodes)
        del shuffled.node[:]
        shuffled.node.extend(nodes)
        assert canonical_order(shuffled).SerializeToString(deterministic=True) == want
    seen: set[str] = set()
    ordered = canonical_order(gd)
    for node in ordered.node:
        assert all(i.lstrip("^").split(":")[0] in seen for i in node.input), node.name
        seen.add(node.name)
    assert len(ordered.node) == len(gd.node) > 10
