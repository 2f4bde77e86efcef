"""Keras 2 / tf.keras configs that current loaders (Keras 3, tf_keras 2.21) reject or would
compute differently."""

from __future__ import annotations

from typing import Any, Iterator

from modelport.loading.config import walk
from modelport.loading.legacy.rules.base import Context, multi_backend_keras2, pre_keras3, rule

__all__: list[str] = []

_INITIALIZERS = {"Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
                 "TruncatedNormal", "VarianceScaling", "Orthogonal", "Identity",
                 "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "LecunNormal",
                 "LecunUniform"}
_RNN = ["LSTM", "GRU", "SimpleRNN", "RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"]


def _cfg(layer: dict[str, Any]) -> dict[str, Any]:
    cfg = layer.get("config")
    return cfg if isinstance(cfg, dict) else {}


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every ``{"class_name", "config"}`` object inside one layer's arguments."""
    for _, node in walk(value, skip=("layer", "layers", "forward_layer", "backward_layer",
                                     "cell")):
        if isinstance(node, dict) and "class_name" in node and isinstance(node.get("config"),
                                                                            dict):
            yield node


@rule("initializer_dtype", "tf.keras 1.x saved a dtype inside initializer configs; "
      "Keras 3 initializers reject it", when=pre_keras3)
def initializer_dtype(layer: dict[str, Any], ctx: Context) -> bool:
    changed = False
    for obj in _objects(_cfg(layer)):
        if obj["class_name"] in _INITIALIZERS and "dtype" in obj["config"]:
            del obj["config"]["dtype"]
            changed = True
    return changed


@rule("embedding_ids_dtype", "Keras 2.0-2.3 saved Embedding's dtype as int32, the dtype of "
      "the ids it takes (its weights were float32); current Embeddings make their weights in "
      "their dtype, so an int32 one cannot hold them (\"Cannot convert -0.05 to int32\" from "
      "the initializer): the layer's dtype becomes float32", when=multi_backend_keras2,
      classes=["Embedding"])
def embedding_ids_dtype(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = _cfg(layer)
    dtype = cfg.get("dtype")
    if isinstance(dtype, str) and dtype.startswith(("int", "uint")):
        cfg["dtype"] = "float32"
        return True
    return False


@rule("variance_scaling_normal", "VarianceScaling(distribution='normal') meant a truncated "
      "normal in Keras 2; Keras 3 only accepts 'truncated_normal'", when=pre_keras3)
def variance_scaling_normal(layer: dict[str, Any], ctx: Context) -> bool:
    changed = False
    for obj in _objects(_cfg(layer)):
        if obj["class_name"] == "VarianceScaling" and obj["config"].get("distribution") == "normal":
            obj["config"]["distribution"] = "truncated_normal"
            changed = True
    return changed


@rule("rnn_time_major", "tf.keras 2.x RNN layers saved time_major=False; Keras 3 has no "
      "such argument", when=pre_keras3, classes=_RNN + ["CuDNNLSTM", "CuDNNGRU"])
def rnn_time_major(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = _cfg(layer)
    if cfg.get("time_major") is False:
        del cfg["time_major"]
        return True
    return False  # time_major=True changes the input layout: left for tf_keras to honour


@rule("conv_groups", "tf.keras >= 2.3 saved groups=1 on transposed/depthwise/separable "
      "convolutions, which Keras 3 does not accept there", when=pre_keras3,
      classes=["Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "DepthwiseConv1D",
               "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D"])
def conv_groups(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = _cfg(layer)
    if cfg.get("groups") == 1:
        del cfg["groups"]
        return True
    return False


@rule("cudnn_rnn", "CuDNNLSTM/CuDNNGRU (Keras 2, GPU only) are LSTM/GRU with sigmoid "
      "gates and, for GRU, reset_after=True; their weights are converted too",
      when=pre_keras3, classes=["CuDNNLSTM", "CuDNNGRU"])
def cudnn_rnn(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = _cfg(layer)
    gru = layer["class_name"] == "CuDNNGRU"
    layer["class_name"] = "GRU" if gru else "LSTM"
    cfg.update(activation="tanh", recurrent_activation="sigmoid", use_bias=True,
               dropout=0.0, recurrent_dropout=0.0, unroll=False)
    if gru:
        cfg["reset_after"] = True
    else:
        cfg.setdefault("unit_forget_bias", True)
    return True


@rule("gru_reset_after_default", "GRU configs from Keras < 2.1 have no reset_after; their "
      "maths is reset_after=False, but tf_keras and Keras 3 default to True",
      when=pre_keras3, classes=["GRU"])
def gru_reset_after_default(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = _cfg(layer)
    if "reset_after" in cfg:
        return False
    cfg["reset_after"] = False
    return True


@rule("spatial_dropout_trainable", "SpatialDropout*D configs carry trainable, which Keras 3's "
      "SpatialDropout constructors do not accept (it has no weights to train)",
      when=pre_keras3, classes=["SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"])
def spatial_dropout_trainable(layer: dict[str, Any], ctx: Context) -> bool:
    return _cfg(layer).pop("trainable", None) is not None


# built-in layers a wrapper may hold; Keras 3 resolves a wrapped layer with its new
# serializer, which finds built-ins only through their module
_BUILTIN_LAYERS = {
    "Dense", "LSTM", "GRU", "SimpleRNN", "ConvLSTM1D", "ConvLSTM2D", "Conv1D", "Conv2D",
    "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "SeparableConv1D", "SeparableConv2D",
    "DepthwiseConv2D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Flatten", "Dropout", "Embedding",
    "BatchNormalization", "LayerNormalization", "Activation", "Reshape", "Permute",
    "RepeatVector", "Masking", "ZeroPadding1D", "ZeroPadding2D", "UpSampling1D",
    "UpSampling2D", "Cropping1D", "Cropping2D", "LeakyReLU", "PReLU", "ELU", "Lambda",
}


@rule("wrapper_inner_module", "a TimeDistributed/Bidirectional inner layer saved without "
      "'module' cannot be found by Keras 3; built-in layers get module 'keras.layers'",
      when=pre_keras3, classes=["TimeDistributed", "Bidirectional"])
def wrapper_inner_module(layer: dict[str, Any], ctx: Context) -> bool:
    changed = False
    for key in ("layer", "backward_layer"):
        inner = _cfg(layer).get(key)
        if isinstance(inner, dict) and "module" not in inner and \
                inner.get("class_name") in _BUILTIN_LAYERS:
            inner["module"] = "keras.layers"
            inner["registered_name"] = None
            changed = True
    return changed
