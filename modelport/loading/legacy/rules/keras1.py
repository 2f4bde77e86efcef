"""Keras 1 -> Keras 2 argument and class renames (what ``keras/legacy/interfaces.py`` did
at call time in Keras 2.0, done once on the stored config)."""

from __future__ import annotations

from typing import Any

from modelport.core.errors import ModelFileError
from modelport.loading.config import iter_layers
from modelport.loading.legacy.rules.base import Context, keras1, rename_keys, rule

__all__: list[str] = []

_CLASS_RENAMES = {
    "Convolution1D": "Conv1D", "AtrousConvolution1D": "Conv1D",
    "Convolution2D": "Conv2D", "AtrousConvolution2D": "Conv2D",
    "Convolution3D": "Conv3D", "Deconvolution2D": "Conv2DTranspose",
    "SeparableConvolution2D": "SeparableConv2D",
}
_REMOVED = {"Highway", "MaxoutDense", "SReLU", "AutoEncoder"}
_CONV = ["Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "SeparableConv2D"]
_RNN = ["LSTM", "GRU", "SimpleRNN", "ConvLSTM2D"]
_WEIGHT_ARGS = [("init", "kernel_initializer"), ("W_regularizer", "kernel_regularizer"),
                ("b_regularizer", "bias_regularizer"), ("W_constraint", "kernel_constraint"),
                ("b_constraint", "bias_constraint"), ("bias", "use_bias")]
_DIM_ORDERING = {"th": "channels_first", "tf": "channels_last", "default": None}


def _cfg(layer: dict[str, Any]) -> dict[str, Any]:
    cfg = layer.get("config")
    return cfg if isinstance(cfg, dict) else {}


@rule("keras1_class_names", "Keras 2 renamed Convolution*D/AtrousConvolution*D/"
      "Deconvolution2D/SeparableConvolution2D to Conv*D/Conv2DTranspose/SeparableConv2D",
      when=keras1, classes=_CLASS_RENAMES)
def keras1_class_names(layer: dict[str, Any], ctx: Context) -> bool:
    layer["class_name"] = _CLASS_RENAMES[layer["class_name"]]
    return True


@rule("keras1_removed_layers", "Highway, MaxoutDense and SReLU were removed in Keras 2",
      when=keras1, classes=_REMOVED)
def keras1_removed_layers(layer: dict[str, Any], ctx: Context) -> bool:
    name = _cfg(layer).get("name", "?")
    raise ModelFileError(
        f"layer {name}: {layer['class_name']} was removed in Keras 2 and no current loader "
        f"has it; pass --custom-objects FILE.py defining a layer class named "
        f"{layer['class_name']} with the Keras 1 maths")


@rule("keras1_time_distributed_dense",
      "TimeDistributedDense became TimeDistributed(Dense) in Keras 2",
      when=keras1, classes=["TimeDistributedDense"])
def keras1_time_distributed_dense(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = dict(_cfg(layer))
    outer = {k: cfg.pop(k) for k in ("name", "trainable", "batch_input_shape", "input_dtype")
             if k in cfg}
    cfg.pop("input_dim", None)
    cfg.pop("input_length", None)
    cfg["name"] = f"{outer.get('name', 'time_distributed')}_dense"
    layer["class_name"] = "TimeDistributed"
    layer["config"] = {**outer, "layer": {"class_name": "Dense", "config": cfg}}
    return True


@rule("keras1_dim_ordering", "dim_ordering ('th'/'tf') became data_format "
      "('channels_first'/'channels_last') in Keras 2", when=keras1)
def keras1_dim_ordering(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = _cfg(layer)
    if "dim_ordering" not in cfg:
        return False
    fmt = _DIM_ORDERING.get(cfg.pop("dim_ordering"))
    if fmt is not None:
        cfg.setdefault("data_format", fmt)
    return True


@rule("keras1_input_dtype", "input_dtype became dtype in Keras 2", when=keras1)
def keras1_input_dtype(layer: dict[str, Any], ctx: Context) -> bool:
    return rename_keys(_cfg(layer), [("input_dtype", "dtype")])


@rule("keras1_input_dim", "Keras 1 layers repeated input_dim/input_length after the first "
      "layer; Keras 2 takes the shape from the model input only", when=keras1)
def keras1_input_dim(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = _cfg(layer)
    if layer.get("class_name") == "Embedding" or not ({"input_dim", "input_length"} & set(cfg)):
        return False
    dim, length = cfg.pop("input_dim", None), cfg.pop("input_length", None)
    if "batch_input_shape" not in cfg and dim is not None and _is_first_layer(ctx.root, layer):
        rank3 = layer.get("class_name") in _RNN + ["Conv1D"]
        cfg["batch_input_shape"] = [None, length, dim] if rank3 else [None, dim]
    return True


def _is_first_layer(root: dict[str, Any], layer: dict[str, Any]) -> bool:
    for _, seq in iter_layers(root):
        layers = _cfg(seq).get("layers") if seq.get("class_name") == "Sequential" else None
        if isinstance(seq.get("config"), list):
            layers = seq["config"]
        if layers and layers[0] is layer:
            return True
    return False


@rule("keras1_dense_args", "Dense(output_dim, init, W_regularizer, bias...) became "
      "Dense(units, kernel_initializer, kernel_regularizer, use_bias...)",
      when=keras1, classes=["Dense"])
def keras1_dense_args(layer: dict[str, Any], ctx: Context) -> bool:
    return rename_keys(_cfg(layer), [("output_dim", "units")] + _WEIGHT_ARGS)


@rule("keras1_dropout_args", "Dropout-style layers: p became rate; GaussianNoise: sigma "
      "became stddev", when=keras1,
      classes=["Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
               "GaussianDropout", "GaussianNoise"])
def keras1_dropout_args(layer: dict[str, Any], ctx: Context) -> bool:
    return rename_keys(_cfg(layer), [("p", "rate"), ("sigma", "stddev")])


@rule("keras1_embedding_args", "Embedding(init, W_regularizer, W_constraint, dropout) became "
      "Embedding(embeddings_initializer, ...); dropout was removed", when=keras1,
      classes=["Embedding"])
def keras1_embedding_args(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = _cfg(layer)
    dropped = cfg.pop("dropout", None) is not None
    return rename_keys(cfg, [("init", "embeddings_initializer"),
                             ("W_regularizer", "embeddings_regularizer"),
                             ("W_constraint", "embeddings_constraint")]) or dropped


@rule("keras1_conv_args", "Conv layers: nb_filter/nb_row/nb_col/filter_length/subsample/"
      "border_mode/atrous_rate became filters/kernel_size/strides/padding/dilation_rate",
      when=keras1, classes=_CONV)
def keras1_conv_args(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = _cfg(layer)
    changed = False
    size_keys = [k for k in ("filter_length", "nb_row", "nb_col", "kernel_dim1", "kernel_dim2",
                             "kernel_dim3") if k in cfg]
    if size_keys:
        sizes = [cfg.pop(k) for k in size_keys]
        cfg.setdefault("kernel_size", sizes[0] if len(sizes) == 1 else sizes)
        changed = True
    if cfg.get("border_mode") == "full":
        raise ModelFileError(f"layer {cfg.get('name')}: border_mode='full' has no Keras 2+ "
                             "equivalent; add ZeroPadding and use padding='valid'")
    if layer.get("class_name") == "SeparableConv2D" and "init" in cfg:
        init = cfg.pop("init")
        cfg.setdefault("depthwise_initializer", init)
        cfg.setdefault("pointwise_initializer", init)
        changed = True
    if layer.get("class_name") == "Conv2DTranspose":
        changed = cfg.pop("output_shape", None) is not None or changed
    return rename_keys(cfg, [("nb_filter", "filters"), ("subsample", "strides"),
                             ("subsample_length", "strides"), ("border_mode", "padding"),
                             ("atrous_rate", "dilation_rate")] + _WEIGHT_ARGS) or changed


@rule("keras1_pooling_args", "Pooling: pool_length/stride/border_mode became "
      "pool_size/strides/padding; UpSampling1D: length became size", when=keras1,
      classes=["MaxPooling1D", "AveragePooling1D", "MaxPooling2D", "AveragePooling2D",
               "MaxPooling3D", "AveragePooling3D", "UpSampling1D"])
def keras1_pooling_args(layer: dict[str, Any], ctx: Context) -> bool:
    return rename_keys(_cfg(layer), [("pool_length", "pool_size"), ("stride", "strides"),
                                     ("border_mode", "padding"), ("length", "size")])


_CONSUME_LESS = {"cpu": 1, "mem": 1, "gpu": 2}  # the maths is the same; Keras 2 dropped 0


@rule("keras1_recurrent_args", "RNN layers: output_dim/init/inner_init/inner_activation/"
      "W_,U_,b_regularizer/dropout_W/dropout_U/consume_less/forget_bias_init became "
      "units/kernel_initializer/recurrent_*/dropout/implementation/unit_forget_bias",
      when=keras1, classes=_RNN)
def keras1_recurrent_args(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = _cfg(layer)
    changed = False
    if "forget_bias_init" in cfg:
        cfg.setdefault("unit_forget_bias", cfg.pop("forget_bias_init") == "one")
        changed = True
    if "consume_less" in cfg:
        mode = cfg.pop("consume_less")
        if layer.get("class_name") != "SimpleRNN":  # Keras 2+ SimpleRNN has no such choice
            cfg.setdefault("implementation", _CONSUME_LESS.get(mode, 1))
        changed = True
    if layer.get("class_name") == "GRU" and "reset_after" not in cfg:
        cfg["reset_after"] = False  # Keras 1 GRU applies the reset gate before the matmul
        changed = True
    pairs = [("output_dim", "units"), ("nb_filter", "filters"), ("subsample", "strides"),
             ("border_mode", "padding"), ("inner_init", "recurrent_initializer"),
             ("inner_activation", "recurrent_activation"),
             ("U_regularizer", "recurrent_regularizer"), ("dropout_W", "dropout"),
             ("dropout_U", "recurrent_dropout")] + _WEIGHT_ARGS
    if {"nb_row", "nb_col"} <= set(cfg):
        cfg.setdefault("kernel_size", [cfg.pop("nb_row"), cfg.pop("nb_col")])
        changed = True
    return rename_keys(cfg, pairs) or changed


@rule("keras1_batchnorm_args", "BatchNormalization: beta_init/gamma_init became "
      "*_initializer; mode was removed (only mode=0 survives)", when=keras1,
      classes=["BatchNormalization"])
def keras1_batchnorm_args(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = _cfg(layer)
    changed = False
    if "mode" in cfg:
        mode = cfg.pop("mode")
        if mode not in (0, None):
            raise ModelFileError(
                f"layer {cfg.get('name')}: BatchNormalization(mode={mode}) normalises with "
                "per-batch statistics at inference and has no Keras 2+ equivalent; rebuild "
                "the layer with mode=0 and retrain or re-export it")
        changed = True
    return rename_keys(cfg, [("beta_init", "beta_initializer"),
                             ("gamma_init", "gamma_initializer")]) or changed


@rule("keras1_advanced_activation_args", "PReLU: init became alpha_initializer",
      when=keras1, classes=["PReLU"])
def keras1_prelu_args(layer: dict[str, Any], ctx: Context) -> bool:
    return rename_keys(_cfg(layer), [("init", "alpha_initializer")])


@rule("keras1_zero_padding_dict", "ZeroPadding2D's {top_pad, bottom_pad, left_pad, "
      "right_pad} dict became ((top, bottom), (left, right))", when=keras1,
      classes=["ZeroPadding2D"])
def keras1_zero_padding_dict(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = _cfg(layer)
    pad = cfg.get("padding")
    if not isinstance(pad, dict):
        return False
    cfg["padding"] = [[pad.get("top_pad", 0), pad.get("bottom_pad", 0)],
                      [pad.get("left_pad", 0), pad.get("right_pad", 0)]]
    return True


_INITIALIZER_ALIASES = {"zero": "zeros", "one": "ones", "uniform": "random_uniform",
                        "normal": "random_normal"}
_CONSTRAINTS = {"MaxNorm": ("MaxNorm", {"m": "max_value", "axis": "axis"}),
                "NonNeg": ("NonNeg", {}),
                "UnitNorm": ("UnitNorm", {"axis": "axis"}),
                "MinMaxNorm": ("MinMaxNorm", {"low": "min_value", "high": "max_value",
                                              "rate": "rate", "axis": "axis"})}


def _keras1_object(key: str, value: Any) -> Any:
    """A Keras 1 ``{"name": ..., ...}`` regularizer/constraint as a Keras 2 object."""
    if not (isinstance(value, dict) and "name" in value and "class_name" not in value):
        return value
    if key.endswith("_regularizer"):
        return {"class_name": "L1L2", "config": {"l1": float(value.get("l1", 0.0)),
                                                 "l2": float(value.get("l2", 0.0))}}
    known = _CONSTRAINTS.get(value["name"])
    if key.endswith("_constraint") and known:
        cls, args = known
        return {"class_name": cls, "config": {new: value[old] for old, new in args.items()
                                              if old in value}}
    return None  # training-only objects: inference does not depend on them


@rule("keras1_objects", "Keras 1 wrote regularizers and constraints as {'name': ...} dicts "
      "and initializers as 'zero'/'one'/'uniform'/'normal'", when=keras1)
def keras1_objects(layer: dict[str, Any], ctx: Context) -> bool:
    cfg = _cfg(layer)
    changed = False
    for key, value in list(cfg.items()):
        if key.endswith(("_regularizer", "_constraint")):
            new = _keras1_object(key, value)
        elif key.endswith("_initializer") and isinstance(value, str):
            new = _INITIALIZER_ALIASES.get(value, value)
        else:
            continue
        if new != value:
            cfg[key] = new
            changed = True
    return changed
