"""Every fixture x every format: the artifact, opened in its own runtime, is fed by the Keras
input names, fetched by the Keras output names, and matches the Keras model within 1e-4.

The reference is ``SourceModel.predict`` (modelport's traced Keras model);
``test_reference_is_the_keras_model`` checks that reference against the model file loaded
directly by Keras / tf_keras, so a loader bug cannot hide behind a matching artifact.
"""

from __future__ import annotations

import hashlib
import importlib.util
import zlib
from pathlib import Path

import numpy as np
import pytest

from modelport import converters
from modelport.fixtures import NAMES
from modelport.core.manifest import read_manifest
from modelport.validators.inputs import generate_inputs

ATOL = 1e-4
MIN_SPREAD = 1e-3  # outputs must move with the input by far more than the tolerance
FORMATS = converters.names()

# Known bugs outside this file, kept visible: strict xfail turns green->red when fixed.
_KNOWN: dict[tuple[str, str | None], pytest.MarkDecorator] = {}


def _param(name: str, fmt: str | None = None):
    marks = [_KNOWN[(name, fmt)]] if (name, fmt) in _KNOWN else []
    return pytest.param(name, fmt, marks=marks, id=f"{name}-{fmt}" if fmt else name)


def seed_for(name: str) -> int:
    return zlib.crc32(name.encode())


def feeds_for(source, name: str) -> dict[str, np.ndarray]:
    """Seeded inputs in the range each input declares (pixel values before a Rescaling:
    a trained image model answers standard-normal "pixels" with near-constant outputs)."""
    from modelport.loading.domain import input_domains

    return generate_inputs(source.inputs, samples=4, seed=seed_for(name),
                           vocab=source.embedding_vocab, domains=input_domains(source.model))


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != reference {want.shape}"
    err = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
    assert err <= ATOL, f"{what}: max abs error {err:.3g} > {ATOL}"


def assert_varies(ref: dict[str, np.ndarray], what: str) -> None:
    for key, value in ref.items():
        spread = float(np.max(np.std(np.asarray(value, dtype=np.float64), axis=0)))
        assert np.all(np.isfinite(value)), f"{what}: reference {key} has non-finite values"
        assert spread > MIN_SPREAD, f"{what}: reference {key} barely varies ({spread:.2e})"


@pytest.mark.parametrize("name, fmt", [_param(n, f) for n in NAMES for f in FORMATS])
def test_artifact_matches_keras(name: str, fmt: str, converted) -> None:
    conv = converted.get(name)
    record = conv.manifest.artifact(fmt)
    assert record is not None and record.ok, f"{name} -> {fmt} failed: {record and record.error}"
    runner = converters.get(fmt).load(conv.artifact_path(fmt))
    fx = conv.fixture
    # names as the builder declared them, not as the loader reported them
    assert sorted(t.name for t in runner.inputs) == sorted(fx.inputs)
    assert sorted(t.name for t in runner.outputs) == sorted(fx.outputs)

    feeds = feeds_for(conv.source, name)
    ref = conv.source.predict(feeds)
    assert list(ref) == list(fx.outputs)
    assert_varies(ref, name)
    got = runner.run(feeds)
    assert sorted(got) == sorted(fx.outputs)
    for out in fx.outputs:
        assert_close(got[out], ref[out], f"{name} {fmt} output {out!r}")


def _import_objects(path: Path) -> dict:
    spec = importlib.util.spec_from_file_location(f"objects_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {k: v for k, v in vars(module).items() if not k.startswith("_")}


def _keras_direct(fx) -> dict[str, np.ndarray] | None:
    """The fixture file loaded by its own framework, no modelport involved."""
    objects = _import_objects(fx.custom_objects) if fx.custom_objects else {}
    if fx.framework == "tf_keras":
        import tf_keras

        # the Lambda's stored bytecode runs here: we built this file ourselves
        return tf_keras.models.load_model(fx.path, custom_objects=objects, compile=False)
    import keras

    registered = fx.extra.get("registered")
    if registered:
        package = registered.split(">")[0]
        objects.update({f"{package}>{k}": v for k, v in list(objects.items()) if callable(v)})
    return keras.saving.load_model(fx.path, custom_objects=objects, compile=False)


@pytest.mark.parametrize("name, fmt", [_param(n) for n in NAMES if n != "cnn_cf"])
def test_reference_is_the_keras_model(name: str, fmt, converted) -> None:
    """cnn_cf cannot run unwrapped on CPU; tests/test_layout.py checks it against XLA."""
    conv = converted.get(name)
    fx = conv.fixture
    assert conv.source.input_names == list(fx.inputs)
    assert conv.source.output_names == list(fx.outputs)
    if "vocab" in fx.extra:
        assert conv.source.embedding_vocab == {fx.inputs[0]: fx.extra["vocab"]}
    feeds = feeds_for(conv.source, name)
    model = _keras_direct(fx)
    args = [feeds[n] for n in fx.inputs]
    out = model(args if len(args) > 1 else args[0], training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    ref = conv.source.predict(feeds)
    assert_varies(ref, name)
    for key, value in zip(fx.outputs, out):
        assert_close(ref[key], np.asarray(value), f"{name} reference {key!r} vs Keras")


@pytest.mark.parametrize("name, fmt", [_param(n) for n in NAMES])
def test_manifest_records_every_artifact(name: str, fmt, converted) -> None:
    conv = converted.get(name)
    fx = conv.fixture
    on_disk = read_manifest(conv.manifest.path)
    assert [a.format for a in on_disk.artifacts] == list(FORMATS)
    assert on_disk.source["layout"] == conv.source.layout
    for record in on_disk.artifacts:
        assert record.ok, f"{record.format}: {record.error}"
        path = conv.out_dir / record.path
        assert path.exists()
        assert len(record.sha256) == 64 and int(record.sha256, 16) >= 0
        if path.is_file():
            assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
            assert record.size == path.stat().st_size
        else:
            assert record.size == sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        assert [t.name for t in record.inputs] == list(fx.inputs)
        assert [t.name for t in record.outputs] == list(fx.outputs)
        assert set(record.layout) == set(fx.inputs)
        if fx.data_format == "channels_first":
            assert record.layout[fx.inputs[0]] == "NCHW"
        elif fx.data_format == "channels_last":
            assert "NHWC" in record.layout.values()


def _h5_arrays(path: Path) -> dict[str, np.ndarray]:
    import h5py

    arrays: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f["model_weights"].visititems(
            lambda key, obj: arrays.__setitem__(key, np.asarray(obj))
            if isinstance(obj, h5py.Dataset) else None)
    return arrays


@pytest.mark.parametrize("name", ["siamese", "text_lstm"])
def test_fixture_builds_are_deterministic(name: str, fixture_models, tmp_path: Path) -> None:
    """The parity seeds mean something only if a rebuild gives the same weights."""
    from modelport.fixtures import build

    cached = _h5_arrays(fixture_models.get(name).path)
    fresh = _h5_arrays(build(name, tmp_path).path)
    assert cached and sorted(cached) == sorted(fresh)
    for key in cached:
        np.testing.assert_array_equal(cached[key], fresh[key], err_msg=key)
