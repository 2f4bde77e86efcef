"""``convert`` converts ONNX in a helper process beside the other formats: the artifacts
are those of a serial run; a helper that dies, or a job that fails unexpectedly, costs only
time (the route runs here); a ``ModelportError`` in the helper fails the route with its
message, as it would here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelport.conversion import convert
from modelport.core.errors import ConversionError
from tests.models import dense_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return dense_model(tmp_path_factory.mktemp("overlap") / "net.keras", 5, 7, 3, seed=31)


def _die(*args):  # runs in the helper (pickled by reference)
    os._exit(3)


def _refuse(*args):
    raise ConversionError("tf2onnx cannot express Frobnicate at opset 17")


def _processes(manifest, fmt):
    return [r.get("process") for r in manifest.artifact(fmt).routes]


def test_overlap_writes_what_a_serial_run_writes(model_file, tmp_path):
    serial = convert(model_file, tmp_path / "serial", overlap=False)
    both = convert(model_file, tmp_path / "overlap", overlap=True)
    assert serial.ok and both.ok
    assert _processes(both, "onnx") == ["helper"] and _processes(serial, "onnx") == [None]
    assert [a.format for a in both.artifacts] == [a.format for a in serial.artifacts]
    for fmt in ("onnx", "tflite"):  # the byte-deterministic formats
        assert both.artifact(fmt).sha256 == serial.artifact(fmt).sha256, fmt
    assert both.artifact("onnx").check["status"] == "passed"
    assert not [p for p in (tmp_path / "overlap").iterdir() if p.name.startswith(".")]


def test_a_dead_helper_costs_only_time(model_file, tmp_path, monkeypatch):
    import modelport.converters.onnx as onnx_module

    monkeypatch.setattr(onnx_module, "graph_file_to_onnx", _die)
    manifest = convert(model_file, tmp_path / "out", overlap=True)
    assert manifest.ok
    assert _processes(manifest, "onnx") == [None]  # converted here after all
    assert manifest.artifact("onnx").check["status"] == "passed"


def test_a_refusal_in_the_helper_fails_the_route_with_its_reason(model_file, tmp_path,
                                                                   monkeypatch):
    import modelport.converters.onnx as onnx_module

    monkeypatch.setattr(onnx_module, "graph_file_to_onnx", _refuse)
    manifest = convert(model_file, tmp_path / "out", overlap=True)
    onnx = manifest.artifact("onnx")
    assert not onnx.ok and "Frobnicate" in onnx.error
    assert onnx.routes[0]["outcome"] == "conversion failed"
    assert manifest.artifact("tflite").ok  # the other formats are not affected
    assert not (tmp_path / "out" / "net.onnx").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_no_helper_for_one_format_or_when_told(model_file, tmp_path, monkeypatch):
    import modelport.conversion as conversion

    started = []
    real = conversion.Helper
    monkeypatch.setattr(conversion, "Helper", lambda: started.append(1) or real())
    convert(model_file, tmp_path / "a", formats="onnx", overlap=True)
    convert(model_file, tmp_path / "b", formats="savedmodel,pb", overlap=True)
    convert(model_file, tmp_path / "c", overlap=False)
    convert(model_file, tmp_path / "e", formats="pb,onnx")  # off by default (slower on 2 cores)
    assert started == []
    convert(model_file, tmp_path / "d", formats="pb,onnx", overlap=True)
    assert started == [1]


def test_overlap_by_default_only_with_a_core_and_memory_to_spare(monkeypatch):
    from modelport.conversion import helper

    monkeypatch.setattr(helper.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(helper, "_available_memory", lambda: 3 << 30)
    assert helper.overlap_default(50 << 20)  # 2 GiB + 10 x 50 MiB fit in 3 GiB
    assert not helper.overlap_default(200 << 20)  # 2 GiB + 2 GiB do not
    monkeypatch.setattr(helper, "_available_memory", lambda: None)  # unknown: overlap
    assert helper.overlap_default(200 << 20)
    monkeypatch.setattr(helper.os, "cpu_count", lambda: 1)
    assert not helper.overlap_default(0)
    monkeypatch.setattr(helper.os, "cpu_count", lambda: 2)
    # a batch worker (a process some parent started) leaves the cores to its siblings
    monkeypatch.setattr(helper.multiprocessing, "parent_process", lambda: object())
    assert not helper.overlap_default(0)



def test_cli_overlap_asks_for_the_machine_dependent_rule():
    import argparse

    from modelport.commands import convert as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert "overlap" not in command.convert_options(parser.parse_args(["m.h5"]))
    # --overlap: a helper when the machine can hold one (helper.overlap_default)
    assert command.convert_options(parser.parse_args(["m.h5", "--overlap"]))["overlap"] is None
