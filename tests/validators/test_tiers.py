"""Accuracy tiers: parsing overrides, SQNR, and the verdict on one output (hand-made
outputs whose figures are known without the code under test)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelport.core.errors import UserInputError
from modelport.validators.compare import Tolerance, compare_output
from modelport.validators.tiers import (
    DEFAULT_TIERS, Tier, judge, parse_tiers, resolve_tiers, sqnr_db, tier_for,
)

LOOSE = Tolerance(1e-4, 1e-3)


def _judged(ref: np.ndarray, got: np.ndarray, tier: Tier):
    c = compare_output("y", ref, got, LOOSE)
    judge(c, ref, got, tier)
    return c


def test_sqnr_is_signal_over_error_power_in_db():
    ref = np.ones((4, 5))
    assert sqnr_db(ref, ref + 0.1) == pytest.approx(20.0)  # 10*log10(1 / 0.01)
    assert sqnr_db(ref, ref * 1.01) == pytest.approx(40.0)
    assert sqnr_db(ref, ref) == 200.0  # capped, not infinite
    assert sqnr_db(np.zeros(3), np.ones(3)) == 0.0


def test_parse_tiers_reads_keys_values_and_off():
    assert parse_tiers(["int8=cosine:0.995,top1:0.9", "float16=sqnr:off",
                        "INT8_FULL=max-abs:0.2"]) == {
        "int8": {"cosine": 0.995, "top1": 0.9}, "float16": {"sqnr": None},
        "int8-full": {"max_abs": 0.2}}
    tiers = resolve_tiers(parse_tiers(["int8=top1:0.9", "float16=sqnr:off"]))
    assert tiers["int8"] == Tier("int8", cosine=DEFAULT_TIERS["int8"].cosine,
                                 sqnr=DEFAULT_TIERS["int8"].sqnr, top1=0.9)
    assert tiers["float16"].sqnr is None and tiers["float16"].cosine == 0.9999
    assert tier_for(tiers, "newmode").mode == "newmode"


@pytest.mark.parametrize("bad", ["int8", "int8=", "int8=cos:0.9", "int8=cosine=0.9",
                                 "int8=cosine:high", "=cosine:0.9", "int8=sqnr:inf"])
def test_parse_tiers_refuses_what_it_cannot_read(bad):
    with pytest.raises(UserInputError, match="--tier"):
        parse_tiers([bad])


def test_a_close_classifier_output_passes_and_reports_its_figures():
    rng = np.random.default_rng(0)
    ref = rng.dirichlet(np.ones(6) * 0.3, size=50)  # confident class scores
    got = ref + rng.normal(0, 1e-3, ref.shape)
    c = _judged(ref, got, DEFAULT_TIERS["int8"])
    assert c.passed and not c.reason and c.rule == "tier int8"
    assert c.sqnr_db > 40 and c.top1_agreement == 1.0
    assert c.mismatched > 0  # the element-wise rule alone would have failed it


def test_flipped_classes_fail_top1_with_the_figures_named():
    rng = np.random.default_rng(1)
    ref = rng.dirichlet(np.ones(4) * 0.3, size=50)
    got = ref.copy()
    got[:5] = got[:5, ::-1]  # 5 of 50 samples answer another class: 90%
    flipped = np.mean(np.argmax(got, -1) != np.argmax(ref, -1))
    c = _judged(ref, got, Tier("int8", top1=0.98))
    assert not c.passed and c.top1_agreement == pytest.approx(1 - flipped)
    assert "top-1 agreement" in c.reason and "int8 tier" in c.reason
    assert _judged(ref, got, Tier("int8", top1=1 - flipped - 0.01)).passed


def test_cosine_sqnr_and_max_abs_each_decide():
    ref = np.linspace(-1, 1, 40).reshape(8, 5)
    got = ref + 0.05  # error power 0.0025 against signal power ~0.36
    expected = 10 * math.log10(np.mean(ref ** 2) / 0.0025)
    c = _judged(ref, got, Tier("x", sqnr=expected + 1))
    assert not c.passed and "SQNR" in c.reason and c.sqnr_db == pytest.approx(expected)
    assert _judged(ref, got, Tier("x", sqnr=expected - 1)).passed
    assert not _judged(ref, got, Tier("x", max_abs=0.04)).passed
    assert _judged(ref, got, Tier("x", max_abs=0.06)).passed
    assert not _judged(ref, -ref, Tier("x", cosine=0.0)).passed


def test_nan_and_missing_outputs_fail_any_tier():
    ref = np.ones((3, 4))
    got = ref.copy()
    got[0, 0] = np.nan
    assert not _judged(ref, got, Tier("x")).passed
    c = compare_output("y", ref, None, LOOSE)
    judge(c, ref, None, Tier("x"))
    assert not c.passed and "missing" in c.reason


def test_integer_outputs_are_judged_by_agreement():
    ref = np.arange(20).reshape(20, 1) % 3
    got = ref.copy()
    got[0] = 5
    assert not _judged(ref, got, Tier("x", top1=0.98)).passed  # 95% agree
    assert _judged(ref, got, Tier("x", top1=0.9)).passed
