"""Per-output numbers and the pass rule |a - b| <= atol + rtol * |b|."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from modelport.validators.compare import (
    Tolerance, barely_varies, compare_output, is_degenerate, resolve_tolerance,
)
from modelport.validators.report import ArtifactResult, ValidationReport, format_report

TOL = Tolerance(1e-4, 1e-3)


def _ref(seed: int = 0, shape=(6, 10)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_identical_outputs_pass_with_zero_error():
    b = _ref()
    c = compare_output("y", b, b.copy(), TOL)
    assert c.passed and c.mismatched == 0 and not c.reason
    assert c.max_abs_error == 0 and c.min_passing_atol == 0 and c.cosine == pytest.approx(1.0)
    assert c.top1_agreement == 1.0


def test_boundary_of_the_pass_rule():
    b = np.array([[0.0, 10.0]], np.float32)
    inside = np.array([[0.0, 10.0 + 1e-4 + 1e-2 - 1e-5]])  # atol + rtol*|b| = 0.0101
    outside = np.array([[0.0, 10.0 + 1e-4 + 1e-2 + 1e-4]])
    assert compare_output("y", b, inside, TOL).passed
    c = compare_output("y", b, outside, TOL)
    assert not c.passed and c.mismatched == 1
    assert "1 of 2 values" in c.reason


def test_min_passing_atol_is_the_smallest_atol_that_passes():
    b = _ref(1)
    a = b + np.random.default_rng(2).normal(0, 1e-2, b.shape).astype(np.float32)
    c = compare_output("y", b, a, TOL)
    assert not c.passed
    need = c.min_passing_atol
    assert compare_output("y", b, a, Tolerance(need * (1 + 1e-9) + 1e-12, TOL.rtol)).passed
    assert not compare_output("y", b, a, Tolerance(need * 0.99, TOL.rtol)).passed
    d = np.abs(a.astype(np.float64) - b)
    assert c.max_abs_error == pytest.approx(d.max())
    assert c.mean_abs_error == pytest.approx(d.mean())
    assert c.p99_abs_error == pytest.approx(np.percentile(d, 99))
    assert c.p99_abs_error <= c.max_abs_error
    assert c.max_rel_error == pytest.approx((d / np.abs(b)).max(), rel=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_the_artifact_fails(bad):
    b = _ref()
    a = b.copy()
    a[2, 3] = bad
    c = compare_output("y", b, a, Tolerance(1e9, 1e9))  # no tolerance forgives it
    assert not c.passed and c.nonfinite == 1
    assert ("NaN" if np.isnan(bad) else "Inf") in c.reason
    assert math.isnan(c.max_abs_error)


def test_cosine_and_top1():
    b = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], np.float32)
    flipped = b[:, ::-1].copy()
    c = compare_output("p", b, flipped, TOL)
    assert c.top1_agreement == 0.0
    assert c.cosine == pytest.approx(float(np.dot(b.ravel(), flipped.ravel()) /
                                           np.dot(b.ravel(), b.ravel())))
    assert compare_output("v", np.arange(4.0), np.arange(4.0), TOL).top1_agreement is None


def test_shape_mismatch_and_missing_output():
    b = _ref()
    c = compare_output("y", b, b.T, TOL)
    assert not c.passed and "shape" in c.reason
    assert not compare_output("y", b, None, TOL).passed
    # [N, 1] against [N]: the same values, only a squeezed axis
    assert compare_output("y", b[:, :1], b[:, 0], TOL).passed


def test_integer_outputs_must_match_exactly():
    tol = resolve_tolerance("int64")
    assert tol == Tolerance(0.0, 0.0)
    assert not compare_output("k", np.array([1, 2, 3]), np.array([1, 2, 4]), tol).passed
    assert compare_output("k", np.array([1, 2, 3]), np.array([1, 2, 3]), tol).passed


def _pair(tol: Tolerance) -> tuple[float, float]:
    return tol.atol, tol.rtol


def test_tolerance_precedence():
    assert _pair(resolve_tolerance("float32")) == (1e-4, 1e-3)
    assert _pair(resolve_tolerance("float32", "onnx", atol=1e-2)) == (1e-2, 1e-3)
    per = {"tflite": (5e-3, None)}
    assert _pair(resolve_tolerance("float32", "tflite", 1e-2, 1e-2, per)) == (5e-3, 1e-2)
    assert _pair(resolve_tolerance("float32", "onnx", None, None, per)) == (1e-4, 1e-3)
    assert resolve_tolerance("float16").atol > resolve_tolerance("float32").atol


def test_degenerate_detection():
    row = np.array([0.3, -1.2, 4.0], np.float32)
    constant = np.tile(row, (5, 1))
    assert is_degenerate(constant)
    assert is_degenerate(constant + np.float32(1e-9) * np.arange(5)[:, None])  # float noise
    varying = _ref(3, (5, 3))
    assert not is_degenerate(varying)
    assert not is_degenerate(constant[:1])  # one sample proves nothing either way
    small = constant + 1e-5 * _ref(4, (5, 3))
    assert not is_degenerate(small) and barely_varies(small, TOL)
    assert not barely_varies(varying, TOL)


def test_report_json_has_the_documented_shape():
    b = _ref()
    good = ArtifactResult("m.onnx", "onnx", True, [compare_output("y", b, b, TOL)])
    a = b.copy()
    a[0, 0] = np.nan
    bad = ArtifactResult("m.tflite", "tflite", False, [compare_output("y", b, a, TOL)],
                         diagnosis="output 'y' contains NaN")
    report = ValidationReport("m.keras", [good, bad], ["a warning"], samples=4)
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))  # strict JSON: no NaN
    assert d["passed"] is False and d["warnings"] == ["a warning"]
    for r in d["results"]:
        assert {"artifact", "format", "passed", "max_abs_error", "max_rel_error", "cosine",
                "top1_agreement", "diagnosis"} <= set(r)
    assert d["results"][1]["max_abs_error"] is None
    assert report.exit_code == 1
    text = format_report(report)
    assert "FAIL m.tflite: output 'y' contains NaN" in text and "PASS" in text
    assert ValidationReport("m.keras", [good]).exit_code == 0


def test_reference_checks_flag_nan_degenerate_and_weak_outputs():
    from modelport.validators.reference import Reference, check_outputs

    x = {"x": np.arange(12.0, dtype=np.float32).reshape(4, 3)}
    outputs = {
        "varies": _ref(5, (4, 3)),
        "nan": np.array([[1.0], [np.nan], [2.0], [3.0]], np.float32),
        "const": np.tile(np.float32([1.0, 2.0]), (4, 1)),
        "weak": (1.0 + 1e-6 * _ref(6, (4, 2))).astype(np.float32),
        "ids": np.array([3, 3, 3, 3]),
    }
    ref = Reference(x, outputs, 3, True, {"x": None})
    check_outputs(ref, lambda name, y: resolve_tolerance(y.dtype))
    assert ref.nonfinite == ["nan"] and ref.degenerate == ["const"]
    assert any("'weak'" in w and "less than the tolerance" in w for w in ref.warnings)
    assert any("'ids'" in w for w in ref.warnings)
    assert not any("'varies'" in w for w in ref.warnings)


def test_reference_of_a_fixed_batch_model_runs_in_chunks():
    from types import SimpleNamespace

    from modelport.core.records import TensorInfo
    from modelport.validators.validation import _reference_fn

    seen = []

    def predict(feeds):
        seen.append(feeds["x"].shape[0])
        assert feeds["x"].shape[0] == 2, "a fixed-batch model only takes batches of 2"
        return {"y": feeds["x"] * 2}

    source = SimpleNamespace(inputs=[TensorInfo("x", [2, 3], "float32")], predict=predict)
    x = np.arange(15.0, dtype=np.float32).reshape(5, 3)
    out = _reference_fn(source)({"x": x})
    np.testing.assert_array_equal(out["y"], x * 2)
    assert seen == [2, 2, 2]
