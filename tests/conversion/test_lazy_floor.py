"""``convert``'s check measures the Keras model's noise floor only when a candidate needs
it: the rule is monotone in the floor, so a candidate within its floor-free minimum passes
whatever the floor; one outside it is judged again under the measured floor, and the
verdict is ``validate``'s either way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelport.conversion import convert
from modelport.validators import validation
from modelport.validators.compare import KERNEL_RTOL, measured_tolerance
from tests.converters.test_routes import _patch_routes, _scaled
from tests.models import dense_model


@pytest.fixture
def measures(monkeypatch) -> list[int]:
    """How often the noise floor is measured."""
    calls: list[int] = []
    real = validation.measure
    monkeypatch.setattr(validation, "measure",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_the_rule_only_widens_with_the_floor():
    rng = np.random.default_rng(5)
    for _ in range(200):
        y = (rng.standard_normal((4, 7)) * 10.0 ** rng.uniform(-6, 6)).astype(np.float32)
        floors = np.abs(rng.standard_normal(4)) * 10.0 ** rng.uniform(-12, 2)
        free, measured = (measured_tolerance(y.dtype, y, f) for f in (0.0, floors))
        assert np.all(np.array(measured.rows) >= np.array(free.rows))
        assert measured.rtol == free.rtol
        np.testing.assert_allclose(free.rows, KERNEL_RTOL * np.abs(y).max(axis=1),
                                   rtol=1e-6)


def test_candidates_within_the_minimum_need_no_floor(tmp_path, measures):
    path = dense_model(tmp_path / "net.keras", 6, 8, 3, seed=4)
    manifest = convert(path, tmp_path / "out", "onnx,tflite")
    assert sorted((a.format, a.check["status"]) for a in manifest.artifacts) == \
        [("onnx", "passed"), ("tflite", "passed")]
    assert measures == []
    assert all("noise floor was not measured" in a.check["rule"] for a in manifest.artifacts)
    report = validation.validate(path, tmp_path / "out")  # the full rule agrees
    assert report.passed and measures == [1]


def _cancelling(path: Path) -> Path:
    """y = 1e5 x - (1e5 - 1) x: one float32 rounding moves it by about 1% of itself."""
    import keras
    from keras import initializers, layers

    inp = keras.Input((4,), name="x")
    a = layers.Dense(4, kernel_initializer=initializers.Identity(gain=1e5), use_bias=False,
                     name="big")(inp)
    b = layers.Dense(4, kernel_initializer=initializers.Identity(gain=-(1e5 - 1)),
                     use_bias=False, name="minus_big")(inp)
    keras.Model(inp, layers.Add(name="y")([a, b])).save(path)
    return path


def test_a_candidate_outside_the_minimum_is_judged_under_the_measured_floor(
        tmp_path, monkeypatch, measures):
    path = _cancelling(tmp_path / "cancel.keras")
    # one weight off by about one float32 rounding: ~2% of this output, far beyond the
    # minimum, within 32 of its noise floors
    _patch_routes(monkeypatch, lambda r: [_scaled(r, "rounded", factor=1 + 2.5e-7)],
                  keep_real=False)
    record = convert(path, tmp_path / "out", "onnx").artifact("onnx")
    assert record.ok and record.check["status"] == "passed", record.check
    assert measures == [1]
    assert "not measured" not in record.check["rule"]
    assert record.check["max_abs_error"] > 10 * KERNEL_RTOL * 1.0
    assert validation.validate(path, tmp_path / "out").passed  # validate agrees


def test_a_wrong_candidate_still_fails_under_the_measured_floor(tmp_path, monkeypatch,
                                                                measures):
    path = dense_model(tmp_path / "net.keras", 6, 8, 3, seed=4)
    _patch_routes(monkeypatch, lambda r: [_scaled(r, "scaled", factor=1.02)],
                  keep_real=False)
    record = convert(path, tmp_path / "out", "onnx").artifact("onnx")
    assert not record.ok and record.unverified
    assert record.check["status"] == "failed" and measures == [1]
    assert "not measured" not in record.check["rule"]
