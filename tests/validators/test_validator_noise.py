"""The measured rule: noise floors, per-sample tolerances, random outputs compared by
distribution (pure numpy: the statistics on known distributions)."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.validators.compare import (
    KERNEL_RTOL, NOISE_MULTIPLE, Tolerance, compare_output, measured_tolerance, resolve_tolerance,
)
from modelport.validators.noise import EPS32, measure_noise, perturbed_feeds, perturbed_weights
from modelport.validators.stochastic import as_draws, compare_distribution, repeated_feeds


def test_noise_floor_scales_with_the_model_and_the_sample():
    x = np.array([[1.0, 2.0], [100.0, -300.0], [1e-3, 2e-3]], np.float32)

    def predict(feeds):
        return {"y": feeds["x"] * np.float32(7.0), "k": np.argmax(feeds["x"], axis=1)}

    out = predict({"x": x})
    noise = measure_noise(predict, {"x": x}, out)
    floors = noise.floors["y"]
    assert floors.shape == (3,) and "k" not in noise.floors and not noise.stochastic
    # one rounding of the inputs moves 7x by up to ~7 * eps * |x| per sample
    for row, f in zip(x, floors):
        assert 0 < f <= 7 * np.abs(row).max() * EPS32 * 2
        assert f > 7 * np.abs(row).max() * EPS32 / 20
    assert floors[1] > 1000 * floors[2]  # per sample, not one number for all


def test_id_inputs_are_never_perturbed():
    x = np.array([[517.0, 3.0]], np.float32)
    moved = perturbed_feeds({"ids": x, "f": x}, np.random.default_rng(0), rel=1e-3,
                            fixed=["ids"])
    np.testing.assert_array_equal(moved["ids"], x)
    assert not np.array_equal(moved["f"], x)


def test_perturbed_weights_are_restored_exactly():
    class Var:
        def __init__(self, w):
            self.w = np.array(w)

        def numpy(self):
            return self.w

        def assign(self, value):
            self.w = np.array(value)

    class Model:
        weights = [Var(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)),
                   Var(np.arange(3, dtype=np.int64))]

    before = [v.w.copy() for v in Model.weights]
    with perturbed_weights(Model, np.random.default_rng(0)) as n:
        assert n == 1  # the integer weight is left alone
        assert not np.array_equal(Model.weights[0].w, before[0])
        assert np.abs(Model.weights[0].w - before[0]).max() <= EPS32 * 1.0 * 1.01
    for v, w in zip(Model.weights, before):
        np.testing.assert_array_equal(v.w, w)


def test_random_outputs_are_told_from_deterministic_ones():
    rng = np.random.default_rng(3)
    x = np.ones((4, 3), np.float32)

    def predict(feeds):
        return {"mean": feeds["x"] * 2, "z": feeds["x"] + rng.standard_normal((4, 3))}

    out = predict({"x": x})
    noise = measure_noise(predict, {"x": x}, out)
    assert noise.stochastic == ["z"] and "mean" in noise.floors


def test_measured_tolerance_is_per_sample_and_never_below_float_rounding():
    ref = np.array([[1.0, -2.0], [1000.0, 5.0], [0.0, 0.0], [0.5, 0.5]], np.float32)
    tol = measured_tolerance(ref.dtype, ref, np.array([1e-6, 0.0, 0.0, 0.0]))
    assert tol.rule == "measured" and tol.rtol == 1e-3
    # kernels' own approximations: never below KERNEL_RTOL of the sample's largest value
    assert tol.rows[0] == pytest.approx(max(NOISE_MULTIPLE * 1e-6, KERNEL_RTOL * 2.0))
    assert tol.rows[1] == pytest.approx(KERNEL_RTOL * 1000.0)
    assert tol.rows[2] == 0.0
    assert tol.rows[3] == pytest.approx(KERNEL_RTOL * 0.5)
    assert tol.atol == max(tol.rows) and tol.noise_floor == 1e-6
    big = measured_tolerance(ref.dtype, ref, np.array([1e-4, 0.0, 0.0, 0.0]))
    assert big.rows[0] == pytest.approx(NOISE_MULTIPLE * 1e-4)  # the floor, when larger
    # an error passes on sample 0 and fails on sample 2, where the tolerance is less
    a = ref.astype(np.float64).copy()
    a[0, 0] += 2e-6
    assert compare_output("y", ref, a, tol).passed
    b = ref.astype(np.float64).copy()
    b[2, 0] += 2e-6
    c = compare_output("y", ref, b, tol)
    assert not c.passed and c.mismatched == 1 and "noise floors" in c.reason


def test_no_sample_gets_less_than_the_median_floor():
    ref = np.full((5, 1), 0.01, np.float32)  # small: the kernel allowance (1e-6) is below
    tol = measured_tolerance(ref.dtype, ref, np.array([1e-6, 2e-6, 3e-6, 1e-9, 1e-3]))
    assert tol.rows[3] == pytest.approx(NOISE_MULTIPLE * 2e-6)  # a lucky draw near 0
    assert tol.rows[0] == pytest.approx(NOISE_MULTIPLE * 2e-6)
    assert tol.rows[4] == pytest.approx(NOISE_MULTIPLE * 1e-3)  # its own, not shared
    assert measured_tolerance("int32", ref.astype(np.int32), 0.0) == Tolerance(0.0, 0.0)


def test_explicit_tolerances_override_the_measured_rule():
    ref = np.ones((2, 3), np.float32)
    measured = measured_tolerance(ref.dtype, ref, np.array([1e-7, 1e-7]))
    assert resolve_tolerance("float32", measured=measured) is measured
    given = resolve_tolerance("float32", "onnx", atol=0.5, measured=measured)
    assert (given.atol, given.rtol, given.rows, given.rule) == (0.5, 1e-3, None, "explicit")
    only_rtol = resolve_tolerance("float32", "onnx", rtol=0.1, measured=measured)
    assert only_rtol.rows == measured.rows and only_rtol.rtol == 0.1
    per = resolve_tolerance("float32", "tflite", atol=0.5, per_format={"tflite": (2.0, None)},
                            measured=measured)
    assert per.atol == 2.0


def _draws(rng, rows=2, k=256, loc=0.0, scale=1.0):
    mean = np.array([[0.0, 5.0, -1.0], [2.0, 0.0, 3.0]])[:rows]
    return mean[:, None, :] + loc + scale * rng.standard_normal((rows, k, 3))


def test_distribution_comparison_passes_fresh_draws_of_the_same_law():
    rng = np.random.default_rng(0)
    for _ in range(5):
        c = compare_distribution("z", _draws(rng), _draws(rng))
        assert c.passed, c.reason
        assert c.rule == "distribution" and c.distribution["draws"] == 256


@pytest.mark.parametrize("loc,scale,what", [(0.5, 1.0, "mean"), (0.0, 1.5, "spread"),
                                            (0.0, 0.0, "spread")])
def test_distribution_comparison_catches_a_shifted_or_rescaled_law(loc, scale, what):
    rng = np.random.default_rng(1)
    c = compare_distribution("z", _draws(rng), _draws(rng, loc=loc, scale=scale))
    assert not c.passed and what in c.reason and "by distribution" in c.reason


def test_distribution_comparison_of_non_random_elements_is_exact_enough():
    rng = np.random.default_rng(2)
    ref = _draws(rng)
    ref[:, :, 1] = 4.0  # one element is not random
    got = _draws(rng)
    got[:, :, 1] = 4.0
    assert compare_distribution("z", ref, got).passed
    got[:, :, 1] = 4.1
    c = compare_distribution("z", ref, got)
    assert not c.passed and "non-random values differ" in c.reason


def test_repeated_feeds_round_trip():
    x = np.arange(12.0).reshape(4, 3)
    rep = repeated_feeds({"x": x}, 2, 5)["x"]
    assert rep.shape == (10, 3)
    back = as_draws(rep, 2, 5)
    np.testing.assert_array_equal(back[1, 3], x[1])
