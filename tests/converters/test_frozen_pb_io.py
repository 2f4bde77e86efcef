"""A ``.pb`` made by another tool: a graph built with ``import_graph_def(input_map=...)``
keeps the placeholders it replaced, unconnected. Its inputs are the placeholders its
outputs depend on; ``inspect`` names the unused ones."""

from __future__ import annotations

import numpy as np
import pytest

from modelport import converters


@pytest.fixture(scope="module")
def remapped_pb(tmp_path_factory):
    import tensorflow as tf

    inner = tf.Graph()
    with inner.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        w = tf.constant(np.arange(6, dtype=np.float32).reshape(3, 2))
        tf.identity(tf.matmul(x, w) + 1.0, name="y")
    outer = tf.Graph()
    with outer.as_default():
        features = tf.compat.v1.placeholder(tf.float32, [None, 3], name="features")
        scaled = features * 2.0
        (y,) = tf.compat.v1.import_graph_def(inner.as_graph_def(), input_map={"x:0": scaled},
                                             return_elements=["y:0"], name="net")
        tf.identity(y, name="scores")
    path = tmp_path_factory.mktemp("pb") / "remapped.pb"
    path.write_bytes(outer.as_graph_def().SerializeToString())
    return path


def test_inputs_are_the_placeholders_outputs_need(remapped_pb):
    fmt = converters.get("pb")
    desc = fmt.describe(remapped_pb)
    assert [t.name for t in desc.inputs] == ["features:0"]
    assert [t.name for t in desc.outputs] == ["scores:0"]
    assert desc.details["unused_placeholders"] == ["net/x:0"]
    runner = fmt.load(remapped_pb)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype("float32")
    want = (x * 2) @ np.arange(6, dtype=np.float32).reshape(3, 2) + 1
    got = runner.run({"features": x})["scores"]  # no feed demanded for net/x
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # it may still be fed (harmlessly): a Keras input the outputs ignore keeps its place
    # in the feed dict of modelport's own .pb
    optional = [t.name for t in runner.inputs if t.extra.get("optional")]
    assert optional == ["net/x"]
    got = runner.run({"features": x, "net/x": x})["scores"]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_keras_inputs_the_outputs_ignore_are_still_fed(tmp_path):
    import keras

    from modelport.conversion import convert

    keras.utils.set_random_seed(2)
    used, ignored = keras.Input((4,), name="used"), keras.Input((2,), name="ignored")
    model = keras.Model([used, ignored], keras.layers.Dense(3, name="y")(used))
    model.save(tmp_path / "two.keras")
    record = convert(tmp_path / "two.keras", tmp_path / "out", formats="pb").artifact("pb")
    assert record.ok and record.check["status"] == "passed", record.error


def test_inspect_names_the_unused_placeholders(remapped_pb, capsys):
    from modelport.cli import main

    assert main(["inspect", str(remapped_pb)]) == 0
    out = capsys.readouterr().out
    assert "unused placeholders" in out and "net/x:0" in out
    inputs = out.split("inputs (")[1].split("outputs (")[0]
    assert "features:0" in inputs and "net/x" not in inputs
