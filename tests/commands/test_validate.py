"""``modelport validate`` and ``modelport convert --validate``, in-process through ``main``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from modelport.cli import main
from modelport.validators.compare import NOISE_MULTIPLE


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small NHWC CNN (6x5x3 input) and its ONNX + TFLite artifacts."""
    import keras
    from keras import layers

    from modelport.conversion import convert

    root = tmp_path_factory.mktemp("cli-validate")
    keras.utils.set_random_seed(21)
    inp = keras.Input((6, 5, 3), name="image")
    x = layers.Conv2D(4, 3, activation="tanh", name="conv")(inp)
    x = layers.Flatten(name="flat")(x)
    out = layers.Dense(3, activation="softmax", name="probs")(x)
    model = root / "small.keras"
    keras.Model(inp, out).save(model)
    manifest = convert(model, root / "out", formats="tflite,onnx")
    assert manifest.ok
    return model, root / "out"


def test_passing_set_exits_0_with_table_and_json(small, tmp_path, capsys):
    model, out = small
    report = tmp_path / "report.json"
    assert main(["validate", str(model), str(out), "--json", str(report)]) == 0
    text = capsys.readouterr().out
    assert "max abs" in text and "cosine" in text
    assert sum(" PASS " in line for line in text.splitlines()) == 2
    d = json.loads(report.read_text())
    assert d["passed"] is True and isinstance(d["warnings"], list)
    assert {r["format"] for r in d["results"]} == {"tflite", "onnx"}
    for r in d["results"]:
        assert {"artifact", "format", "passed", "max_abs_error", "max_rel_error", "cosine",
                "top1_agreement", "diagnosis"} <= set(r)
        assert r["passed"] is True and r["max_abs_error"] < 1e-4 and r["diagnosis"] == ""


def test_faulty_artifact_exits_1(small, tmp_path, capsys):
    from modelport.validators.faults import onnx_scale_weights

    model, out = small
    bad = tmp_path / "out"
    shutil.copytree(out, bad)
    onnx_scale_weights(out / "small.onnx", bad / "small.onnx", 1.02)
    report = tmp_path / "report.json"
    assert main(["validate", str(model), str(bad), "--json", str(report)]) == 1
    assert "FAIL" in capsys.readouterr().out
    d = json.loads(report.read_text())
    verdicts = {r["format"]: r["passed"] for r in d["results"]}
    assert d["passed"] is False and verdicts == {"tflite": True, "onnx": False}
    onnx_result = next(r for r in d["results"] if r["format"] == "onnx")
    assert onnx_result["diagnosis"] and onnx_result["max_abs_error"] > 1e-4
    # a looser per-format tolerance accepts it (the numbers are real, not a crash)
    need = max(o["min_passing_atol"] for o in onnx_result["outputs"])
    assert main(["validate", str(model), str(bad), "--tolerance", f"onnx={need * 2}"]) == 0


def test_unusable_input_exits_2(small, tmp_path, capsys):
    model, out = small
    assert main(["validate", str(model), str(tmp_path / "missing.onnx")]) == 2
    np.save(tmp_path / "wrong.npy", np.ones((2, 5, 6, 3), np.float32))
    assert main(["validate", str(model), str(out), "--inputs", str(tmp_path / "wrong.npy")]) == 2
    assert main(["validate", str(model), str(out), "--shape", "image=oops"]) == 2
    assert main(["validate", str(model), str(out), "--tolerance", "keras=1"]) == 2
    assert main(["validate", str(tmp_path / "nope.h5"), str(out)]) == 2
    assert "error:" in capsys.readouterr().err


def test_save_inputs_then_replay(small, tmp_path):
    model, out = small
    saved = tmp_path / "inputs.npz"
    first, again = tmp_path / "first.json", tmp_path / "again.json"
    assert main(["validate", str(model), str(out), "--samples", "3", "--seed", "5",
                 "--save-inputs", str(saved), "--json", str(first)]) == 0
    arrays = np.load(saved)
    assert arrays["image"].shape == (3, 6, 5, 3) and np.unique(arrays["image"]).size > 1
    assert main(["validate", str(model), str(out), "--inputs", str(saved),
                 "--json", str(again)]) == 0
    a, b = json.loads(first.read_text()), json.loads(again.read_text())
    assert [r["outputs"] for r in a["results"]] == [r["outputs"] for r in b["results"]]
    np.save(tmp_path / "one.npy", arrays["image"][0])  # a single sample, no batch axis
    assert main(["validate", str(model), str(out), "--inputs", str(tmp_path / "one.npy")]) == 0


def test_convert_then_validate(small, tmp_path, capsys):
    model, _ = small
    code = main(["convert", str(model), "--to", "onnx", "--out", str(tmp_path / "o"),
                 "--validate"])
    assert code == 0
    assert "PASS" in capsys.readouterr().out


def test_degenerate_model_exits_1_unless_allowed(tmp_path, capsys):
    import keras
    from keras import layers

    from modelport.conversion import convert

    inp = keras.Input((4,), name="x")
    out = layers.Dense(2, kernel_initializer="zeros", bias_initializer="ones", name="y")(inp)
    keras.Model(inp, out).save(tmp_path / "deg.keras")
    assert convert(tmp_path / "deg.keras", tmp_path / "out", formats="onnx").ok
    report = tmp_path / "r.json"
    args = ["validate", str(tmp_path / "deg.keras"), str(tmp_path / "out")]
    assert main(args + ["--json", str(report)]) == 1
    assert "degenerate: outputs do not depend on the inputs" in capsys.readouterr().out
    assert "degenerate" in json.loads(report.read_text())["results"][0]["diagnosis"]
    assert main(args + ["--allow-degenerate"]) == 0


def test_report_states_inputs_rule_and_noise_floor(tmp_path, capsys):
    """A pixel model (Rescaling(1/255) first): the table and the JSON say each input's
    distribution and why, the rule applied and the noise floor measured per output."""
    import keras
    from keras import layers

    from modelport.conversion import convert

    keras.utils.set_random_seed(22)
    inp = keras.Input((6, 6, 3), name="photo")
    x = layers.Rescaling(1 / 255, name="to_unit")(inp)
    x = layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    out = layers.Dense(2, name="score")(layers.Flatten(name="flat")(x))
    keras.Model(inp, out).save(tmp_path / "pix.keras")
    assert convert(tmp_path / "pix.keras", tmp_path / "out", formats="onnx").ok
    report = tmp_path / "r.json"
    assert main(["validate", str(tmp_path / "pix.keras"), str(tmp_path / "out"),
                 "--json", str(report)]) == 0
    text = capsys.readouterr().out
    assert "input photo: uniform [0, 255] (Rescaling 'to_unit'" in text
    assert "rule: every element |artifact - keras| <= atol + rtol*|keras|" in text
    assert "noise floors: score " in text
    d = json.loads(report.read_text())
    assert d["inputs"]["photo"]["distribution"] == "uniform [0, 255]"
    assert "pixel values in [0, 255]" in d["inputs"]["photo"]["why"]
    assert "noise floor" in d["rule"] and d["noise_floors"]["score"] > 0
    (o,) = d["results"][0]["outputs"]
    assert o["rule"] == "measured" and o["noise_floor"] == d["noise_floors"]["score"]
    assert o["atol"] >= NOISE_MULTIPLE * o["noise_floor"]
    # an explicit tolerance replaces the measured one, and the report says so
    assert main(["validate", str(tmp_path / "pix.keras"), str(tmp_path / "out"),
                 "--atol", "0.5", "--json", str(report)]) == 0
    d = json.loads(report.read_text())
    (o,) = d["results"][0]["outputs"]
    assert (o["rule"], o["atol"]) == ("explicit", 0.5) and "atol=0.5" in d["rule"]
