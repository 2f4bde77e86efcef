"""Upgraded Keras 1 configs are accepted by the loaders that will read them: tf_keras (the
first choice for Keras <= 2 files) and Keras 3's legacy-h5 path (the fallback)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from modelport.loading.legacy.upgrade import upgrade_config
from modelport.loading.raw import RawModel


def L(cls, **c):
    return {"class_name": cls, "config": {"name": c.pop("name"), "trainable": True, **c}}


def node(cls, inbound, **c):
    name = c.pop("name")
    extra = {} if cls == "InputLayer" else {"trainable": True}
    return {"name": name, "class_name": cls, "inbound_nodes": inbound,
            "config": {"name": name, **extra, **c}}


W = {"W_regularizer": None, "b_regularizer": None, "activity_regularizer": None,
     "W_constraint": None, "b_constraint": None, "bias": True}

KERAS1_SEQUENTIAL = {"class_name": "Sequential", "config": [
    L("ZeroPadding2D", name="zp", padding=[1, 1], dim_ordering="th",
      batch_input_shape=[None, 3, 16, 16], input_dtype="float32"),
    L("Convolution2D", name="c1", nb_filter=4, nb_row=3, nb_col=3, init="glorot_uniform",
      activation="relu", border_mode="same", subsample=[1, 1], dim_ordering="th",
      **{**W, "W_regularizer": {"name": "WeightRegularizer", "l1": 0.0, "l2": 0.01},
         "W_constraint": {"name": "MaxNorm", "m": 3, "axis": 0}}),
    L("BatchNormalization", name="bn", epsilon=0.001, mode=0, axis=1, gamma_regularizer=None,
      beta_regularizer=None, momentum=0.99),
    L("MaxPooling2D", name="mp", pool_size=[2, 2], strides=[2, 2], border_mode="valid",
      dim_ordering="th"),
    L("SpatialDropout2D", name="sd", p=0.1, dim_ordering="th"),
    L("UpSampling2D", name="up", size=[2, 2], dim_ordering="th"),
    L("Cropping2D", name="cr", cropping=[[1, 1], [1, 1]], dim_ordering="th"),
    L("AtrousConvolution2D", name="ac", nb_filter=2, nb_row=3, nb_col=3, atrous_rate=[2, 2],
      init="he_normal", activation="linear", border_mode="valid", subsample=[1, 1],
      dim_ordering="th", **W),
    L("GlobalAveragePooling2D", name="gap", dim_ordering="th"),
    L("RepeatVector", name="rv", n=5),
    L("LSTM", name="lstm", output_dim=6, init="glorot_uniform", inner_init="orthogonal",
      forget_bias_init="one", activation="tanh", inner_activation="hard_sigmoid",
      W_regularizer=None, U_regularizer=None, b_regularizer=None, dropout_W=0.0, dropout_U=0.0,
      return_sequences=True, go_backwards=False, stateful=False, unroll=False,
      consume_less="gpu", input_dim=2, input_length=None),
    L("TimeDistributed", name="td", layer=L("Dense", name="tdd", output_dim=3, init="uniform",
                                            activation="linear", input_dim=None, **W)),
    L("SimpleRNN", name="srnn", output_dim=3, init="glorot_uniform", inner_init="orthogonal",
      activation="tanh", return_sequences=True, consume_less="cpu", dropout_W=0.0,
      dropout_U=0.0, W_regularizer=None, U_regularizer=None, b_regularizer=None),
    L("Bidirectional", name="bi", merge_mode="concat", layer=L(
        "GRU", name="gru", output_dim=2, init="glorot_uniform", inner_init="orthogonal",
        activation="tanh", inner_activation="hard_sigmoid", return_sequences=False,
        dropout_W=0.0, dropout_U=0.0, consume_less="cpu")),
    L("Dense", name="d", output_dim=4, init="normal", activation="linear", input_dim=4,
      **{**W, "activity_regularizer": {"name": "ActivityRegularizer", "l1": 0.0, "l2": 0.0}}),
    L("PReLU", name="pr", init="zero"),
    L("GaussianNoise", name="gn", sigma=0.1),
    L("GaussianDropout", name="gd", p=0.1),
    L("ELU", name="elu", alpha=1.0),
    L("Reshape", name="rs", target_shape=[2, 2]),
    L("Convolution1D", name="c1d", nb_filter=3, filter_length=2, init="glorot_uniform",
      activation="linear", border_mode="same", subsample_length=1, input_dim=None,
      input_length=None, **W),
    L("MaxPooling1D", name="mp1", pool_length=2, stride=None, border_mode="valid"),
    L("Flatten", name="fl"),
    L("Activation", name="act", activation="softmax"),
]}

# a shared tower (a nested Sequential) called on two inputs; Keras 1 numbered a nested
# container's call nodes from 1 (node 0 links its own input to its output)
KERAS1_FUNCTIONAL = {"class_name": "Model", "config": {"name": "m", "layers": [
    node("InputLayer", [], name="a", batch_input_shape=[None, 6], input_dtype="float32"),
    node("InputLayer", [], name="b", batch_input_shape=[None, 6], input_dtype="float32"),
    {"name": "tower", "class_name": "Sequential", "inbound_nodes": [[["a", 0, 0]], [["b", 0, 0]]],
     "config": [L("Dense", name="t1", output_dim=4, input_dim=6, batch_input_shape=[None, 6],
                  input_dtype="float32", init="glorot_uniform", activation="relu", bias=True),
                L("Dense", name="t2", output_dim=4, init="glorot_uniform", activation="relu")]},
    node("Merge", [[["tower", 1, 0], ["tower", 2, 0]]], name="cat", mode="concat",
         concat_axis=-1, dot_axes=-1, output_shape=None, output_shape_type="raw",
         output_mask=None, output_mask_type="raw", arguments={}, mode_type="raw"),
    node("Merge", [[["tower", 1, 0], ["tower", 2, 0]]], name="add", mode="sum", mode_type="raw"),
    node("Merge", [[["cat", 0, 0], ["add", 0, 0]]], name="cat2", mode="concat", concat_axis=1),
    node("Dense", [[["cat2", 0, 0]]], name="out", output_dim=1, init="glorot_uniform",
         activation="sigmoid", bias=True)],
    "input_layers": [["a", 0, 0], ["b", 0, 0]], "output_layers": [["out", 0, 0]]}}


def upgraded(config: dict) -> dict:
    raw = RawModel(Path("k1.h5"), "h5", copy.deepcopy(config), "1.2.2", "")
    result = copy.deepcopy(config)
    upgrade_config(raw, result)
    return result


def keras3_legacy_model_from_config(config: dict):
    """What keras.saving.load_model does with an .h5 model_config."""
    from keras.src.legacy.saving import saving_options, saving_utils

    with saving_options.keras_option_scope(use_legacy_config=True):
        return saving_utils.model_from_config(copy.deepcopy(config))


@pytest.mark.parametrize("config, shape", [(KERAS1_SEQUENTIAL, (None, 3)),
                                           (KERAS1_FUNCTIONAL, (None, 1))],
                         ids=["sequential", "functional"])
def test_tf_keras_accepts_upgraded_keras1_configs(config, shape):
    import tf_keras

    with pytest.raises(Exception):  # without the rules: Keras 1 names
        tf_keras.models.model_from_json(json.dumps(config))
    assert tf_keras.models.model_from_json(json.dumps(upgraded(config))).output_shape == shape


def test_keras3_accepts_upgraded_keras1_sequential():
    model = keras3_legacy_model_from_config(upgraded(KERAS1_SEQUENTIAL))
    assert model.output_shape == (None, 3)
    assert model.get_layer("c1").data_format == "channels_first"
    assert model.get_layer("lstm").recurrent_activation.__name__ == "hard_sigmoid"
