"""``python -m modelport.fixtures.demo OUTDIR`` converts the siamese .h5 to all four formats."""

from __future__ import annotations

from pathlib import Path

from modelport.fixtures import demo
from modelport.core.manifest import read_manifest

ARTIFACTS = ("siamese.savedmodel", "siamese.pb", "siamese.tflite", "siamese.onnx")


def test_demo_writes_four_artifacts_and_lists_them(tmp_path: Path, capsys) -> None:
    rc = demo.main([str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert (tmp_path / "siamese.h5").is_file() and (tmp_path / "siamese_objects.py").is_file()
    assert (tmp_path / "out" / "siamese.savedmodel" / "saved_model.pb").is_file()
    for name in ARTIFACTS[1:]:
        assert (tmp_path / "out" / name).is_file() and (tmp_path / "out" / name).stat().st_size
    table = out.split("manifest:")[0]
    for name in ARTIFACTS:
        assert name in table, f"{name} missing from the artifacts table:\n{out}"
    # the per-artifact lines after the table name the Keras inputs and output
    siamese = out.split("manifest:")[1].split("$ modelport")[0]
    listing = [line for line in siamese.splitlines()
               if line.startswith(("savedmodel", "pb", "tflite", "onnx"))]
    assert len(listing) == 4, out
    for line in listing:
        assert "input_a" in line and "input_b" in line and "distance" in line, line
    manifest = read_manifest(tmp_path / "out" / "siamese.manifest.json")
    assert manifest.ok and [a.format for a in manifest.artifacts] == [
        "savedmodel", "pb", "tflite", "onnx"]
    # it ends with the mobile variants of the trained CNN: size, latency, accuracy
    mobile = out.split("mobile variants of")[1].splitlines()
    rows = {tuple(line.split()[:2]): line.split() for line in mobile
            if line.startswith(("tflite", "onnx", "keras"))}
    assert set(rows) == {("keras", "fp32")} | {
        (f, v) for f in ("tflite", "onnx") for v in ("fp32", "float16", "dynamic", "int8")}
    int8 = rows[("tflite", "int8")]
    assert int(int8[4].rstrip("%")) <= 30  # size, % of the float32 file
    assert float(int8[8].rstrip("%")) >= 98.0  # top-1 agreement with Keras, held-out set


def test_demo_propagates_the_cli_exit_code(tmp_path: Path, monkeypatch, capsys) -> None:
    import modelport.cli

    seen = []
    monkeypatch.setattr(modelport.cli, "main", lambda argv: seen.append(argv) or 3)
    assert demo.main([str(tmp_path)]) == 3
    assert seen and seen[0][:2] == ["convert", str(tmp_path / "siamese.h5")]
    assert "--custom-objects" in seen[0]
    capsys.readouterr()
