"""Convert stored weights to the layout current loaders expect, one small function per change.

Keras 2 converted Keras 1 weights on load (``preprocess_weights_for_loading``); Keras 3
does not, and tf_keras 2.21 no longer flips Theano kernels. We convert once, in the
patched copy of the file, and stamp the weights group as Keras 2 / TensorFlow so that no
loader converts a second time. Every function takes and returns plain numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.core.errors import ModelFileError
from modelport.loading.config import iter_layers, layer_name
from modelport.loading.hdf5 import read_names, write_names

__all__ = [
    "convert_kernel", "keras1_conv1d", "keras1_channels_first_kernel", "keras1_lstm",
    "keras1_gru", "cudnn_lstm", "cudnn_gru", "convert_layer_weights",
    "split_nested", "rewrite", "regroup_branches",
]

_CONV = ("Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "ConvLSTM2D")


def convert_kernel(kernel: np.ndarray) -> np.ndarray:
    """Flip every spatial axis (all but the last two), as Keras' ``convert_kernel`` did.

    Theano's ``conv2d`` is a true convolution (it flips the filter), TensorFlow's is a
    cross-correlation: the same output needs the kernel mirrored in space.
    """
    spatial = tuple(range(kernel.ndim - 2))
    return np.ascontiguousarray(np.flip(kernel, axis=spatial))


def keras1_conv1d(kernel: np.ndarray, kernel_size: int) -> np.ndarray:
    """Keras 1 Convolution1D kept a Conv2D kernel: (length, 1, in, out), or in Keras 1.1
    (out, in, length, 1). Keras 2 wants (length, in, out)."""
    if kernel.ndim != 4:
        return kernel
    if kernel.shape[1] != 1 and kernel.shape[3] == 1 and kernel.shape[2] == kernel_size:
        kernel = np.transpose(kernel, (2, 3, 1, 0))
    return np.ascontiguousarray(kernel[:, 0, :, :])


def keras1_channels_first_kernel(kernel: np.ndarray, transpose: bool = False) -> np.ndarray:
    """Keras 1 'th' kernels were (out, in, *spatial); Keras 2 stores (*spatial, in, out)
    for every data format ((*spatial, out, in) for transposed convolutions)."""
    n = kernel.ndim - 2
    order = (*range(2, 2 + n), 0, 1) if transpose else (*range(2, 2 + n), 1, 0)
    return np.ascontiguousarray(np.transpose(kernel, order))


def keras1_lstm(w: list[np.ndarray]) -> list[np.ndarray]:
    """12 per-gate arrays, gates (i, c, f, o) x (W, U, b) -> kernel, recurrent_kernel and
    bias with the gates in Keras 2 order (i, f, c, o)."""
    return [np.concatenate([w[k], w[k + 6], w[k + 3], w[k + 9]], axis=-1) for k in range(3)]


def keras1_gru(w: list[np.ndarray]) -> list[np.ndarray]:
    """9 per-gate arrays (z, r, h) x (W, U, b) -> kernel, recurrent_kernel, bias."""
    return [np.concatenate([w[k], w[k + 3], w[k + 6]], axis=-1) for k in range(3)]


def _per_gate(kernels: np.ndarray, gates: int, fn: Any) -> np.ndarray:
    return np.hstack([fn(k) for k in np.hsplit(kernels, gates)])


def _from_cudnn_input(kernel: np.ndarray) -> np.ndarray:
    # cuDNN keeps each gate's input kernel in Fortran order
    return kernel.T.reshape(kernel.shape, order="F")


def cudnn_lstm(w: list[np.ndarray]) -> list[np.ndarray]:
    """CuDNNLSTM weights -> LSTM: per-gate kernels re-laid out, the two bias sets summed."""
    kernel = _per_gate(w[0], 4, _from_cudnn_input)
    recurrent = _per_gate(w[1], 4, lambda k: k.T)
    bias = np.sum(np.split(w[2], 2, axis=0), axis=0)
    return [kernel, recurrent, bias]


def cudnn_gru(w: list[np.ndarray]) -> list[np.ndarray]:
    """CuDNNGRU weights -> GRU(reset_after=True): kernels re-laid out, bias as (2, 3*units)."""
    kernel = _per_gate(w[0], 3, _from_cudnn_input)
    recurrent = _per_gate(w[1], 3, lambda k: k.T)
    return [kernel, recurrent, np.asarray(w[2]).reshape(2, -1)]


def _kernel_size(cfg: dict[str, Any]) -> int:
    size = cfg.get("kernel_size", 1)
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def _keras1_layout(cls: str, cfg: dict[str, Any], w: list[np.ndarray]) -> list[np.ndarray]:
    first = cfg.get("data_format") == "channels_first"
    if cls == "Conv1D" and w:
        return [keras1_conv1d(w[0], _kernel_size(cfg)), *w[1:]]
    if cls in ("Conv2D", "Conv3D") and first and w:
        return [keras1_channels_first_kernel(w[0]), *w[1:]]
    if cls == "Conv2DTranspose" and w:
        kernel = (keras1_channels_first_kernel(w[0], transpose=True) if first
                  else np.ascontiguousarray(np.transpose(w[0], (0, 1, 3, 2))))
        return [kernel, *w[1:]]
    if cls == "LSTM" and len(w) == 12:
        return keras1_lstm(w)
    if cls == "GRU" and len(w) == 9:
        return keras1_gru(w)
    if cls == "ConvLSTM2D" and len(w) == 12:
        w = keras1_lstm(w)
        if first:
            w = [keras1_channels_first_kernel(w[0]), keras1_channels_first_kernel(w[1]), w[2]]
        return w
    return w


def _inner(layer: dict[str, Any]) -> dict[str, Any]:
    inner = (layer.get("config") or {}).get("layer")
    return inner if isinstance(inner, dict) else {}


def convert_layer_weights(layer: dict[str, Any], original: dict[str, Any],
                          w: list[np.ndarray], keras1: bool, theano: bool) -> list[np.ndarray]:
    """One layer's arrays, in stored order, converted for the upgraded config.

    Args:
        layer: the layer's ``{"class_name", "config"}`` after the config upgrade.
        original: the same layer as stored (``CuDNNLSTM``, ``Convolution2D``, ...).
        w: its arrays in ``weight_names`` order.
        keras1: the file was written by Keras 1 (per-gate RNN arrays, 'th' kernels).
        theano: the weights were trained with Theano (flipped convolution kernels).
    """
    cls = str(layer.get("class_name", ""))
    cfg = layer.get("config") or {}
    if cls == "Bidirectional":
        half = len(w) // 2
        inner, orig = _inner(layer), _inner(original)
        return [*convert_layer_weights(inner, orig, w[:half], keras1, theano),
                *convert_layer_weights(inner, orig, w[half:], keras1, theano)]
    if cls == "TimeDistributed":
        return convert_layer_weights(_inner(layer), _inner(original), w, keras1, theano)
    if keras1:
        w = _keras1_layout(cls, cfg, list(w))
    original_cls = original.get("class_name")
    if original_cls == "CuDNNLSTM" and len(w) == 3:
        w = cudnn_lstm(w)
    elif original_cls == "CuDNNGRU" and len(w) == 3:
        w = cudnn_gru(w)
    if theano and cls in _CONV and w:
        w = [convert_kernel(w[0]), *w[1:]]
        if cls == "ConvLSTM2D" and len(w) > 1:
            w[1] = convert_kernel(w[1])
    return w


# --------------------------------------------------------------------------- h5 groups

_CONTAINERS = ("Sequential", "Model", "Functional")


def _owner(layers: list[dict[str, Any]], weight: str) -> dict[str, Any] | None:
    """The sublayer a weight name belongs to: the longest ``name/`` or ``name_`` prefix."""
    best, size = None, -1
    for layer in layers:
        name = layer_name(layer)
        if name and weight.startswith((f"{name}/", f"{name}_")) and len(name) > size:
            best, size = layer, len(name)
    return best


def split_nested(layer: dict[str, Any], names: list[str]) -> list[tuple[dict[str, Any], list[str]]]:
    if layer.get("class_name") not in _CONTAINERS:
        return [(layer, names)]
    leaves = [l for _, l in iter_layers(layer) if l.get("class_name") not in _CONTAINERS]
    parts: dict[int, tuple[dict[str, Any], list[str]]] = {}
    for n in names:
        owner = _owner(leaves, n)
        if owner is None:
            raise ModelFileError(f"weight {n} matches no layer of the nested model "
                                 f"{layer_name(layer)}")
        parts.setdefault(id(owner), (owner, []))[1].append(n)
    return list(parts.values())


_RNN_PARTS = ("kernel", "recurrent_kernel", "bias")


def rewrite(group: Any, layer: dict[str, Any], names: list[str],
             arrays: list[np.ndarray]) -> list[str]:
    for n in names:
        del group[n]
    if len(arrays) == len(names):
        new_names = names
    else:
        base = layer_name(layer, "layer")
        parts = _RNN_PARTS if len(arrays) == 3 else [f"w{i}" for i in range(len(arrays))]
        new_names = [f"{base}/{p}:0" for p in parts]
    for n, a in zip(new_names, arrays):
        group.create_dataset(n, data=a)
    return new_names


def _trainable_count(layer: dict[str, Any], n: int) -> int:
    """How many of a layer's stored arrays are trainable (they come first)."""
    cfg = layer.get("config") or {}
    if cfg.get("trainable") is False:
        return 0
    return min(2, n) if layer.get("class_name") == "BatchNormalization" else n


def regroup_branches(group: Any, branches: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """Keras 1 saved a Sequential Merge's branch layers flat, one group per leaf layer; a
    nested model keeps all its arrays in one group, trainable ones first."""
    moved: set[str] = set()
    for name, leaves in branches:
        target = group.create_group(name)
        trainable: list[str] = []
        frozen: list[str] = []
        for leaf in leaves:
            leaf_name = layer_name(leaf)
            if leaf_name not in group:
                continue
            names = read_names(group[leaf_name].attrs, "weight_names")
            k = _trainable_count(leaf, len(names))
            for i, n in enumerate(names):
                group.copy(group[leaf_name][n], target, name=n)
                (trainable if i < k else frozen).append(n)
            del group[leaf_name]
            moved.add(leaf_name)
        write_names(target.attrs, "weight_names", trainable + frozen)
    rest = [n for n in read_names(group.attrs, "layer_names") if n not in moved]
    write_names(group.attrs, "layer_names", [name for name, _ in branches] + rest)

