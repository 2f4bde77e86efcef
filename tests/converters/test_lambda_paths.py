"""Lambda layers and custom objects: refused without help (and then no bytecode runs),
converted and correct with the user's custom-objects file.

The classic siamese Lambda is pure ``K.*`` arithmetic, which ``modelport.loading.legacy.recovery``
translates without running it, so the refusal is exercised with a Lambda that calls a
helper of the user's module: its bytecode alone can never be translated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelport import converters
from modelport.cli import main
from modelport.core.errors import LambdaRefusedError, MissingCustomObjectsError
from modelport.core.manifest import read_manifest
from modelport.loading.source import load
from modelport.validators.inputs import generate_inputs

HELPER_SOURCE = """from tf_keras import backend as K


def _row_norm(x):
    return K.sqrt(K.sum(K.square(x), axis=-1, keepdims=True) + 1.0)


def normalize_rows(x):
    return x / _row_norm(x)
"""


@pytest.fixture(scope="module")
def helper_model(tmp_path_factory) -> tuple[Path, Path]:
    """A tf_keras .h5 whose Lambda calls a module-level helper, and the user's objects file."""
    import tf_keras

    directory = tmp_path_factory.mktemp("helper")
    namespace: dict = {}
    exec(compile(HELPER_SOURCE, "<user module>", "exec"), namespace)
    tf_keras.utils.set_random_seed(5)
    inputs = tf_keras.Input(shape=(8,), name="features")
    x = tf_keras.layers.Lambda(namespace["normalize_rows"], name="normalize")(inputs)
    outputs = tf_keras.layers.Dense(3, name="scores")(x)
    model = tf_keras.Model(inputs, outputs)
    model.layers[-1].set_weights([np.random.default_rng(5).normal(size=(8, 3)) * 2.0,
                                  np.array([0.1, -0.2, 0.3])])
    path = directory / "normalizer.h5"
    model.save(path, save_format="h5")
    objects = directory / "normalizer_objects.py"
    objects.write_text(HELPER_SOURCE)
    return path, objects


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("modelport: error:")]


def test_lambda_without_objects_is_refused(helper_model) -> None:
    path, _ = helper_model
    with pytest.raises(LambdaRefusedError) as info:
        load(path)
    message = str(info.value)
    assert "normalize" in message  # the Lambda layer
    assert "normalize_rows" in message  # the function the user must define
    assert "--custom-objects" in message and "--trust-lambda" in message
    assert "\n" not in message
    assert info.value.layers == ["normalize"]
    assert info.value.exit_code == 2


def test_cli_refusal_exits_2_with_one_line(helper_model, tmp_path: Path, capsys) -> None:
    path, _ = helper_model
    out = tmp_path / "out"
    rc = main(["convert", str(path), "--to", "all", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 2
    errors = _error_lines(captured.err)
    assert len(errors) == 1, captured.err
    assert "--custom-objects" in errors[0] and "--trust-lambda" in errors[0]
    assert "Traceback" not in captured.err + captured.out
    assert not out.exists() or not any(out.iterdir())  # nothing written on refusal


def test_lambda_with_objects_converts_and_matches_numpy(helper_model, tmp_path: Path,
                                                        capsys) -> None:
    import h5py

    path, objects = helper_model
    out = tmp_path / "out"
    rc = main(["convert", str(path), "--to", "all", "--out", str(out),
               "--custom-objects", str(objects)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    manifest = read_manifest(out / "normalizer.manifest.json")
    assert manifest.source["lambdas"] == [{"layer": "normalize", "function": "normalize_rows",
                                           "rebuilt_from": "custom_objects"}]
    with h5py.File(path, "r") as f:
        group = f["model_weights"]["scores"]["scores"]
        kernel, bias = np.asarray(group["kernel:0"]), np.asarray(group["bias:0"])
    feeds = generate_inputs(manifest.artifacts[0].inputs, samples=5, seed=3)
    x = feeds["features"].astype(np.float64)
    want = x / np.sqrt((x ** 2).sum(axis=-1, keepdims=True) + 1.0) @ kernel + bias
    assert want.std(axis=0).min() > 1e-2
    for record in manifest.artifacts:
        got = converters.get(record.format).load(out / record.path).run(feeds)["scores"]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4, err_msg=record.format)


def _numpy_siamese(model_path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The siamese distance computed from the stored weights with numpy alone."""
    import h5py

    def dense(f, name):
        group = f["model_weights"]["base_network"][name]
        return (np.asarray(group["kernel:0"], np.float64), np.asarray(group["bias:0"], np.float64))

    with h5py.File(model_path, "r") as f:
        (w1, b1), (w2, b2) = dense(f, "base_dense_1"), dense(f, "base_dense_2")

    def tower(x):
        return np.maximum(np.maximum(x @ w1 + b1, 0) @ w2 + b2, 0)

    a, b = tower(feeds["input_a"].astype(np.float64)), tower(feeds["input_b"].astype(np.float64))
    return np.sqrt(np.maximum(((a - b) ** 2).sum(axis=1, keepdims=True), 1e-7))


def test_siamese_with_objects_rebinds_and_matches_numpy(converted) -> None:
    conv = converted.get("siamese")
    assert conv.source.lambdas == [{"layer": "distance", "function": "euclidean_distance",
                                    "rebuilt_from": "custom_objects"}]
    assert conv.manifest.source["lambdas"] == conv.source.lambdas
    feeds = generate_inputs(conv.source.inputs, samples=5, seed=11)
    want = _numpy_siamese(conv.fixture.path, feeds)
    assert want.std() > 1e-2
    for fmt in converters.names():
        got = converters.get(fmt).load(conv.artifact_path(fmt)).run(feeds)["distance"]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4, err_msg=fmt)


def test_siamese_without_objects_is_translated_not_refused(fixture_models) -> None:
    """Pure K.* arithmetic: recovered from the bytecode without running it (no file needed)."""
    fx = fixture_models.get("siamese")
    source = load(fx.path)
    assert [entry["layer"] for entry in source.lambdas] == ["distance"]
    assert source.lambdas[0]["rebuilt_from"] != "custom_objects"
    feeds = generate_inputs(source.inputs, samples=5, seed=12)
    np.testing.assert_allclose(source.predict(feeds)["distance"], _numpy_siamese(fx.path, feeds),
                               rtol=0, atol=1e-4)


# --------------------------------------------------------------------------- no bytecode runs

def _side_effect_model(path: Path, marker: Path) -> None:
    """A tf_keras .h5 whose Lambda creates ``marker`` whenever its bytecode runs."""
    import tf_keras

    namespace: dict = {}
    source = (f"def touch_marker(x):\n"
              f"    open({str(marker)!r}, 'w').close()\n"
              f"    return x * 2.0\n")
    exec(compile(source, "<crafted>", "exec"), namespace)
    inputs = tf_keras.Input(shape=(4,), name="x")
    outputs = tf_keras.layers.Lambda(namespace["touch_marker"], name="payload")(inputs)
    tf_keras.Model(inputs, outputs).save(path, save_format="h5")


def test_refusal_runs_no_bytecode(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "bytecode-ran"
    model = tmp_path / "payload.h5"
    _side_effect_model(model, marker)
    assert marker.exists()  # building the model ran it once: the payload works
    marker.unlink()

    with pytest.raises(LambdaRefusedError) as info:
        load(model)
    assert "payload" in str(info.value) and "touch_marker" in str(info.value)
    assert not marker.exists()
    assert main(["convert", str(model), "--out", str(tmp_path / "out")]) == 2
    capsys.readouterr()
    assert not marker.exists()

    # control: the same file with --trust-lambda does run it, so the check above can fail
    load(model, trust_lambda=True)
    assert marker.exists()


# --------------------------------------------------------------------------- custom_k3

def test_custom_k3_needs_its_objects_file(fixture_models) -> None:
    import keras

    fx = fixture_models.get("custom_k3")
    # the builder unregisters its class; if it leaked, loading would prove nothing
    assert fx.extra["registered"] not in keras.saving.get_custom_objects()
    with pytest.raises(MissingCustomObjectsError) as info:
        load(fx.path)
    assert "ScaledTanh" in str(info.value)
    assert "--custom-objects" in str(info.value)
