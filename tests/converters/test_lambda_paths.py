"""Lambda layers and custom objects: refused without help (no bytecode runs), converted
and correct with the user's custom-objects file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelport import converters
from modelport.cli import main
from modelport.errors import LambdaRefusedError, MissingCustomObjectsError, UnsafeModelError
from modelport.manifest import read_manifest
from modelport.source import load
from modelport.validators.inputs import generate_inputs


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("modelport: error:")]


def test_siamese_without_objects_is_refused(fixture_models) -> None:
    fx = fixture_models.get("siamese")
    with pytest.raises(LambdaRefusedError) as info:
        load(fx.path)
    message = str(info.value)
    assert "distance" in message  # the Lambda layer
    assert "euclidean_distance" in message  # the function the user must define
    assert "--custom-objects" in message and "--trust-lambda" in message
    assert "\n" not in message
    assert info.value.layers == ["distance"]
    assert info.value.exit_code == 2


def test_cli_refusal_exits_2_with_one_line(fixture_models, tmp_path: Path, capsys) -> None:
    fx = fixture_models.get("siamese")
    out = tmp_path / "out"
    rc = main(["convert", str(fx.path), "--to", "all", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 2
    errors = _error_lines(captured.err)
    assert len(errors) == 1, captured.err
    assert "--custom-objects" in errors[0] and "--trust-lambda" in errors[0]
    assert "Traceback" not in captured.err + captured.out
    assert not out.exists() or not any(out.iterdir())  # nothing written on refusal


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
    for fmt in converters.FORMAT_NAMES:
        got = converters.get(fmt).load(conv.artifact_path(fmt)).run(feeds)["distance"]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4, err_msg=fmt)


def test_cli_with_objects_converts(fixture_models, tmp_path: Path, capsys) -> None:
    fx = fixture_models.get("siamese")
    out = tmp_path / "out"
    rc = main(["convert", str(fx.path), "--to", "pb", "--out", str(out),
               "--custom-objects", str(fx.custom_objects)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    manifest = read_manifest(out / "siamese.manifest.json")
    assert [a.format for a in manifest.artifacts] == ["pb"] and manifest.ok
    assert (out / "siamese.pb").is_file()
    assert manifest.source["lambdas"][0]["rebuilt_from"] == "custom_objects"


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

@pytest.mark.xfail(strict=True, raises=UnsafeModelError,
                   reason="safety.check_config treats Keras 3's {'module': 'builtins', "
                          "'config': 'pkg>name'} reference to a registered loss as an attack "
                          "instead of a missing custom object")
def test_custom_k3_needs_its_objects_file(fixture_models) -> None:
    import keras

    fx = fixture_models.get("custom_k3")
    # the builder unregisters its class; if it leaked, loading would prove nothing
    assert fx.extra["registered"] not in keras.saving.get_custom_objects()
    with pytest.raises(MissingCustomObjectsError) as info:
        load(fx.path)
    assert "ScaledTanh" in str(info.value)
    assert "--custom-objects" in str(info.value)
