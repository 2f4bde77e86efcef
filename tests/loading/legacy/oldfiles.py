"""Write small .h5 files the way Keras 1 and Keras 2 laid them out (for tests only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def write_h5(path: Path, config: dict[str, Any], weights: dict[str, list[tuple[str, np.ndarray]]],
             keras_version: str = "1.2.2", backend: str | None = None,
             layer_names: list[str] | None = None) -> Path:
    """``weights``: layer name -> [(weight name, array)] in the layer's stored order;
    ``layer_names``: the saved layer list (default: the config's top-level layers).

    Keras 1 wrote ``keras_version`` only at the top level (so loaders treat the weights as
    Keras 1); Keras 2 also wrote it, with ``backend``, on the ``model_weights`` group.
    """
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode("utf8")
        f.attrs["keras_version"] = keras_version.encode("utf8")
        if backend:
            f.attrs["backend"] = backend.encode("utf8")
        g = f.create_group("model_weights")
        if not keras_version.startswith("1"):
            g.attrs["keras_version"] = keras_version.encode("utf8")
            g.attrs["backend"] = (backend or "tensorflow").encode("utf8")
        names = layer_names or _layer_names(config)
        g.attrs["layer_names"] = np.array([n.encode("utf8") for n in names])
        for name in names:
            lg = g.create_group(name)
            pairs = weights.get(name, [])
            lg.attrs["weight_names"] = np.array([w.encode("utf8") for w, _ in pairs])
            for w, a in pairs:
                lg.create_dataset(w, data=np.asarray(a, dtype=np.float32))
    return path


def _layer_names(config: dict[str, Any]) -> list[str]:
    inner = config["config"]
    layers = inner["layers"] if isinstance(inner, dict) else inner
    return [l["config"]["name"] for l in layers]


def true_conv2d_nchw(x: np.ndarray, w_oihw: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Theano's conv2d (filter flipped: a true convolution), 'valid', stride 1, NCHW."""
    return xcorr2d_nchw(x, w_oihw[:, :, ::-1, ::-1], b)


def xcorr2d_nchw(x: np.ndarray, w_oihw: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TensorFlow's conv2d (cross-correlation), 'valid', stride 1, NCHW."""
    n, c, h, w = x.shape
    o, _, kh, kw = w_oihw.shape
    out = np.zeros((n, o, h - kh + 1, w - kw + 1), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + h - kh + 1, j:j + w - kw + 1]
            out += np.einsum("nchw,oc->nohw", patch, w_oihw[:, :, i, j])
    return (out + b[None, :, None, None]).astype(np.float32)


def load_upgraded(path: Path, framework: str, tmp: Path, custom: dict[str, Any] | None = None):
    """Upgrade config and weights the way modelport's loader does (public functions only)
    into a copy of ``path``, then load that copy with one loader directly."""
    import copy
    import shutil

    import h5py

    from modelport.loading.legacy.upgrade import needs_weight_upgrade, upgrade_config, upgrade_weights
    from modelport.loading.modelfile import read_model_file

    raw = read_model_file(path)
    config = copy.deepcopy(raw.config)
    upgrade_config(raw, config)
    dest = tmp / f"{framework}_{Path(path).name}"
    shutil.copyfile(path, dest)
    with h5py.File(dest, "r+") as f:
        f.attrs["model_config"] = json.dumps(config).encode("utf8")
        if needs_weight_upgrade(raw, config):
            upgrade_weights(raw, config, f)
    if framework == "tf_keras":
        import tf_keras

        return tf_keras.models.load_model(dest, compile=False, custom_objects=custom or {})
    import keras

    return keras.saving.load_model(dest, compile=False, custom_objects=custom or {})
