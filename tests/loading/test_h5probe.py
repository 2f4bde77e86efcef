"""The child-process HDF5 probe: the facts it reports, and how each way the child can fail
becomes a ModelFileError in the parent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from modelport.core.errors import ModelFileError
from modelport.loading import h5probe


@pytest.fixture(scope="module")
def h5(tmp_path_factory) -> Path:
    import h5py

    path = tmp_path_factory.mktemp("probe") / "m.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": []})
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        g = f.create_group("model_weights")
        g.attrs["layer_names0"] = [b"a", b"b"]  # the split form Keras writes for long lists
        g.attrs["layer_names1"] = [b"c"]
    return path


def test_probe_reports_the_files_facts(h5):
    facts = h5probe.probe_in_child(h5)
    assert facts["keras_version"] == "2.2.4" and facts["backend"] == "tensorflow"
    assert json.loads(facts["model_config"])["class_name"] == "Sequential"
    assert facts["model_weights"] and not facts["layer_names"]  # root has none
    assert "error" not in facts


def test_probe_refuses_unsafe_content_itself(h5, tmp_path):
    import h5py

    p = tmp_path / "linked.h5"
    p.write_bytes(h5.read_bytes())
    with h5py.File(p, "r+") as f:
        f["model_weights/x"] = h5py.ExternalLink("/etc/passwd", "/")
    facts = h5probe.probe_in_child(p)
    assert facts["error"] == "unsafe" and "external link" in facts["detail"]


def test_unreadable_file_is_reported_not_raised(tmp_path):
    p = tmp_path / "cut.h5"
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    assert h5probe.probe_in_child(p)["error"] == "open"


@pytest.mark.parametrize("result, message", [
    (subprocess.CompletedProcess([], -9, "", ""), "crashed reading this file \\(signal 9\\)"),
    (subprocess.CompletedProcess([], 1, "", "boom"), "crashed reading this file \\(exit 1\\)"),
    (subprocess.CompletedProcess([], 0, "not json", ""), "gave no answer"),
])
def test_a_failing_child_is_a_damaged_file(h5, monkeypatch, result, message):
    monkeypatch.setattr(h5probe.subprocess, "run", lambda *a, **k: result)
    with pytest.raises(ModelFileError, match=message):
        h5probe.probe_in_child(h5)


def test_a_hanging_child_is_a_damaged_file(h5, monkeypatch):
    def hang(cmd, *a, **k):
        raise subprocess.TimeoutExpired(cmd, k.get("timeout"))

    monkeypatch.setattr(h5probe.subprocess, "run", hang)
    with pytest.raises(ModelFileError, match="did not finish"):
        h5probe.probe_in_child(h5)
