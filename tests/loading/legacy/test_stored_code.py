"""Lambda bytecode as Keras stored it: Windows' ``\\`` -> ``/`` replacement (the Python 3.7
siamese "invalid opcode <47>", and data unreadable for every version) and Keras 1 text
that also looks like base64; random ops translated, and said to be random. The samples
are real bytecode of each Python (``make_bytecode_samples.py``, pyenv interpreters)."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from modelport.loading.lambdas import find_lambdas, read_code
from modelport.loading.legacy.recovery import recover_lambdas
from modelport.loading.legacy.stored_code import (code_restorations, encodings,
                                                  may_be_windows)

from tests.loading.legacy.bytecode_samples import SAMPLES
from tests.loading.legacy.windows_samples import WINDOWS_SAMPLES

RNG = np.random.default_rng(5)
PAIR = [RNG.standard_normal((3, 4)).astype(np.float32) for _ in range(2)]
DISTANCE = {
    "siamese": lambda x, y: np.sqrt(((x - y) ** 2).sum(axis=1, keepdims=True)),
    "unpack": lambda x, y: np.sqrt(np.maximum(((x - y) ** 2).sum(axis=1, keepdims=True), 1e-7)),
}


def _config(code, defaults=None):
    return {"class_name": "Model", "config": {"name": "m", "layers": [{
        "name": "distance", "class_name": "Lambda", "inbound_nodes": [],
        "config": {"name": "distance", "function": [code, defaults, None],
                   "function_type": "lambda", "arguments": {}, "output_shape": None}}]}}


def _recovered(code, defaults=None):
    custom: dict = {}
    (info,) = find_lambdas(_config(code, defaults))
    remaining = recover_lambdas([info], custom)
    assert remaining == [], getattr(info, "refusal", "")
    return info, custom[info.layer["config"]["function"]]


def _windows(b64: str) -> str:
    """What Keras' func_dump stores on Windows for the same code object."""
    return base64.b64encode(base64.b64decode(b64).replace(b"\\", b"/")).decode()


def test_the_replacement_modelled_is_what_keras_does_on_windows(monkeypatch):
    import marshal

    from tf_keras.src.utils import generic_utils

    def euclidean_distance(vects):
        x, y = vects
        return x - y

    monkeypatch.setattr(generic_utils.os, "name", "nt")
    stored, _, _ = generic_utils.func_dump(euclidean_distance)
    raw = marshal.dumps(euclidean_distance.__code__)
    assert b"\\" in raw  # UNPACK_SEQUENCE is opcode 92 = 0x5C
    assert base64.b64decode(stored) == raw.replace(b"\\", b"/")


@pytest.mark.parametrize("version", sorted(SAMPLES))
def test_siamese_distance_saved_on_windows_invalid_opcode_47_is_recovered(version):
    raw = base64.b64decode(SAMPLES[version]["unpack"])
    stored = _windows(SAMPLES[version]["unpack"])
    info, fn = _recovered(stored)
    # UNPACK_SEQUENCE is 92 (0x5C) up to Python 3.12: only there does Windows damage it
    assert info.recovered.restored == (b"\\" in raw) == (version != "3.13")
    np.testing.assert_allclose(np.asarray(fn(PAIR)), DISTANCE["unpack"](*PAIR), rtol=1e-5)


@pytest.mark.parametrize("version, name", [(v, n) for v in sorted(WINDOWS_SAMPLES)
                                           for n in WINDOWS_SAMPLES[v]])
def test_windows_bytecode_unreadable_for_every_version_is_recovered(version, name):
    stored = WINDOWS_SAMPLES[version][name]
    # a 92-character path: a 0x5C length byte became 0x2F, so nothing parses as it is
    assert read_code(base64.b64decode(stored)) is None
    info, fn = _recovered(stored)
    assert info.recovered.restored and info.facts.restored
    if name in DISTANCE:
        np.testing.assert_allclose(np.asarray(fn(PAIR)), DISTANCE[name](*PAIR), rtol=1e-5)
    else:
        np.testing.assert_allclose(np.asarray(fn(PAIR[0])), PAIR[0] / 127.5 - 1.0, rtol=1e-6)


def test_inspect_plan_says_the_bytecode_was_saved_on_windows():
    from pathlib import Path

    from modelport.loading.legacy.upgrade import plan
    from modelport.loading.raw import RawModel

    raw = RawModel(Path("m.h5"), "h5", _config(WINDOWS_SAMPLES["3.7"]["siamese"]), "2.2.4",
                   "tensorflow")
    (lam,) = plan(raw).lambdas
    assert lam["status"] == "recovered" and "saved_on_windows" in lam and "random" not in lam


@pytest.mark.parametrize("version", sorted(SAMPLES))
def test_bytecode_not_saved_on_windows_is_read_as_it_is(version):
    info, _ = _recovered(SAMPLES[version]["arith"])
    assert not info.recovered.restored


def test_windows_is_only_suspected_without_backslashes_and_without_a_posix_path():
    assert may_be_windows(b"c/d", "C:/Users/x.py") and may_be_windows(b"c/d", "<stdin>")
    assert not may_be_windows(b"c/d\\", "<stdin>")  # Windows leaves no backslash
    assert not may_be_windows(b"c/d", "/home/user/train.py")
    assert not may_be_windows(b"cd", "<stdin>")


def test_code_restorations_try_each_ambiguous_byte_both_ways_as_read_first():
    variants = code_restorations(bytes([1, 0x2F, 2, 0x2F]))
    assert variants[0] == bytes([1, 0x2F, 2, 0x2F])
    assert set(variants) == {bytes([1, a, 2, b]) for a in (0x2F, 0x5C) for b in (0x2F, 0x5C)}


def test_keras1_text_that_also_looks_like_base64_is_read_as_keras1_text():
    raw = base64.b64decode(SAMPLES["2.7"]["defaults"])
    text = raw.decode("raw_unicode_escape")  # how Keras 1 stored it
    assert text.isascii() and base64.b64decode(text.encode(), validate=False) != raw
    assert raw in encodings(text)
    info, fn = _recovered(text, defaults=[3.0])
    np.testing.assert_allclose(np.asarray(fn(PAIR[0])), PAIR[0] * 3.0, rtol=1e-6)


# ------------------------------------------------------------------ random ops


def sampling(args):
    """The Keras VAE example's sampling function (``K`` is a module global, as there)."""
    z_mean, z_log_var = args
    batch = K.shape(z_mean)[0]  # noqa: F821 - bound by _vae before Keras calls it
    dim = K.int_shape(z_mean)[1]  # noqa: F821
    epsilon = K.random_normal(shape=(batch, dim))  # noqa: F821
    return z_mean + K.exp(0.5 * z_log_var) * epsilon  # noqa: F821


def _vae(path):
    import tf_keras as keras
    from tf_keras import backend

    globals()["K"] = backend  # the saved bytecode names the global K
    keras.utils.set_random_seed(2)
    x = keras.Input((6,), name="x")
    h = keras.layers.Dense(8, activation="relu", name="h")(x)
    z_mean = keras.layers.Dense(2, name="z_mean")(h)
    z_log_var = keras.layers.Dense(2, name="z_log_var")(h)
    z = keras.layers.Lambda(sampling, name="z")([z_mean, z_log_var])
    model = keras.Model(x, [z_mean, z_log_var, z])
    model.save(path, save_format="h5")
    return model


def test_vae_sampling_lambda_loads_draws_fresh_samples_and_says_it_is_stochastic(tmp_path):
    from modelport.loading.legacy.upgrade import plan
    from modelport.loading.modelfile import read_model_file
    from modelport.loading.source import load

    model = _vae(tmp_path / "vae.h5")
    (planned,) = plan(read_model_file(tmp_path / "vae.h5")).lambdas  # what inspect shows
    assert planned["random"] == "keras.backend.random_normal"
    src = load(tmp_path / "vae.h5")
    (lam,) = src.lambdas
    assert lam["rebuilt_from"] == "recovered"
    assert any(w.startswith("stochastic: Lambda z ") and "random_normal" in w
               for w in src.warnings)
    x = np.random.default_rng(0).normal(size=(4000, 6)).astype("float32")
    mean, log_var = (np.asarray(t) for t in model(x)[:2])
    first, second = src.predict({"x": x})["z"], src.predict({"x": x})["z"]
    assert not np.allclose(first, second)  # a new draw per call, as the original did
    # z = mean + exp(log_var / 2) * N(0, 1): the standardised draws are N(0, 1)
    eps = (first - mean) / np.exp(0.5 * log_var)
    assert abs(eps.mean()) < 0.05 and abs(eps.std() - 1.0) < 0.05


def test_vae_sampling_converts_to_every_format(tmp_path):
    from modelport.conversion import convert
    from modelport.loading.source import load

    _vae(tmp_path / "vae.h5")
    manifest = convert(load(tmp_path / "vae.h5"), tmp_path / "out", formats="all")
    assert [a.format for a in manifest.artifacts if not a.ok] == []
