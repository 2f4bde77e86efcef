"""Models the validator tests break on purpose, each built and converted once per session.

Every model's outputs depend strongly on its input (except ``degenerate``, by design), so a
wrong artifact cannot pass by accident.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest


@dataclass
class Built:
    model: Path  # the .keras file
    source: Any  # its SourceModel, loaded once
    out: Path  # directory with the artifacts and the manifest

    def artifact(self, fmt: str) -> Path:
        from modelport import converters

        return converters.artifact_path(self.out, self.model.stem, fmt)

    @property
    def manifest(self) -> Path:
        return self.out / f"{self.model.stem}.manifest.json"


def _symmetric(path: Path) -> None:
    """8x8x8 NHWC input (H == W == C) and two outputs of the same shape."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(11)
    inp = keras.Input((8, 8, 8), name="image")
    x = layers.Conv2D(6, 3, padding="same", activation="tanh", name="conv")(inp)
    x = layers.Flatten(name="flat")(x)
    probs = layers.Dense(5, activation="softmax", name="probs")(x)
    aux = layers.Dense(5, name="aux")(x)
    keras.Model(inp, [probs, aux], name="sym").save(path)


def _degenerate(path: Path) -> None:
    """A model whose output ignores its input: a zero kernel and a non-zero bias."""
    import keras
    from keras import layers

    inp = keras.Input((6,), name="features")
    out = layers.Dense(3, kernel_initializer="zeros", bias_initializer="ones", name="score")(inp)
    keras.Model(inp, out, name="deg").save(path)


def _channels_first(path: Path) -> None:
    """A channels_first CNN with a non-square input (C=3, H=10, W=6)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(12)
    inp = keras.Input((3, 10, 6), name="pixels")
    x = layers.Conv2D(4, 3, data_format="channels_first", activation="tanh", name="conv")(inp)
    x = layers.Flatten(name="flat")(x)
    out = layers.Dense(4, name="logits")(x)
    keras.Model(inp, out, name="cf").save(path)


def _invariant(path: Path) -> None:
    """Output = sum of the 4x4x4 input: any transposition of the input gives the same answer."""
    import keras
    from keras import layers

    inp = keras.Input((4, 4, 4), name="cube")
    x = layers.Conv2D(2, 1, kernel_initializer="ones", name="conv")(inp)  # gives it a layout
    x = layers.Flatten(name="flat")(x)
    out = layers.Dense(2, kernel_initializer="ones", name="total")(x)
    keras.Model(inp, out, name="inv").save(path)


def _dense_map(path: Path) -> None:
    """A per-pixel model with a rank-4 output: input 5x7x3 -> output 5x7x4 (NHWC)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(13)
    inp = keras.Input((5, 7, 3), name="photo")
    out = layers.Conv2D(4, 3, padding="same", activation="tanh", name="mask")(inp)
    keras.Model(inp, out, name="seg").save(path)


def _tf_keras_embedding(path: Path) -> None:
    """A tf_keras (Keras 2) .h5 text model: float32 Input() feeding an Embedding of 30 ids."""
    import tf_keras

    tf_keras.utils.set_random_seed(14)
    inp = tf_keras.Input((5,), name="words")
    x = tf_keras.layers.Embedding(30, 4, name="embed")(inp)
    x = tf_keras.layers.Flatten(name="flat")(x)
    out = tf_keras.layers.Dense(3, activation="softmax", name="label")(x)
    tf_keras.Model(inp, out).save(path)


def calibrate_batchnorm(model: Any, x: Any) -> None:
    """Give every BatchNormalization the statistics of one training-mode pass over ``x``
    (momentum 0 for that pass): realistic activations instead of random weights' ~1e-6."""
    import keras

    bns = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
    saved = [b.momentum for b in bns]
    for b in bns:
        b.momentum = 0.0
    model(x, training=True)
    for b, m in zip(bns, saved):
        b.momentum = m


def _deep(path: Path) -> None:
    """A pixel CNN (Rescaling(1/255) first, so its inputs are pixels in [0, 255]) with five
    weighted layers and BatchNorms calibrated on pixels: folding, fusing and summation order
    differ between runtimes, and its logits are O(1)."""
    import keras
    import numpy as np
    from keras import layers

    keras.utils.set_random_seed(15)
    inp = keras.Input((16, 16, 3), name="pixels")
    x = layers.Rescaling(1 / 255, name="scale")(inp)
    for i, (filters, stride) in enumerate([(8, 1), (12, 2)]):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.BatchNormalization(name="bn_dw")(x)
    x = layers.Activation("swish", name="swish")(x)
    x = layers.Conv2D(16, 1, name="project")(x)
    x = layers.BatchNormalization(name="bn_project")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    out = layers.Dense(5, name="logits")(x)
    model = keras.Model(inp, out, name="deep")
    calibrate_batchnorm(model, np.random.default_rng(0).uniform(0, 255, (32, 16, 16, 3))
                        .astype("float32"))
    model.save(path)


_BUILDERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "deep": (_deep, "all"),
    "emb": (_tf_keras_embedding, "onnx"),
    "seg": (_dense_map, "onnx"),
    "sym": (_symmetric, "all"),
    "deg": (_degenerate, "onnx"),
    "cf": (_channels_first, "onnx"),
    "inv": (_invariant, "onnx"),
}


class _Models:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._memo: dict[str, Built] = {}

    def get(self, name: str) -> Built:
        if name not in self._memo:
            from modelport.conversion import convert
            from modelport.loading.source import load

            build, formats = _BUILDERS[name]
            path = self.root / (f"{name}.h5" if name == "emb" else f"{name}.keras")
            build(path)
            source = load(path)
            out = self.root / f"{name}-out"
            manifest = convert(source, out, formats=formats)
            assert manifest.ok, [a.error for a in manifest.artifacts]
            self._memo[name] = Built(path, source, out)
        return self._memo[name]


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> _Models:
    return _Models(tmp_path_factory.mktemp("validator-models"))


def copy_with_manifest(built: Built, dest: Path, fmt: str, artifact: Path | None = None,
                       layout: dict[str, str] | None = None,
                       input_shapes: dict[str, list] | None = None) -> Path:
    """A directory holding one artifact (``artifact`` or the good one) under its usual
    name, and a manifest listing only it, optionally declaring another layout."""
    dest.mkdir(parents=True, exist_ok=True)
    good = built.artifact(fmt)
    target = dest / good.name
    src = artifact or good
    if src.is_dir():
        shutil.copytree(src, target)
    else:
        shutil.copyfile(src, target)
    data = json.loads(built.manifest.read_text())
    record = next(a for a in data["artifacts"] if a["format"] == fmt)
    if layout:
        record["layout"] = {**record["layout"], **layout}
    for t in record["inputs"]:
        if input_shapes and t["name"] in input_shapes:
            t["shape"] = input_shapes[t["name"]]
    data["artifacts"] = [record]
    (dest / built.manifest.name).write_text(json.dumps(data))
    return dest


@pytest.fixture(scope="session")
def calibrate() -> Callable[[Any, Any], None]:
    """``calibrate_batchnorm`` for tests (conftest modules are not importable by name)."""
    return calibrate_batchnorm


@pytest.fixture
def with_manifest() -> Callable[..., Path]:
    """``copy_with_manifest`` for tests (conftest modules are not importable by name)."""
    return copy_with_manifest
