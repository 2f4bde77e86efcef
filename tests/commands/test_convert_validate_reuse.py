"""``modelport convert --validate`` loads the model file once: validate reuses the model
convert loaded (and the manifest still records the load's cost)."""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from modelport.cli import main
from tests.models import dense_model


def test_convert_validate_loads_the_file_once(tmp_path, monkeypatch, capsys):
    import modelport.loading.source as source_module

    model = dense_model(tmp_path / "net.keras", 4, 6, 2, seed=41)
    loads = []
    real = source_module._load
    monkeypatch.setattr(source_module, "_load",
                        lambda *a, **kw: (loads.append(a[0]), real(*a, **kw))[1])
    code = main(["convert", str(model), "--to", "onnx,tflite", "--out", str(tmp_path / "o"),
                 "--validate"])
    assert code == 0
    assert "PASS" in capsys.readouterr().out
    assert len(loads) == 1
    manifest = json.loads((tmp_path / "o" / "net.manifest.json").read_text())
    assert manifest["source"]["load_seconds"] > 0
    # without --validate nothing else changes: one load too
    assert main(["convert", str(model), "--to", "onnx", "--out", str(tmp_path / "p")]) == 0
    assert len(loads) == 2
