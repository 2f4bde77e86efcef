"""``inspect`` lists the names that really work: per format, the names printed equal the
artifact's own (parsed here independently of modelport) and feeding and fetching by exactly
those names runs the artifact and reproduces the Keras model."""

from __future__ import annotations

import collections
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from modelport.cli import main
from modelport.inspection import inspect

ATOL = 1e-4


def sqrt_abs(x):
    import keras

    return keras.ops.sqrt(keras.ops.abs(x) + 1.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A two-input, two-output Keras 3 model (with a named-function Lambda), converted to
    every format once for this module."""
    import keras
    from keras import layers

    from modelport.conversion import convert

    keras.utils.set_random_seed(7)
    tmp = tmp_path_factory.mktemp("inspect")
    image = keras.Input((6, 6, 3), name="image")
    meta = keras.Input((4,), name="meta")
    x = layers.Conv2D(4, 3, name="conv")(image)
    x = layers.Lambda(sqrt_abs, name="lambda_1")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    m = layers.Dense(4, activation="tanh", name="meta_dense")(meta)
    h = layers.Concatenate(name="concat")([x, m])
    probs = layers.Dense(3, activation="softmax", name="probs")(h)
    score = layers.Dense(1, name="score")(h)
    model = keras.Model([image, meta], [probs, score], name="tiny")
    model.save(tmp / "tiny.keras")
    model.save(tmp / "tiny.h5")
    manifest = convert(tmp / "tiny.keras", out_dir=tmp / "out",
                       custom_objects={"sqrt_abs": sqrt_abs})
    assert manifest.ok, [(a.format, a.error) for a in manifest.artifacts]
    rng = np.random.default_rng(0)
    feeds = {"image": rng.normal(size=(2, 6, 6, 3)).astype("float32"),
             "meta": rng.normal(size=(2, 4)).astype("float32")}
    got = model([feeds["image"], feeds["meta"]])
    expected = {"probs": np.asarray(got[0]), "score": np.asarray(got[1])}
    return SimpleNamespace(dir=tmp, out=tmp / "out", model=model, manifest=manifest,
                           feeds=feeds, expected=expected)


def printed(capsys, path, *flags) -> dict:
    """What ``modelport inspect PATH --json`` prints, parsed."""
    capsys.readouterr()
    assert main(["inspect", str(path), "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def names(items) -> list[str]:
    return [t["name"] for t in items]


def assert_expected(tiny, results: dict) -> None:
    assert sorted(results) == sorted(tiny.expected)
    for name, want in tiny.expected.items():
        np.testing.assert_allclose(np.asarray(results[name]), want, atol=ATOL, err_msg=name)


# ----------------------------------------------------------------------------- ONNX


def test_onnx_names_and_nodes_are_the_graphs(tiny, capsys):
    import onnx

    path = tiny.out / "tiny.onnx"
    d = printed(capsys, path)
    g = onnx.load(str(path)).graph
    inits = {i.name for i in g.initializer}
    assert d["format"] == "onnx"
    assert names(d["inputs"]) == [v.name for v in g.input if v.name not in inits]
    assert names(d["outputs"]) == [v.name for v in g.output]
    assert [(n["name"], n["op"], n["inputs"]) for n in d["nodes"]] == \
        [(n.name, n.op_type, list(n.input)) for n in g.node]
    dims = {v.name: [x.dim_param or x.dim_value for x in v.type.tensor_type.shape.dim]
            for v in list(g.input) + list(g.output)}
    for t in d["inputs"] + d["outputs"]:
        assert t["shape"] == dims[t["name"]]
    assert "batch" in d["named_dimensions"]
    assert d["opsets"]["ai.onnx"] == tiny.manifest.options["opset"]


def test_onnx_runs_by_the_printed_names(tiny, capsys):
    import onnxruntime as ort

    path = tiny.out / "tiny.onnx"
    d = printed(capsys, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fetch = names(d["outputs"])
    values = sess.run(fetch, {n: tiny.feeds[n] for n in names(d["inputs"])})
    assert_expected(tiny, dict(zip(fetch, values)))


def test_ops_histogram_counts_the_graphs_op_types(tiny, capsys):
    import onnx

    path = tiny.out / "tiny.onnx"
    desc = inspect(path, nodes=False, ops=True)
    want = collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    assert desc.details["op_histogram"] == dict(want)
    assert desc.nodes == []  # counted, but not listed unless asked
    capsys.readouterr()
    assert main(["inspect", str(path), "--ops"]) == 0
    text = capsys.readouterr().out
    op, count = want.most_common(1)[0]
    assert re.search(rf"^\s+{op}\s+{count}$", text, re.M)


# ----------------------------------------------------------------------------- frozen .pb


def _graph_def(path: Path):
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(path.read_bytes())
    return gd


def test_pb_names_are_placeholders_and_unconsumed_tensors(tiny, capsys):
    path = tiny.out / "tiny.pb"
    d = printed(capsys, path)
    gd = _graph_def(path)
    assert names(d["inputs"]) == [f"{n.name}:0" for n in gd.node if n.op == "Placeholder"]
    consumed = {i.lstrip("^").split(":")[0] for n in gd.node for i in n.input}
    assert names(d["outputs"]) == ["probs:0", "score:0"]
    for t in d["outputs"]:
        assert t["name"][:-2] in {n.name for n in gd.node}
        assert t["name"][:-2] not in consumed
    assert [(n["name"], n["op"], n["inputs"]) for n in d["nodes"]] == \
        [(n.name, n.op, list(n.input)) for n in gd.node]
    assert [t["shape"] for t in d["outputs"]] == [[None, 3], [None, 1]]


def test_pb_runs_in_a_session_by_the_printed_names(tiny, capsys):
    import tensorflow as tf

    path = tiny.out / "tiny.pb"
    d = printed(capsys, path)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(_graph_def(path), name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        fetch = names(d["outputs"])
        values = sess.run(fetch, {n: tiny.feeds[n.split(":")[0]] for n in names(d["inputs"])})
    assert_expected(tiny, {n.split(":")[0]: v for n, v in zip(fetch, values)})


def test_find_filters_nodes_and_found_tensors_can_be_fetched(tiny, capsys):
    import tensorflow as tf

    path = tiny.out / "tiny.pb"
    d = printed(capsys, path, "--find", r"lambda_1.*Sqrt")
    gd = _graph_def(path)
    want = [n.name for n in gd.node if re.search(r"lambda_1.*Sqrt", n.name)
            or re.search(r"lambda_1.*Sqrt", n.op)]
    assert want and names(d["nodes"]) == want
    assert d["matched_nodes"] == len(want) and d["node_count"] == len(gd.node)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        inner = sess.run(f"{want[0]}:0", {n: tiny.feeds[n[:-2]] for n in names(d["inputs"])})
    assert inner.shape == (2, 4, 4, 4) and (inner >= 1.0).all()  # sqrt(|x| + 1)
    capsys.readouterr()
    assert main(["inspect", str(path), "--find", "Sqrt"]) == 0
    text = capsys.readouterr().out
    assert want[0] in text and "MatMul" not in text


# ----------------------------------------------------------------------------- TFLite


def _interpreter(path: Path):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # without default delegates, so the op list is the file's (XNNPACK adds DELEGATE)
    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return Interpreter(model_path=str(path), experimental_op_resolver_type=resolver)


def test_tflite_signatures_tensors_and_ops_are_the_files(tiny, capsys):
    path = tiny.out / "tiny.tflite"
    d = printed(capsys, path)
    interp = _interpreter(path)
    sig = interp.get_signature_list()["serving_default"]
    assert sorted(names(d["inputs"])) == sorted(sig["inputs"])
    assert sorted(names(d["outputs"])) == sorted(sig["outputs"])
    assert sorted(d["signatures"]) == sorted(interp.get_signature_list())
    by_index = {t["index"]: t for t in d["tensors"]}
    details = interp.get_tensor_details()
    assert len(d["tensors"]) == len(details)
    for t in details:
        mine = by_index[t["index"]]
        assert mine["name"] == t["name"]
        assert mine["shape"] == [None if s < 0 else int(s) for s in t["shape_signature"]]
        assert mine["dtype"] == np.dtype(t["dtype"]).name
        assert ("quantization" in mine) == bool(len(t["quantization_parameters"]["scales"]))
    assert [n["op"] for n in d["nodes"]] == [o["op_name"] for o in interp._get_ops_details()]
    assert d["flex_ops"] == []


def test_tflite_runs_by_signature_names_and_by_tensor_names(tiny, capsys):
    path = tiny.out / "tiny.tflite"
    d = printed(capsys, path)
    interp = _interpreter(path)
    runner = interp.get_signature_runner("serving_default")
    out = runner(**{n: tiny.feeds[n] for n in names(d["inputs"])})
    assert_expected(tiny, {n: out[n] for n in names(d["outputs"])})
    # the underlying tensor names, as a C++ user finds them in the interpreter
    interp = _interpreter(path)
    index = {t["name"]: t["index"] for t in interp.get_tensor_details()}
    for t in d["inputs"]:
        interp.resize_tensor_input(index[t["tensor"]], tiny.feeds[t["name"]].shape)
    interp.allocate_tensors()
    for t in d["inputs"]:
        interp.set_tensor(index[t["tensor"]], tiny.feeds[t["name"]])
    interp.invoke()
    assert_expected(tiny, {t["name"]: interp.get_tensor(index[t["tensor"]]) for t in d["outputs"]})


# ----------------------------------------------------------------------------- SavedModel


def test_savedmodel_signature_keys_run_the_signature(tiny, capsys):
    import tensorflow as tf

    path = tiny.out / "tiny.savedmodel"
    d = printed(capsys, path)
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    assert sorted(names(d["inputs"])) == sorted(fn.structured_input_signature[1])
    assert sorted(names(d["outputs"])) == sorted(fn.structured_outputs)
    out = fn(**{n: tf.constant(tiny.feeds[n]) for n in names(d["inputs"])})
    assert_expected(tiny, {n: out[n].numpy() for n in names(d["outputs"])})


def test_savedmodel_tensor_names_work_in_a_session(tiny, capsys):
    import tensorflow as tf

    path = tiny.out / "tiny.savedmodel"
    d = printed(capsys, path)
    sig = d["signatures"]["serving_default"]
    assert [t["tensor"] for t in sig["inputs"]] == [t["tensor"] for t in d["inputs"]]
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(path))
        fetch = [t["tensor"] for t in d["outputs"]]
        values = sess.run(fetch, {t["tensor"]: tiny.feeds[t["name"]] for t in d["inputs"]})
    assert_expected(tiny, dict(zip(names(d["outputs"]), values)))


# ----------------------------------------------------------------------------- Keras files


@pytest.mark.parametrize("name", ["tiny.keras", "tiny.h5"])
def test_keras_file_names_are_the_ones_the_artifacts_use(tiny, capsys, name):
    d = printed(capsys, tiny.dir / name)
    src = tiny.manifest.source  # names decided by loading and building the model
    assert d["inputs"] == [{k: t[k] for k in ("name", "shape", "dtype")} for t in src["inputs"]]
    assert names(d["outputs"]) == names(src["outputs"])
    assert [t["dtype"] for t in d["outputs"]] == [t["dtype"] for t in src["outputs"]]
    if name.endswith(".keras"):  # Keras 3 records build shapes: Dense outputs are certain
        assert [t["shape"] for t in d["outputs"]] == [t["shape"] for t in src["outputs"]]
    assert {n["name"]: n["op"] for n in d["nodes"]} == \
        {l.name: type(l).__name__ for l in tiny.model.layers}
    assert next(n for n in d["nodes"] if n["name"] == "concat")["inputs"] == ["gap", "meta_dense"]
    assert d["keras_version"].split(".")[0] == "3" and d["backend"] == "tensorflow"
    assert d["data_format"] == "channels_last"
    assert d["custom_classes"] == []
    assert d["lambdas"] == [{"layer": "lambda_1", "function": "sqrt_abs", "stored_as": "name",
                             "uses": []}]


def test_keras3_custom_layer_and_lambda_bytecode_are_reported(tmp_path, capsys):
    import keras

    @keras.saving.register_keras_serializable(package="inspect_test")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    class Halver(keras.layers.Layer):  # not registered: known by its module only
        def call(self, x):
            return x * 0.5

    inp = keras.Input((3,), name="x")
    y = Halver(name="halver")(Doubler(name="doubler")(inp))
    y = keras.layers.Lambda(lambda t: keras.ops.square(t), name="square")(y)
    keras.Model(inp, y).save(tmp_path / "custom.keras")
    d = printed(capsys, tmp_path / "custom.keras")
    assert [(c["class"], c["layers"]) for c in d["custom_classes"]] == \
        [("Doubler", ["doubler"]), ("Halver", ["halver"])]
    assert d["custom_classes"][0]["registered_name"] == "inspect_test>Doubler"
    (lam,) = d["lambdas"]
    assert (lam["layer"], lam["function"], lam["stored_as"]) == ("square", "<lambda>", "bytecode")
    assert "square" in lam["uses"]
    assert names(d["inputs"]) == ["x"] and names(d["outputs"]) == ["square"]
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "custom.keras")]) == 0
    text = capsys.readouterr().out
    assert "Doubler" in text and "--custom-objects" in text and "<lambda>" in text


def test_keras2_h5_from_tf_keras(tmp_path, capsys):
    import tensorflow as tf
    import tf_keras

    class Scale(tf_keras.layers.Layer):
        def call(self, x):
            return x * 3.0

    feat = tf_keras.Input((4,), name="feat")
    aux = tf_keras.Input((2,), name="aux")
    x = tf_keras.layers.Dense(3, name="d1")(feat)
    # a lambda with tf as a global, not a closure cell (tf_keras cannot copy a module cell)
    root = eval("lambda t: tf.sqrt(tf.abs(t))", {"tf": tf})
    x = tf_keras.layers.Lambda(root, name="root")(x)
    y = tf.abs(Scale(name="scale")(aux))  # a TFOpLambda layer
    out = tf_keras.layers.Concatenate(name="cat")([x, y])
    model = tf_keras.Model([feat, aux], [out, x])
    model.save(tmp_path / "k2.h5")
    d = printed(capsys, tmp_path / "k2.h5")
    assert names(d["inputs"]) == model.input_names
    assert names(d["outputs"]) == model.output_names
    assert [t["shape"] for t in d["inputs"]] == [[None, 4], [None, 2]]
    assert d["keras_version"].split(".")[0] == "2" and d["format"] == "h5"
    assert {n["name"]: n["op"] for n in d["nodes"]} == \
        {l.name: type(l).__name__ for l in model.layers}
    assert next(n for n in d["nodes"] if n["name"] == "cat")["inputs"] == ["root", "tf.math.abs"]
    assert [c["class"] for c in d["custom_classes"]] == ["Scale"]  # TFOpLambda is built in
    (lam,) = d["lambdas"]
    assert lam["layer"] == "root" and lam["function"] == "<lambda>"
    assert {"sqrt", "abs"} <= set(lam["uses"])


def test_keras3_h5_operations_and_application_layers_are_not_custom(tmp_path, capsys):
    import keras
    from keras.src.applications.convnext import LayerScale

    class Mine(keras.layers.Layer):
        def call(self, x):
            return x

    ids = keras.Input((5,), dtype="int32", name="ids")
    x = keras.layers.Embedding(9, 4, mask_zero=True)(ids)  # a NotEqual operation node
    x = LayerScale(0.5, 4, name="scale")(keras.layers.GlobalAveragePooling1D()(x))
    y = Mine(name="mine")(x + 1.0)  # an Add operation node
    keras.Model(ids, y).save(tmp_path / "k3.h5")
    d = printed(capsys, tmp_path / "k3.h5")
    ops = {n["op"] for n in d["nodes"]}
    assert {"NotEqual", "Add", "LayerScale"} <= ops
    assert [(c["class"], c["layers"]) for c in d["custom_classes"]] == [("Mine", ["mine"])]


def test_old_names_of_keras_layers_are_not_custom(tmp_path, capsys):
    import h5py

    config = {"class_name": "Sequential", "config": [
        {"class_name": "Convolution2D", "config": {
            "name": "conv", "nb_filter": 2, "nb_row": 3, "nb_col": 3, "border_mode": "same",
            "batch_input_shape": [None, 3, 8, 8], "dim_ordering": "th", "activation": "relu"}},
        {"class_name": "CuDNNGRU", "config": {"name": "gru", "units": 2}},
        {"class_name": "Oddity", "config": {"name": "odd"}}]}
    with h5py.File(tmp_path / "old.h5", "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = b"1.2.2"
        f.create_group("model_weights")
    d = printed(capsys, tmp_path / "old.h5")
    assert [c["class"] for c in d["custom_classes"]] == ["Oddity"]


# ----------------------------------------------------------------------------- convert output


def test_convert_output_directory_summary(tiny, capsys, tmp_path):
    d = printed(capsys, tiny.out)
    assert d["format"] == "convert-output"
    assert names(d["inputs"]) == ["image", "meta"] and names(d["outputs"]) == ["probs", "score"]
    assert [(a["format"], a["exists"]) for a in d["artifacts"]] == \
        [(f, True) for f in ("savedmodel", "pb", "tflite", "onnx")]
    assert [names(a["outputs"]) for a in d["artifacts"]] == \
        [names(a.to_dict()["outputs"]) for a in tiny.manifest.artifacts]
    # a copy missing its ONNX file says so
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(tiny.out / "tiny.manifest.json", copy)
    shutil.copy(tiny.out / "tiny.tflite", copy)
    d = printed(capsys, copy / "tiny.manifest.json")
    assert {a["format"]: a["exists"] for a in d["artifacts"]} == \
        {"savedmodel": False, "pb": False, "tflite": True, "onnx": False}
    capsys.readouterr()
    assert main(["inspect", str(copy)]) == 0
    assert "MISSING" in capsys.readouterr().out


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name, content", [
    ("missing.onnx", None), ("model.txt", b"hello"), ("bad.onnx", b"not onnx at all"),
    ("bad.tflite", b"garbage!"), ("bad.pb", b"\xff\xff\xff"), ("empty_dir", "dir"),
])
def test_unusable_paths_exit_2_with_a_message(tmp_path, capsys, name, content):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    capsys.readouterr()
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "modelport: error:" in err and name in err


def test_bad_regex_is_a_user_error(tiny, capsys):
    assert main(["inspect", str(tiny.out / "tiny.onnx"), "--find", "("]) == 2
    assert "regular expression" in capsys.readouterr().err
