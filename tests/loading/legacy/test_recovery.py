"""Lambda recovery: bytecode from Python 2.7 and 3.6-3.13 translated and computed with
keras.ops, refusals that say why, and no code from the file ever run."""

from __future__ import annotations

import base64
import copy

import numpy as np
import pytest

from modelport.loading.lambdas import find_lambdas
from modelport.loading.legacy.recovery import recover_lambdas

from tests.loading.legacy.bytecode_samples import SAMPLES

RNG = np.random.default_rng(11)
X = RNG.standard_normal((3, 4)).astype(np.float32)
PAIR = [RNG.standard_normal((3, 2)).astype(np.float32),
        RNG.standard_normal((3, 3)).astype(np.float32)]


IMG = RNG.standard_normal((2, 2, 3, 1)).astype(np.float32)


def _tf1_bilinear(x, out_h, out_w):
    """TensorFlow 1 resize_images: source = destination * in/out (no half-pixel centres)."""
    n, h, w, c = x.shape
    out = np.zeros((n, out_h, out_w, c), np.float32)
    for i in range(out_h):
        for j in range(out_w):
            fy, fx = i * h / out_h, j * w / out_w
            y0, x0 = int(fy), int(fx)
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            dy, dx = fy - y0, fx - x0
            top = x[:, y0, x0] * (1 - dx) + x[:, y0, x1] * dx
            bottom = x[:, y1, x0] * (1 - dx) + x[:, y1, x1] * dx
            out[:, i, j] = top * (1 - dy) + bottom * dy
    return out


def _l2(x):
    return x / np.sqrt(np.maximum((x * x).sum(-1, keepdims=True), 1e-12))


# sample -> (input, what the original Python function computed)
EXPECTED = {
    "arith": (X, lambda x: x / 127.5 - 1.0),
    "kmean": (X, lambda x: x.mean(axis=1, keepdims=True)),
    "kcalls": (X, lambda x: x ** 2 + np.sqrt(np.abs(x))),
    "slice": (X, lambda x: x[:, 1:3]),
    "neg_pow": (X, lambda x: -x ** 2 * 0.5),
    "tf_import": (X, _l2),
    "from_import": (X, lambda x: np.maximum(x, 0.0) * 2),
    "closure": (X, lambda x: x.sum(axis=-1, keepdims=True)),  # keepdims=True in the closure
    "multi": (PAIR, lambda x: np.concatenate([x[0], x[1] * 2], axis=-1)),
    "compare": (X, lambda x: (x > 0.5).astype(np.float32)),
    "defaults": (X, lambda x: x * 3.0),
    "locals": (X, lambda x: np.tanh(x * 2 + 1)),
    "reshape": (X, lambda x: x.reshape(-1, 2, 2)),
    "tf1_reduce": (X, lambda x: x.mean(axis=1)),
    "ellipsis": (X, lambda x: x[..., :2] * 2),
    "ktf_resize": (IMG, lambda x: _tf1_bilinear(x, 4, 6)),
    "k_dot_tf": (X, lambda x: np.maximum(x, 0) - 1),
    "reverse_pad": (X, lambda x: np.pad(x[:, ::-1], [[0, 0], [1, 2]])),
    "unpack": (PAIR[:1] * 2, lambda x: np.sqrt(np.maximum(
        ((x[0] - x[1]) ** 2).sum(axis=1, keepdims=True), 1e-7))),
}
REFUSED = {
    "evil": ("__import__", "global name '__import__'"),
    "tensor_method": ("sum", "attribute .sum of a computed value"),
    "conditional": ("", "not in the vetted subset"),
    "unknown_global": ("my_helper", "global name 'my_helper'"),
    "generator": ("sum", "global name 'sum'"),
    "module_escape": ("os", "keras.backend.os is not in the vetted subset"),
}
CASES = [(v, n) for v in SAMPLES for n in SAMPLES[v]]


def lambda_model(b64: str, name: str, *, defaults=None, closure=None, output_shape=None):
    """A Keras 2 style config with one bytecode Lambda."""
    return {"class_name": "Model", "config": {"name": "m", "layers": [{
        "name": name, "class_name": "Lambda", "inbound_nodes": [],
        "config": {"name": name, "trainable": True, "function": [b64, defaults, closure],
                   "function_type": "lambda", "arguments": {},
                   "output_shape": output_shape,
                   "output_shape_type": "lambda" if output_shape else "raw"}}]}}


def sample_model(version: str, name: str) -> dict:
    return lambda_model(SAMPLES[version][name], f"lambda_{name}",
                        defaults=[3.0] if name == "defaults" else None,
                        closure=[True] if name == "closure" else None)


@pytest.mark.parametrize("version, name", [c for c in CASES if c[1] in EXPECTED])
def test_translated_lambda_computes_what_the_source_did(version, name):
    config = sample_model(version, name)
    custom: dict = {}
    infos = find_lambdas(config)
    assert recover_lambdas(infos, custom) == []
    info = infos[0]
    fn = custom[info.layer["config"]["function"]]
    x, expected = EXPECTED[name]
    got = np.asarray(fn(x))
    np.testing.assert_allclose(got, expected(x), rtol=1e-5, atol=1e-6)
    assert info.kind == "recovered" and info.recovered.python[0] == version[0]


@pytest.mark.parametrize("version, name", [c for c in CASES if c[1] in REFUSED])
def test_untranslatable_lambda_is_refused_with_names_and_remedies(version, name, monkeypatch):
    import os

    monkeypatch.setattr(os, "system", lambda *a: pytest.fail("bytecode was executed"))
    config = sample_model(version, name)
    before = copy.deepcopy(config)
    infos = find_lambdas(config)
    remaining = recover_lambdas(infos, {})
    assert remaining == infos
    used, reason = REFUSED[name]
    message = infos[0].refusal
    assert f"Lambda lambda_{name} " in message and reason in message
    assert used in message  # the names the bytecode uses
    assert "--custom-objects" in message and "--trust-lambda" in message
    assert config == before  # a refused Lambda's config is left as it was


def test_recovery_never_unmarshals_or_executes(monkeypatch):
    import builtins
    import marshal

    def forbidden(*a, **k):
        raise AssertionError("recovery must not run or unmarshal code")

    infos = find_lambdas(sample_model("2.7", "kcalls")) + find_lambdas(sample_model("3.13", "evil"))
    monkeypatch.setattr(marshal, "loads", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "eval", forbidden)
    remaining = recover_lambdas(infos, {})
    monkeypatch.undo()
    assert [i.layer_name for i in remaining] == ["lambda_evil"]


def test_config_is_rebound_like_a_custom_object():
    config = lambda_model(SAMPLES["3.8"]["arith"], "norm",
                          output_shape=[SAMPLES["3.8"]["arith"], None, None])
    custom = {"modelport_lambda_norm": object()}  # a taken name is not overwritten
    infos = find_lambdas(config)
    recover_lambdas(infos, custom)
    cfg = infos[0].layer["config"]
    assert cfg["function"] == "modelport_lambda_norm_2" and cfg["function_type"] == "function"
    assert cfg["module"] == "modelport.loading.legacy.recovery"
    assert cfg["output_shape"] is None and cfg["output_shape_type"] == "raw"
    assert custom["modelport_lambda_norm_2"].__name__ == "modelport_lambda_norm_2"
    assert "((x / 127.5) - 1.0)" in custom["modelport_lambda_norm_2"].__doc__


def test_lambda_arguments_reach_extra_parameters():
    config = lambda_model(SAMPLES["3.12"]["defaults"], "scaled", defaults=[3.0])
    custom: dict = {}
    infos = find_lambdas(config)
    recover_lambdas(infos, custom)
    fn = custom[infos[0].layer["config"]["function"]]
    np.testing.assert_allclose(np.asarray(fn(X, scale=0.5)), X * 0.5)  # Lambda(arguments=...)
    np.testing.assert_allclose(np.asarray(fn(X)), X * 3.0)  # the stored default


def test_unreadable_bytecode_is_refused():
    config = lambda_model(base64.b64encode(b"\xe3garbage").decode(), "junk")
    infos = find_lambdas(config)
    assert recover_lambdas(infos, {}) == infos
    assert "could not be parsed" in infos[0].refusal


# ------------------------------------------------------------------ whole files


def _model_with_foreign_lambda(tmp_path, version: str, name: str):
    """A tf_keras model whose Lambda bytecode is replaced by another Python's."""
    import json

    import h5py
    import tf_keras

    inp = tf_keras.Input((4,), name="x")
    hidden = tf_keras.layers.Lambda(lambda t: t, name="lam")(inp)
    out = tf_keras.layers.Dense(2, name="dense")(hidden)
    model = tf_keras.Model(inp, out)
    path = tmp_path / f"foreign_{name}.h5"
    model.save(path, save_format="h5")
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        lam = next(l for l in config["config"]["layers"] if l["class_name"] == "Lambda")
        lam["config"]["function"] = [SAMPLES[version][name], None, None]
        f.attrs["model_config"] = json.dumps(config).encode()
    kernel, bias = model.get_layer("dense").get_weights()
    return path, kernel, bias


@pytest.mark.parametrize("version", ["2.7", "3.6", "3.13"])
def test_foreign_python_lambda_file_loads_and_computes(tmp_path, version):
    from modelport.loading.source import load

    path, kernel, bias = _model_with_foreign_lambda(tmp_path, version, "kcalls")
    src = load(path)
    assert src.lambdas == [{"layer": "lam", "function": "<lambda>", "rebuilt_from": "recovered"}]
    got = src.predict({"x": X})["dense"]
    np.testing.assert_allclose(got, (X ** 2 + np.sqrt(np.abs(X))) @ kernel + bias, rtol=1e-5,
                               atol=1e-5)


def test_foreign_python_lambda_outside_subset_is_refused(tmp_path):
    from modelport.core.errors import LambdaRefusedError
    from modelport.loading.source import load

    path, _, _ = _model_with_foreign_lambda(tmp_path, "3.9", "unknown_global")
    with pytest.raises(LambdaRefusedError, match="lam"):
        load(path)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras3_lambda_file_loads_without_trust(tmp_path, suffix):
    import keras

    from modelport.loading.source import load

    inp = keras.Input((4,), name="x")
    # no free variables: a closure over the local ``keras`` would be serialized as a module
    lam = keras.layers.Lambda(lambda t: (t - 1.0) * 2.0, name="lam")
    model = keras.Model(inp, keras.layers.Dense(2, name="d")(lam(inp)))
    path = tmp_path / f"k3{suffix}"
    model.save(path)
    src = load(path)
    assert src.framework == "keras3"
    assert src.lambdas == [{"layer": "lam", "function": "<lambda>", "rebuilt_from": "recovered"}]
    np.testing.assert_allclose(src.predict({"x": X})["d"], np.asarray(model(X)), atol=1e-6)
