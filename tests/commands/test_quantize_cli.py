"""``modelport convert --quantize``: calibration data as the user gives them, and every way
they can be wrong: each a one-line error naming what to change (exit 2, or 3 for a mode
the model cannot support), with nothing left half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from modelport.cli import main
from modelport.fixtures import trained


def _error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.startswith("modelport: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _left(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


@pytest.fixture(scope="module")
def cnn(fixture_models):
    return fixture_models.get("trained_cnn")


def _convert(model, out: Path, *extra: str) -> int:
    return main(["convert", str(model), "--to", "tflite", "--out", str(out), *extra])


def test_int8_without_calibration_refuses_before_anything_is_written(cnn, tmp_path, capsys):
    assert _convert(cnn.path, tmp_path / "out", "--quantize", "float16,int8") == 2
    line = _error(capsys)
    assert "--calibration" in line and "--synthetic-calibration" in line and "int8" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, expected", [
    (["--quantize", "int4"], "unknown mode"),
    (["--quantize", "int8-full", "--to", "onnx"], "only tflite offers it"),
    (["--synthetic-calibration"], "add --quantize"),
])
def test_bad_quantize_options(cnn, tmp_path, capsys, args, expected):
    assert main(["convert", str(cnn.path), "--out", str(tmp_path / "out"), *args]) == 2
    assert expected in _error(capsys)
    assert not (tmp_path / "out").exists()


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_bad_calibration_files(cnn, fixture_models, tmp_path, capsys):
    """Each bad file is refused before any artifact is written, naming what to change."""
    image = trained.calibration_set(4)
    multi = fixture_models.get("multi_io")
    meta, img16 = np.ones((4, 8), np.float32), np.ones((4, 16, 16, 3), np.float32)
    cases = [
        (cnn.path, _npz(tmp_path / "misnamed.npz", img=image), "no array for input(s) image"),
        (cnn.path, _npz(tmp_path / "shape.npz", image=image[:, :20]), "shape"),
        (cnn.path, _npz(tmp_path / "dtype.npz", image=np.full((4, 24, 24, 3), "x")),
         "numeric"),
        (cnn.path, _npz(tmp_path / "nan.npz", image=image * np.nan), "NaN"),
        (cnn.path, _npz(tmp_path / "empty.npz", image=image[:0]), "no samples"),
        (multi.path, _npz(tmp_path / "missing.npz", meta=meta), "no array for input(s) image"),
        # np.savez(path, a, b): a positional list, which could feed the inputs swapped
        (multi.path, _npz(tmp_path / "positional.npz", arr_0=meta, arr_1=img16),
         "key each array by input name"),
        (cnn.path, tmp_path / "absent.npz", "no such file"),
    ]
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    cases.append((cnn.path, tmp_path / "junk.npz", "cannot read it"))
    for i, (model, cal, expected) in enumerate(cases):
        out = tmp_path / f"out{i}"
        code = main(["convert", str(model), "--to", "tflite", "--out", str(out), "--quantize",
                     "int8", "--calibration", str(cal)])
        line = _error(capsys)
        assert code == 2 and expected in line, (cal.name, line)
        assert f"--calibration {cal}" in line or "--calibration" in line
        assert _left(out) == [], (cal.name, _left(out))


def _png(path: Path, pixels: np.ndarray) -> None:
    import tensorflow as tf

    path.write_bytes(tf.io.encode_png(pixels.astype(np.uint8)).numpy())


def test_bad_image_folders(cnn, fixture_models, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no images here")
    broken = tmp_path / "broken"
    broken.mkdir()
    _png(broken / "a.png", trained.calibration_set(1)[0])
    (broken / "b.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    plain = tmp_path / "plain"  # fine images, for a model that does not say its range
    plain.mkdir()
    _png(plain / "a.png", np.full((20, 20, 3), 100))
    bn = fixture_models.get("cnn_bn")
    multi = fixture_models.get("multi_io")
    cases = [(cnn.path, empty, "no images"), (cnn.path, broken, "cannot decode b.jpg"),
             (bn.path, plain, "--calibration-scale"), (multi.path, plain, "2 inputs")]
    for i, (model, folder, expected) in enumerate(cases):
        out = tmp_path / f"out{i}"
        assert _convert(model, out, "--quantize", "int8", "--calibration", str(folder)) == 2
        assert expected in _error(capsys), folder
        assert _left(out) == []
    assert _convert(cnn.path, tmp_path / "o", "--quantize", "float16",
                    "--calibration-scale", "0.5") == 2
    assert "folder of images" in _error(capsys)


def test_image_folder_calibration_resizes_and_scales_as_the_model_says(cnn, fixture_models,
                                                                       tmp_path, capsys):
    """48x48 images of the task, halved to the model's 24x24: the model's Rescaling(1/255)
    says it takes pixel values, so they are fed as they are; a model without one is told
    how by --calibration-scale."""
    import tensorflow as tf

    folder = tmp_path / "images" / "class_a"  # nested, as in class-per-folder datasets
    folder.mkdir(parents=True)
    for i, img in enumerate(trained.calibration_set(24)):
        _png(folder / f"{i:02d}.png", tf.image.resize(img, [48, 48]).numpy())
    out = tmp_path / "out"
    assert _convert(cnn.path, out, "--quantize", "int8", "--calibration",
                    str(tmp_path / "images")) == 0
    manifest = json.loads((out / "trained_cnn.manifest.json").read_text())
    cal = manifest["options"]["calibration"]
    assert cal["images"] == 24 and cal["resized_to"] == [24, 24] and cal["synthetic"] is False
    assert "Rescaling" in cal["scaling"] and "[0, 255]" in cal["scaling"]
    int8 = next(a for a in manifest["artifacts"] if a["path"] == "trained_cnn.int8.tflite")
    assert int8["check"]["status"] == "passed"
    assert "calibration data (24 samples" in int8["check"]["data"]
    bn = fixture_models.get("cnn_bn")
    for i, img in enumerate(trained.calibration_set(3)):
        _png(tmp_path / f"bn{i}.png", img)
    bn_images = tmp_path / "bn_images"
    bn_images.mkdir()
    for p in tmp_path.glob("bn*.png"):
        p.rename(bn_images / p.name)
    assert _convert(bn.path, tmp_path / "bn_out", "--quantize", "int8", "--calibration",
                    str(bn_images), "--calibration-scale", "0.00392157") in (0, 1)
    bn_manifest = json.loads((tmp_path / "bn_out" / "cnn_bn.manifest.json").read_text())
    assert "x*0.00392157" in bn_manifest["options"]["calibration"]["scaling"]


def test_synthetic_calibration_is_said_everywhere(cnn, tmp_path, capsys):
    out = tmp_path / "out"
    assert _convert(cnn.path, out, "--quantize", "int8", "--synthetic-calibration") == 0
    printed = capsys.readouterr().out
    assert "(synthetic data)" in printed
    manifest = json.loads((out / "trained_cnn.manifest.json").read_text())
    assert manifest["options"]["calibration"]["synthetic"] is True
    assert any("synthetic" in w for w in manifest["warnings"])
    int8 = next(a for a in manifest["artifacts"] if a["path"] == "trained_cnn.int8.tflite")
    assert "synthetic" in int8["check"]["data"]
    assert any("synthetic" in w for w in int8["warnings"])
    report = tmp_path / "report.json"
    assert main(["validate", str(cnn.path), str(out / "trained_cnn.int8.tflite"),
                 "--json", str(report)]) == 0
    d = json.loads(report.read_text())
    assert any("synthetic" in w for w in d["warnings"])
    assert d["results"][0]["tier"]["mode"] == "int8"


def test_int8_full_over_an_op_without_integer_kernel_fails_with_exit_3(tmp_path, capsys):
    """ELU has no integer kernel in TFLite: the converter would keep it in float inside an
    'integer-only' artifact without a word; the variant is refused, the float artifact
    is still written, and nothing else is left behind."""
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((8,), name="x")
    hidden = keras.layers.Dense(8, activation="elu", name="hidden")(inp)
    model = tmp_path / "elu.keras"
    keras.Model(inp, keras.layers.Dense(3, name="y")(hidden)).save(model)
    out = tmp_path / "out"
    assert _convert(model, out, "--quantize", "int8-full", "--synthetic-calibration") == 3
    err = capsys.readouterr().err
    assert "ELU" in err and "--quantize int8" in err and "Traceback" not in err
    assert _left(out) == ["elu.manifest.json", "elu.tflite"]
    record = json.loads((out / "elu.manifest.json").read_text())["artifacts"][1]
    assert record["ok"] is False and "no integer kernel for ELU" in record["error"]
    assert record["details"]["quantization"]["mode"] == "int8-full"
    # int8, with float fallback, converts the same model (and meets its tier)
    assert _convert(model, tmp_path / "fallback", "--quantize", "int8",
                    "--synthetic-calibration") == 0
    assert (tmp_path / "fallback" / "elu.int8.tflite").is_file()


def test_a_variant_short_of_its_tier_is_kept_aside_and_exits_1(cnn, tmp_path, capsys):
    """--tier replaces a default figure: an int8 variant (SQNR ~35 dB on the calibration
    data) held to 60 dB is not published; it is kept aside as .unverified and the
    float32 artifact is still written."""
    out = tmp_path / "out"
    cal = cnn.path.parent / cnn.extra["calibration"]
    assert _convert(cnn.path, out, "--quantize", "int8", "--calibration", str(cal),
                    "--tier", "int8=sqnr:60") == 1
    captured = capsys.readouterr()
    assert "UNVERIFIED" in captured.out + captured.err and "SQNR" in captured.err
    assert _left(out) == ["trained_cnn.int8.unverified.tflite", "trained_cnn.manifest.json",
                          "trained_cnn.tflite"]
    record = json.loads((out / "trained_cnn.manifest.json").read_text())["artifacts"][1]
    assert record["ok"] is False and record["check"]["tier"]["sqnr"] == 60.0
    assert "int8 tier" in record["error"]
    # the same run with the default tier publishes it (and drops the copy kept aside)
    assert _convert(cnn.path, out, "--quantize", "int8", "--calibration", str(cal)) == 0
    assert _left(out) == ["trained_cnn.int8.tflite", "trained_cnn.manifest.json",
                          "trained_cnn.tflite"]
    capsys.readouterr()
    assert main(["validate", str(cnn.path), str(out), "--tier", "int8=sqnr:60"]) == 1
    assert "SQNR" in capsys.readouterr().out
