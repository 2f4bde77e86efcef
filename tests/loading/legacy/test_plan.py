"""``plan``: what inspect reports before building anything, without importing TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelport.loading.legacy.upgrade import era, plan
from modelport.loading.raw import RawModel

from tests.loading.legacy.bytecode_samples import SAMPLES
from tests.paths import REPO


def raw(config, version="1.2.2", backend=""):
    return RawModel(Path("m.h5"), "h5", config, version, backend)


@pytest.mark.parametrize("version, expected", [
    ("", "keras1"), ("1.2.2", "keras1"), ("2.1.6", "keras2.0-2.3"), ("2.2.4-tf", "tf.keras1.x"),
    ("2.12.0", "tf.keras2.4+"), ("3.8.0", "keras3"),
])
def test_era(version, expected):
    assert era(raw({"class_name": "Sequential", "config": []}, version)) == expected


def test_plan_reports_rules_backend_lambdas_and_blockers():
    config = {"class_name": "Sequential", "config": [
        {"class_name": "Lambda", "config": {
            "name": "scale", "function": [SAMPLES["3.6"]["arith"], None, None],
            "function_type": "lambda", "batch_input_shape": [None, 1, 4, 4]}},
        {"class_name": "Lambda", "config": {
            "name": "bad", "function": [SAMPLES["2.7"]["unknown_global"], None, None],
            "function_type": "lambda"}},
        {"class_name": "Convolution2D", "config": {
            "name": "c", "nb_filter": 2, "nb_row": 3, "nb_col": 3, "dim_ordering": "th"}}]}
    result = plan(raw(config))
    assert result.era == "keras1" and result.backend == "theano"
    assert "dim_ordering='th'" in result.backend_note
    assert any(r.startswith("upgrade keras1_conv_args") for r in result.rules)
    scale, bad = result.lambdas
    assert scale == {"layer": "scale", "function": "<lambda>", "python": "3.7",
                     "status": "recovered", "expression": "((x / 127.5) - 1.0)"}
    assert bad["status"] == "refused" and "my_helper" in bad["reason"]
    assert result.blockers == [bad["reason"]]
    assert config["config"][0]["config"]["function_type"] == "lambda"  # input untouched


def test_plan_of_weights_only_and_unconvertible_files():
    assert "weights only" in plan(RawModel(Path("w.h5"), "h5", None, "2.2.4")).blockers[0]
    highway = {"class_name": "Sequential", "config": [{"class_name": "Highway",
                                                       "config": {"name": "hw"}}]}
    assert "Highway was removed" in plan(raw(highway)).blockers[0]


def test_plan_does_not_import_tensorflow():
    code = ("import sys; from pathlib import Path; from modelport.loading.raw import RawModel; "
            "from modelport.loading.legacy.upgrade import plan; "
            "plan(RawModel(Path('m.h5'), 'h5', {'class_name': 'Sequential', 'config': ["
            "{'class_name': 'Dense', 'config': {'name': 'd', 'output_dim': 2}}]}, '1.2.2')); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
