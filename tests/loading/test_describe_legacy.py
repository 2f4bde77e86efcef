"""``modelport inspect MODEL.h5`` reports era, backend, upgrade rules and blockers before
anything is built (on real files of ../shared/corpus/public)."""

from __future__ import annotations

import json

import pytest

from modelport.cli import main

from tests.paths import CORPUS


def _inspect(name: str, capsys) -> dict:
    path = CORPUS / name
    if not path.exists():
        pytest.skip("corpus not available")
    assert main(["inspect", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_keras1_file_lists_its_upgrade_rules(capsys):
    d = _inspect("faroit__CountNet__models_F-CRNN.h5", capsys)
    legacy = d["legacy"]
    assert legacy["era"] == "keras1" and legacy["keras_version"] == "1.2.2"
    joined = " ".join(legacy["rules"])
    assert "keras1_conv_args" in joined and "sequential_list_config" in joined
    assert legacy["blockers"] == []


def test_weights_only_file_names_the_blocker(capsys):
    d = _inspect("IchBinDerBoss__keras_bug__weights.h5", capsys)
    assert any("weights only" in b for b in d["legacy"]["blockers"])


def test_lambda_recovery_is_planned_without_running_code(capsys):
    d = _inspect("KonduitAI__dl4j-test-resources__src_main_resources_modelimport_keras_"
                 "examples_deepfm_deepfm.h5", capsys)
    lambdas = {l["layer"]: l for l in d["legacy"]["lambdas"]}
    assert lambdas["sum_of_tensors"]["status"] == "recovered"
    assert "sum" in lambdas["sum_of_tensors"]["expression"]
