"""One test per upgrade rule on a small config snippet, plus era gating and coverage."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from modelport.core.errors import ModelFileError
from modelport.loading.legacy.rules import RULES, Context, get_rule
from modelport.loading.legacy.upgrade import applicable_rules, upgrade_config
from modelport.loading.raw import RawModel


def layer(cls: str, **cfg: Any) -> dict[str, Any]:
    return {"class_name": cls, "config": {"name": cfg.pop("name", cls.lower()), **cfg}}


def seq(*layers: dict[str, Any], listed: bool = False) -> dict[str, Any]:
    return {"class_name": "Sequential",
            "config": list(layers) if listed else {"name": "seq", "layers": list(layers)}}


def raw(config: dict[str, Any], version: str = "1.2.2", backend: str = "") -> RawModel:
    return RawModel(Path("m.h5"), "h5", copy.deepcopy(config), version, backend)


def apply(name: str, node: dict[str, Any], version: str = "1.2.2") -> bool:
    """Run one rule the way ``upgrade_config`` does, on ``node`` (a layer or a root)."""
    r = get_rule(name)
    ctx = Context(version, "", int(version[0]), node)
    assert r.applies(ctx), f"{name} does not apply to Keras {version}"
    return r.fix(node, ctx)


def cfg(node: dict[str, Any]) -> dict[str, Any]:
    return node["config"]


# ------------------------------------------------------------------ structure


def test_sequential_list_config_wraps_root_and_nested():
    root = seq(layer("Dense", units=2), listed=True)
    nested = {"name": "inner", "class_name": "Sequential", "config": [layer("Dense", units=1)],
              "inbound_nodes": []}
    model = {"class_name": "Model", "config": {"name": "m", "layers": [nested]}}
    assert apply("sequential_list_config", root, "2.1.6")
    assert cfg(root) == {"name": "sequential", "layers": [layer("Dense", units=2)]}
    assert apply("sequential_list_config", model, "2.1.6")
    assert nested["config"]["name"] == "inner"  # inbound_nodes refer to it by this name


def test_sequential_input_layer_moves_batch_shape():
    root = seq(layer("GRU", name="gru_1", units=3, batch_input_shape=[None, 905, 1],
                     dtype="float32"), layer("Dense", units=2))
    assert apply("sequential_input_layer", root, "2.2.4")
    first, second = cfg(root)["layers"][:2]
    assert first == {"class_name": "InputLayer", "config": {
        "batch_input_shape": [None, 905, 1], "dtype": "float32", "sparse": False,
        "name": "gru_1_input"}}
    assert "batch_input_shape" not in cfg(second)
    assert not apply("sequential_input_layer", root, "2.2.4")  # idempotent


def test_sequential_input_layer_keeps_embedding_vocabulary():
    root = seq(layer("Embedding", input_dim=7, output_dim=4, input_length=3,
                     batch_input_shape=[None, 3]))
    apply("sequential_input_layer", root, "2.3.1")
    emb = cfg(root)["layers"][1]
    assert cfg(emb)["input_dim"] == 7 and cfg(emb)["input_length"] == 3


def test_sequential_merge_branches_becomes_functional():
    a = seq(layer("Dense", name="a1", batch_input_shape=[None, 3], input_dtype="float32"),
            layer("Dense", name="a2"), listed=True)
    b = {"class_name": "Sequential", "config": {"name": "right", "layers": [
        layer("Dense", name="b1", batch_input_shape=[None, 5])]}}
    root = seq(layer("Merge", name="m", mode="concat", layers=[a, b]), layer("Dense", name="out"),
               listed=True)
    assert apply("sequential_merge_branches", root)
    assert root["class_name"] == "Model"
    model = cfg(root)
    assert [l["name"] for l in model["layers"]] == ["a1_input", "m_branch_0", "b1_input",
                                                    "right", "m", "out"]
    assert model["input_layers"] == [["a1_input", 0, 0], ["b1_input", 0, 0]]
    assert model["output_layers"] == [["out", 0, 0]]
    merge, out = model["layers"][4:]
    assert merge["inbound_nodes"] == [[["m_branch_0", 1, 0, {}], ["right", 1, 0, {}]]]
    assert "layers" not in merge["config"] and out["inbound_nodes"] == [[["m", 0, 0, {}]]]
    assert "batch_input_shape" not in model["layers"][1]["config"]["layers"][0]["config"]
    assert not apply("sequential_merge_branches", seq(layer("Dense"), listed=True))


def test_keras1_node_refs_get_kwargs():
    model = {"class_name": "Model", "config": {"name": "m", "layers": [
        {"name": "d", "class_name": "Dense", "config": {"name": "d"},
         "inbound_nodes": [[["input_1", 0, 0]]]}]}}
    assert apply("keras1_node_refs", model)
    assert model["config"]["layers"][0]["inbound_nodes"] == [[["input_1", 0, 0, {}]]]


@pytest.mark.parametrize("mode, cls, extra", [
    ("sum", "Add", {}), ("mul", "Multiply", {}), ("ave", "Average", {}),
    ("max", "Maximum", {}), ("concat", "Concatenate", {"axis": 1}), ("dot", "Dot", {"axes": 1}),
])
def test_legacy_merge_layer(mode, cls, extra):
    node = layer("Merge", name="m", mode=mode, concat_axis=1, dot_axes=1, mode_type="raw",
                 output_shape=None)
    assert apply("legacy_merge_layer", node)
    assert node == {"class_name": cls, "config": {"name": "m", "trainable": True, **extra}}


@pytest.mark.parametrize("node", [
    layer("Merge", name="m", mode="cos"),
    layer("Merge", name="m", mode="lambda_fn", mode_type="lambda"),
    layer("Merge", name="m", mode="concat", layers=[seq(layer("Dense"))]),
])
def test_legacy_merge_layer_refuses_what_has_no_equivalent(node):
    with pytest.raises(ModelFileError, match="layer m: .*Merge"):
        apply("legacy_merge_layer", node)


# ------------------------------------------------------------------ Keras 1 arguments


def test_keras1_class_names():
    node = layer("AtrousConvolution2D")
    assert apply("keras1_class_names", node)
    assert node["class_name"] == "Conv2D"


def test_keras1_removed_layers_say_why():
    with pytest.raises(ModelFileError, match="Highway was removed in Keras 2.*--custom-objects"):
        apply("keras1_removed_layers", layer("Highway"))


def test_keras1_time_distributed_dense():
    node = layer("TimeDistributedDense", name="td", output_dim=3, input_dim=5, init="zero")
    assert apply("keras1_time_distributed_dense", node)
    assert node["class_name"] == "TimeDistributed"
    assert cfg(node)["name"] == "td"
    inner = cfg(node)["layer"]
    assert inner["class_name"] == "Dense" and cfg(inner)["output_dim"] == 3
    assert "input_dim" not in cfg(inner)


@pytest.mark.parametrize("old, new", [("th", "channels_first"), ("tf", "channels_last"),
                                      ("default", None)])
def test_keras1_dim_ordering(old, new):
    node = layer("MaxPooling2D", dim_ordering=old)
    assert apply("keras1_dim_ordering", node)
    assert cfg(node).get("data_format") == new and "dim_ordering" not in cfg(node)


def test_keras1_input_dtype():
    node = layer("InputLayer", input_dtype="float32")
    assert apply("keras1_input_dtype", node)
    assert cfg(node)["dtype"] == "float32" and "input_dtype" not in cfg(node)


def test_keras1_input_dim_first_layer_gets_a_shape_later_layers_lose_it():
    first = layer("LSTM", output_dim=4, input_dim=3, input_length=10)
    later = layer("Dense", output_dim=2, input_dim=4)
    emb = layer("Embedding", input_dim=100, output_dim=8, input_length=5)
    root = seq(first, later, emb)
    for node in (first, later, emb):
        r = get_rule("keras1_input_dim")
        r.fix(node, Context("1.2.2", "", 1, root))
    assert cfg(first)["batch_input_shape"] == [None, 10, 3]
    assert "input_dim" not in cfg(later) and "batch_input_shape" not in cfg(later)
    assert cfg(emb)["input_dim"] == 100  # a vocabulary size, not a shape


def test_keras1_dense_args():
    node = layer("Dense", output_dim=3, init="glorot_uniform", W_regularizer=None, bias=False,
                 b_constraint=None)
    assert apply("keras1_dense_args", node)
    assert cfg(node) == {"name": "dense", "units": 3, "kernel_initializer": "glorot_uniform",
                         "kernel_regularizer": None, "use_bias": False, "bias_constraint": None}


def test_keras1_dropout_args():
    drop, noise = layer("Dropout", p=0.5), layer("GaussianNoise", sigma=0.1)
    assert apply("keras1_dropout_args", drop) and apply("keras1_dropout_args", noise)
    assert cfg(drop)["rate"] == 0.5 and cfg(noise)["stddev"] == 0.1


def test_keras1_embedding_args():
    node = layer("Embedding", input_dim=10, output_dim=4, init="uniform", dropout=0.2)
    assert apply("keras1_embedding_args", node)
    assert cfg(node) == {"name": "embedding", "input_dim": 10, "output_dim": 4,
                         "embeddings_initializer": "uniform"}


def test_keras1_conv_args_2d_and_1d():
    c2 = layer("Conv2D", nb_filter=6, nb_row=3, nb_col=5, subsample=[2, 2], border_mode="same",
               init="he_normal", bias=True)
    c1 = layer("Conv1D", nb_filter=8, filter_length=3, subsample_length=1, border_mode="valid",
               atrous_rate=2)
    assert apply("keras1_conv_args", c2) and apply("keras1_conv_args", c1)
    assert cfg(c2) == {"name": "conv2d", "filters": 6, "kernel_size": [3, 5], "strides": [2, 2],
                       "padding": "same", "kernel_initializer": "he_normal", "use_bias": True}
    assert cfg(c1) == {"name": "conv1d", "filters": 8, "kernel_size": 3, "strides": 1,
                       "padding": "valid", "dilation_rate": 2}


def test_keras1_conv_args_refuses_full_padding():
    with pytest.raises(ModelFileError, match="border_mode='full'"):
        apply("keras1_conv_args", layer("Conv2D", border_mode="full"))


def test_keras1_pooling_args():
    node = layer("MaxPooling1D", pool_length=4, stride=2, border_mode="valid")
    assert apply("keras1_pooling_args", node)
    assert cfg(node) == {"name": "maxpooling1d", "pool_size": 4, "strides": 2, "padding": "valid"}


def test_keras1_recurrent_args():
    lstm = layer("LSTM", output_dim=5, init="glorot_uniform", inner_init="orthogonal",
                 inner_activation="hard_sigmoid", forget_bias_init="one", consume_less="gpu",
                 dropout_W=0.1, dropout_U=0.2, U_regularizer=None)
    gru = layer("GRU", output_dim=2, forget_bias_init="zero")
    rnn = layer("SimpleRNN", output_dim=2, consume_less="cpu")
    assert apply("keras1_recurrent_args", lstm) and apply("keras1_recurrent_args", gru)
    assert apply("keras1_recurrent_args", rnn)
    assert cfg(rnn) == {"name": "simplernn", "units": 2}
    assert cfg(lstm) == {"name": "lstm", "units": 5, "kernel_initializer": "glorot_uniform",
                         "recurrent_initializer": "orthogonal",
                         "recurrent_activation": "hard_sigmoid", "unit_forget_bias": True,
                         "implementation": 2, "dropout": 0.1, "recurrent_dropout": 0.2,
                         "recurrent_regularizer": None}
    assert cfg(gru)["reset_after"] is False and cfg(gru)["unit_forget_bias"] is False


def test_keras1_batchnorm_args():
    node = layer("BatchNormalization", mode=0, beta_init="zero", gamma_init="one", axis=1)
    assert apply("keras1_batchnorm_args", node)
    assert cfg(node) == {"name": "batchnormalization", "axis": 1, "beta_initializer": "zero",
                         "gamma_initializer": "one"}
    with pytest.raises(ModelFileError, match="mode=2"):
        apply("keras1_batchnorm_args", layer("BatchNormalization", mode=2))


def test_keras1_prelu_args():
    node = layer("PReLU", init="zero")
    assert apply("keras1_advanced_activation_args", node)
    assert cfg(node)["alpha_initializer"] == "zero"


def test_keras1_zero_padding_dict():
    node = layer("ZeroPadding2D", padding={"top_pad": 1, "bottom_pad": 2, "left_pad": 3,
                                           "right_pad": 4})
    assert apply("keras1_zero_padding_dict", node)
    assert cfg(node)["padding"] == [[1, 2], [3, 4]]


def test_keras1_objects():
    node = layer("Dense", kernel_regularizer={"name": "L1L2Regularizer", "l1": 0.0, "l2": 0.001},
                 kernel_constraint={"name": "MaxNorm", "m": 2, "axis": 0},
                 bias_initializer="zero", activity_regularizer={"name": "ActivityRegularizer",
                                                                "l1": 0.1})
    assert apply("keras1_objects", node)
    assert cfg(node)["kernel_regularizer"] == {"class_name": "L1L2",
                                               "config": {"l1": 0.0, "l2": 0.001}}
    assert cfg(node)["kernel_constraint"] == {"class_name": "MaxNorm",
                                              "config": {"max_value": 2, "axis": 0}}
    assert cfg(node)["bias_initializer"] == "zeros"
    assert cfg(node)["activity_regularizer"]["config"]["l1"] == 0.1


# ------------------------------------------------------------------ Keras 2 / tf.keras


def test_cudnn_rnn():
    lstm, gru = layer("CuDNNLSTM", units=4), layer("CuDNNGRU", units=3)
    assert apply("cudnn_rnn", lstm, "2.2.4") and apply("cudnn_rnn", gru, "2.2.4")
    assert lstm["class_name"] == "LSTM" and cfg(lstm)["recurrent_activation"] == "sigmoid"
    assert cfg(lstm)["unit_forget_bias"] is True
    assert gru["class_name"] == "GRU" and cfg(gru)["reset_after"] is True


def test_gru_reset_after_default():
    old, new = layer("GRU", units=2), layer("GRU", units=2, reset_after=True)
    assert apply("gru_reset_after_default", old, "2.0.8")
    assert not apply("gru_reset_after_default", new, "2.4.0")
    assert cfg(old)["reset_after"] is False and cfg(new)["reset_after"] is True


def test_rnn_time_major_only_drops_false():
    off, on = layer("GRU", time_major=False), layer("LSTM", time_major=True)
    assert apply("rnn_time_major", off, "2.10.0")
    assert not apply("rnn_time_major", on, "2.10.0")
    assert "time_major" not in cfg(off) and cfg(on)["time_major"] is True


def test_conv_groups():
    depthwise, grouped = layer("DepthwiseConv2D", groups=1), layer("Conv2DTranspose", groups=2)
    assert apply("conv_groups", depthwise, "2.4.0")
    assert not apply("conv_groups", grouped, "2.4.0")
    assert "groups" not in cfg(depthwise)


def test_initializer_dtype():
    node = layer("Dense", kernel_initializer={"class_name": "GlorotUniform",
                                              "config": {"seed": None, "dtype": "float32"}})
    assert apply("initializer_dtype", node, "2.2.4")
    assert cfg(node)["kernel_initializer"]["config"] == {"seed": None}


def test_variance_scaling_normal():
    node = layer("Dense", kernel_initializer={"class_name": "VarianceScaling",
                                              "config": {"distribution": "normal"}})
    assert apply("variance_scaling_normal", node, "2.2.4")
    assert cfg(node)["kernel_initializer"]["config"]["distribution"] == "truncated_normal"


def test_spatial_dropout_trainable():
    node = layer("SpatialDropout2D", rate=0.1, trainable=True)
    assert apply("spatial_dropout_trainable", node, "2.2.4")
    assert cfg(node) == {"name": "spatialdropout2d", "rate": 0.1}


def test_wrapper_inner_module():
    builtin = layer("TimeDistributed", layer=layer("Dense", units=3))
    custom = layer("Bidirectional", layer=layer("MyRNN", units=3))
    assert apply("wrapper_inner_module", builtin, "2.2.4")
    assert not apply("wrapper_inner_module", custom, "2.2.4")
    assert cfg(builtin)["layer"]["module"] == "keras.layers"
    assert "module" not in cfg(custom)["layer"]  # a custom class is found by its name


@pytest.mark.parametrize("version, applies", [
    ("2.0.4", True), ("2.1.6", True), ("2.3.1", True), ("2.2.4-tf", False), ("2.4.0", False),
    ("2.15.0", False), ("1.2.2", False), ("3.8.0", False)])
def test_embedding_ids_dtype_only_for_multi_backend_keras2(version, applies):
    node = layer("Embedding", input_dim=9, output_dim=3, dtype="int32",
                 embeddings_initializer={"class_name": "RandomUniform",
                                         "config": {"minval": -0.05, "maxval": 0.05}})
    r = get_rule("embedding_ids_dtype")
    ctx = Context(version, "", int(version[0]), node)
    assert r.applies(ctx) == applies
    if applies:
        assert r.fix(node, ctx) and cfg(node)["dtype"] == "float32"
        assert not r.fix(node, ctx)  # a float dtype is left alone


def test_keras2_0_embedding_with_int32_dtype_loads_with_its_weights(tmp_path):
    """The Keras 2.0 file: dtype int32 on the Embedding, a uniform(-0.05, 0.05) initializer."""
    import json

    import h5py
    import numpy as np

    from modelport.loading.source import load

    emb = layer("Embedding", name="embedding", input_dim=7, output_dim=3, dtype="int32",
                batch_input_shape=[None, 4], input_length=4, mask_zero=False, trainable=True,
                embeddings_initializer={"class_name": "RandomUniform", "config": {
                    "minval": -0.05, "maxval": 0.05, "seed": None}})
    flat = layer("Flatten", name="flatten", trainable=True)
    config = seq(emb, flat, listed=True)
    weights = np.arange(21, dtype="float32").reshape(7, 3) / 10.0
    with h5py.File(tmp_path / "emb.h5", "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = b"2.0.4"
        f.attrs["backend"] = b"theano"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [b"embedding", b"flatten"]
        e = g.create_group("embedding")
        e.attrs["weight_names"] = [b"embedding/embeddings:0"]
        e["embedding/embeddings:0"] = weights
        g.create_group("flatten").attrs["weight_names"] = []
    src = load(tmp_path / "emb.h5")
    assert any(w.startswith("upgrade embedding_ids_dtype:") for w in src.warnings)
    ids = np.array([[0, 1, 2, 6], [5, 4, 3, 3]], "int32")
    got = src.predict({src.input_names[0]: ids})[src.output_names[0]]
    np.testing.assert_allclose(got, weights[ids].reshape(2, -1))


# ------------------------------------------------------------------ registry and eras


TESTED = {
    "sequential_merge_branches", "sequential_list_config", "sequential_input_layer", "keras1_node_refs",
    "legacy_merge_layer", "keras1_class_names", "keras1_removed_layers",
    "keras1_time_distributed_dense", "keras1_dim_ordering", "keras1_input_dtype",
    "keras1_input_dim", "keras1_dense_args", "keras1_dropout_args", "keras1_embedding_args",
    "keras1_conv_args", "keras1_pooling_args", "keras1_recurrent_args", "keras1_batchnorm_args",
    "keras1_advanced_activation_args", "keras1_zero_padding_dict", "keras1_objects",
    "cudnn_rnn", "gru_reset_after_default", "rnn_time_major", "conv_groups",
    "initializer_dtype", "variance_scaling_normal", "spatial_dropout_trainable",
    "wrapper_inner_module", "embedding_ids_dtype",
}


def test_every_rule_has_a_test_and_a_summary():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    assert set(names) == TESTED
    assert all(r.summary and len(r.summary) > 20 for r in RULES)


def test_keras1_rules_leave_keras2_names_alone():
    # Keras 2 Embedding's output_dim is current, and 'init' never means anything there
    config = seq(layer("Embedding", input_dim=10, output_dim=4, batch_input_shape=[None, 3]),
                 layer("Dense", units=2, init="odd"))
    r = raw(config, "2.2.4", "tensorflow")
    upgrade_config(r, r.config)
    emb, dense = r.config["config"]["layers"][1:]
    assert cfg(emb)["output_dim"] == 4 and cfg(dense)["init"] == "odd"


def test_keras3_files_are_not_touched():
    config = seq(layer("Dense", units=2, batch_input_shape=[None, 3]), listed=True)
    r = raw(config, "3.7.0", "tensorflow")
    assert upgrade_config(r, r.config) == []
    assert r.config == config


def test_notes_name_rules_and_layers_and_inspect_does_not_mutate():
    config = seq(layer("Convolution2D", name="c1", nb_filter=2, nb_row=3, nb_col=3,
                       dim_ordering="th", batch_input_shape=[None, 1, 8, 8]), listed=True)
    r = raw(config)
    notes = applicable_rules(r)
    assert r.config == config
    assert any(n.startswith("upgrade keras1_class_names:") and "[c1]" in n for n in notes)
    assert any(n.startswith("backend: ") and "Theano is assumed" in n for n in notes)


def test_rule_errors_name_the_file():
    r = raw(seq(layer("Highway", name="hw"), listed=True))
    with pytest.raises(ModelFileError, match=r"m\.h5: layer hw: Highway"):
        upgrade_config(r, r.config)
