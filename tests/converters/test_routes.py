"""``convert`` checks every candidate before it takes its final name: a route whose artifact
differs from the Keras model is rejected and the next route is tried; when every route
differs, nothing is left under the final name, the last candidate is kept aside as
``<stem>.unverified<suffix>`` and the CLI exits 1.

The mismatch is injected as a route that writes the real ONNX artifact and then scales
one weight by 1.02, the kind of error a faulty converter makes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from modelport import converters
from modelport.conversion import convert
from modelport.converters.base import Route
from modelport.core.atomic import PARTIAL_MARK
from modelport.core.errors import UserInputError
from tests.models import dense_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return dense_model(tmp_path_factory.mktemp("routes") / "net.h5", 6, 8, 3, seed=21)


def _scaled(real: Route, name: str, factor: float = 1.02,
            seen: list[Path] | None = None) -> Route:
    """``real``'s artifact with its largest weight scaled by ``factor``."""

    def write(dest: Path):
        import onnx
        from onnx import numpy_helper

        if seen is not None:
            seen.append(dest)
        record = real.write(dest)
        proto = onnx.load(str(dest))
        biggest = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
        scaled = numpy_helper.to_array(biggest) * np.float32(factor)
        biggest.CopyFrom(numpy_helper.from_array(scaled.astype(np.float32), biggest.name))
        onnx.save(proto, str(dest))
        return record

    return Route(name, f"the real artifact with one weight scaled by {factor}", write)


def _patch_routes(monkeypatch, bad: Callable[[Route], list[Route]], keep_real: bool) -> None:
    """The ONNX routes become ``bad(real_first_route)``, then the real ones if asked."""
    from modelport.converters import onnx as onnx_fmt

    real = onnx_fmt.routes

    def routes(source, serving, options):
        found = real(source, serving, options)
        return bad(found[0]) + (found if keep_real else [])

    monkeypatch.setattr(onnx_fmt, "routes", routes)


def _matches_keras(model_file: Path, artifact: Path) -> float:
    import keras

    x = np.random.default_rng(3).standard_normal((5, 6)).astype("float32")
    want = keras.models.load_model(model_file, compile=False).predict(x, verbose=0)
    got = converters.get("onnx").load(artifact).run({"x": x})["y"]
    return float(np.max(np.abs(got - want)))


def test_a_mismatching_route_is_rejected_and_the_next_one_used(model_file, tmp_path,
                                                                monkeypatch):
    seen: list[Path] = []
    _patch_routes(monkeypatch, lambda r: [_scaled(r, "scaled", seen=seen)], keep_real=True)
    out = tmp_path / "out"
    manifest = convert(model_file, out, formats="onnx")
    record = manifest.artifact("onnx")
    assert record.ok and record.route == "tf2onnx"
    first, used = record.routes
    assert first["name"] == "scaled" and first["outcome"] == "check failed"
    assert "output 'y'" in first["reason"] and "max abs error" in first["reason"]
    assert used["outcome"] == "used"
    assert record.check["status"] == "passed" and record.check["samples"] == 2
    assert record.check["rule"]
    # the bad candidate was written in a hidden staging directory, never at the final name
    assert seen[0].parent.parent == out and PARTIAL_MARK in seen[0].parent.name
    assert _matches_keras(model_file, out / "net.onnx") < 1e-4
    assert sorted(p.name for p in out.iterdir()) == ["net.manifest.json", "net.onnx"]


def test_without_the_check_the_first_route_is_published(model_file, tmp_path, monkeypatch):
    # the same injected fault goes through with --no-check: the check is what caught it
    _patch_routes(monkeypatch, lambda r: [_scaled(r, "scaled")], keep_real=True)
    manifest = convert(model_file, tmp_path, formats="onnx", check=False)
    record = manifest.artifact("onnx")
    assert record.ok and record.route == "scaled"
    assert record.check == {"status": "skipped", "reason": "--no-check"}
    assert _matches_keras(model_file, tmp_path / "net.onnx") > 1e-3
    saved = json.loads((tmp_path / "net.manifest.json").read_text())
    assert saved["options"]["check"] is False


def test_every_route_mismatching_exits_1_and_keeps_the_candidate_aside(model_file, tmp_path,
                                                                       monkeypatch, capsys):
    from modelport.cli import main

    out = tmp_path / "out"
    assert main(["convert", str(model_file), "--out", str(out), "--to", "onnx"]) == 0
    assert (out / "net.onnx").exists()  # a good artifact from an earlier run
    _patch_routes(monkeypatch, lambda r: [_scaled(r, "scaled"), _scaled(r, "worse", 1.5)],
                  keep_real=False)
    capsys.readouterr()
    rc = main(["convert", str(model_file), "--out", str(out), "--to", "onnx"])
    err = capsys.readouterr().err
    assert rc == 1
    assert not (out / "net.onnx").exists()  # nothing passes for good under the final name
    assert (out / "net.unverified.onnx").is_file()
    line = next(l for l in err.splitlines() if "onnx" in l and "UNVERIFIED" in l)
    assert "output 'y'" in line and "max abs error" in line and "cosine" in line
    assert "net.unverified.onnx" in line
    record = json.loads((out / "net.manifest.json").read_text())["artifacts"][0]
    assert not record["ok"] and record["check"]["status"] == "failed"
    assert [r["outcome"] for r in record["routes"]] == ["check failed", "check failed"]
    assert record["route"] == "worse"  # the last candidate is the one kept
    assert _matches_keras(model_file, out / "net.unverified.onnx") > 0.1
    assert [p.name for p in out.iterdir() if PARTIAL_MARK in p.name] == []
    # validate OUT/ does not take the candidate kept aside for a result of the conversion:
    # it says why there is no onnx artifact; given explicitly, the candidate fails
    from modelport.validators.validation import validate

    with pytest.raises(UserInputError, match="kept aside as net.unverified.onnx"):
        validate(model_file, [out])
    explicit = validate(model_file, [out / "net.unverified.onnx"])
    assert not explicit.passed and explicit.results[0].format == "onnx"
    # a later good run publishes again and removes the stale candidate
    monkeypatch.undo()
    assert main(["convert", str(model_file), "--out", str(out), "--to", "onnx"]) == 0
    assert (out / "net.onnx").exists() and not (out / "net.unverified.onnx").exists()


def test_a_failed_conversion_outranks_a_mismatch(model_file, tmp_path, monkeypatch):
    from modelport.cli import main
    from modelport.converters import frozen_pb

    monkeypatch.setattr(frozen_pb, "MAX_BYTES", 100)  # pb fails to convert
    _patch_routes(monkeypatch, lambda r: [_scaled(r, "scaled")], keep_real=False)
    assert main(["convert", str(model_file), "--out", str(tmp_path), "--to", "pb,onnx"]) == 3
    assert (tmp_path / "net.unverified.onnx").exists()


def test_routes_failing_to_convert_are_listed_once(model_file, tmp_path, monkeypatch):
    def broken(dest: Path):
        raise RuntimeError("cannot lower op Foo")

    _patch_routes(monkeypatch, lambda r: [Route("a", "first", broken),
                                          Route("b", "second", broken)], keep_real=False)
    record = convert(model_file, tmp_path, formats="onnx").artifact("onnx")
    assert not record.ok and not record.unverified
    assert "a: RuntimeError: cannot lower op Foo | b: same as a" in record.error
    assert not (tmp_path / "net.onnx").exists() and not (tmp_path / "net.unverified.onnx").exists()


def test_a_format_that_cannot_list_its_routes_fails_alone(model_file, tmp_path, monkeypatch):
    from modelport.converters import onnx as onnx_fmt

    def routes(source, serving, options):
        raise ValueError("no way to plan")

    monkeypatch.setattr(onnx_fmt, "routes", routes)
    manifest = convert(model_file, tmp_path, formats="pb,onnx")
    assert manifest.artifact("pb").ok
    record = manifest.artifact("onnx")
    assert not record.ok and "ValueError: no way to plan" in record.error
