"""The validator against artifacts broken on purpose: each fault must be caught, named and
explained; a correct set must pass."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from modelport import converters
from modelport.core.errors import UserInputError
from modelport.validators import faults
from modelport.validators.compare import NOISE_MULTIPLE
from modelport.validators.inputs import generate_inputs, layout_probe
from modelport.validators.validation import validate

FORMATS = converters.names()


def _only(report):
    assert len(report.results) == 1, [r.artifact for r in report.results]
    return report.results[0]


def test_correct_set_passes(models):
    sym = models.get("sym")
    report = validate(sym.source, sym.out)
    assert sorted(r.format for r in report.results) == sorted(FORMATS)
    for r in report.results:
        assert r.passed, (r.format, r.diagnosis)
        assert [o.name for o in r.outputs] == ["probs", "aux"]
        assert r.max_abs_error < 1e-4 and r.cosine > 0.99999 and r.top1_agreement == 1.0
    assert report.passed and report.exit_code == 0
    # the symmetric 8x8x8 input: a layout bug would not show in shapes, and the report says so
    assert any("symmetric" in w and "unverified" in w for w in report.warnings)
    d = json.loads(json.dumps(report.to_dict()))
    assert d["passed"] is True and len(d["results"]) == 4


@pytest.mark.parametrize("fmt,inject", [
    ("onnx", faults.onnx_scale_weights),
    ("tflite", faults.tflite_scale_weights),
    ("pb", faults.pb_scale_weights),
])
def test_weights_perturbed_by_two_percent_in_one_format(models, tmp_path, fmt, inject):
    sym = models.get("sym")
    out = tmp_path / "out"
    shutil.copytree(sym.out, out)
    bad = converters.artifact_path(out, sym.model.stem, fmt)
    inject(sym.artifact(fmt), bad, 1.02)  # replaces the artifact the manifest lists
    report = validate(sym.source, out)
    verdicts = {r.format: r.passed for r in report.results}
    assert verdicts == {f: f != fmt for f in FORMATS}
    r = report.result(fmt)
    assert "outside atol" in r.diagnosis and "expects" not in r.diagnosis
    assert r.max_abs_error > 1e-3 and r.min_passing_atol > 1e-4
    assert report.exit_code == 1


MIDDLE = {"savedmodel": faults.savedmodel_scale_middle_layer,
          "pb": faults.pb_scale_middle_layer,
          "tflite": faults.tflite_scale_middle_layer,
          "onnx": faults.onnx_scale_middle_layer}


def test_deep_pixel_model_passes_every_format_with_the_measured_rule(models):
    deep = models.get("deep")
    report = validate(deep.source, deep.out)
    assert report.passed, [(r.format, r.diagnosis) for r in report.results]
    assert report.inputs["pixels"]["distribution"] == "uniform [0, 255]"
    assert "Rescaling 'scale'" in report.inputs["pixels"]["why"]
    floor = report.noise_floors["logits"]
    assert floor and 0 < floor < 1e-3
    for r in report.results:
        (o,) = r.outputs
        assert o.rule == "measured" and o.noise_floor == floor
        if r.format != "savedmodel":  # the same kernels as Keras: no rounding difference
            assert o.noise_ratio is not None and o.noise_ratio < NOISE_MULTIPLE, r.format


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_middle_layer_scaled_by_two_percent_fails_that_format_only(models, tmp_path, fmt):
    deep = models.get("deep")
    out = tmp_path / "out"
    shutil.copytree(deep.out, out)
    bad = converters.artifact_path(out, deep.model.stem, fmt)
    if bad.is_dir():
        shutil.rmtree(bad)
    MIDDLE[fmt](deep.artifact(fmt), bad, 1.02)
    report = validate(deep.source, out)
    verdicts = {r.format: r.passed for r in report.results}
    assert verdicts == {f: f != fmt for f in FORMATS}, [r.diagnosis for r in report.results]
    (o,) = report.result(fmt).outputs
    assert o.noise_ratio > 10 * NOISE_MULTIPLE, o.noise_ratio  # far outside the float noise
    assert "noise floors" in report.result(fmt).diagnosis


@pytest.mark.parametrize("output", ["probs", "aux"])
def test_nan_output_fails_and_is_named(models, tmp_path, output):
    sym = models.get("sym")
    bad = faults.onnx_nan_output(sym.artifact("onnx"), tmp_path / "nan.onnx", output)
    r = _only(validate(sym.source, bad, allow_degenerate=True, atol=1e3, rtol=1e3))
    assert not r.passed
    assert f"output {output!r} contains NaN" in r.diagnosis
    assert r.to_dict()["max_abs_error"] is None  # strict JSON, no NaN literal


def test_symmetric_nchw_onnx_fails_and_names_nchw(models, tmp_path):
    sym = models.get("sym")
    bad = faults.onnx_expect_layout(sym.artifact("onnx"), tmp_path / "nchw.onnx",
                                    actual="NHWC", expected="NCHW")
    report = validate(sym.source, bad)
    r = _only(report)
    assert not r.passed
    assert r.diagnosis.startswith("artifact expects NCHW input but the model is NHWC")
    assert r.layout == {"image": "NHWC"}  # judged in the declared layout only
    assert any("no manifest" in w for w in report.warnings)


def test_declared_nchw_layout_is_fed_transposed(models, tmp_path, with_manifest):
    sym = models.get("sym")
    nchw = faults.onnx_expect_layout(sym.artifact("onnx"), tmp_path / "nchw.onnx")
    # the same NCHW artifact passes once its manifest declares the layout...
    good = with_manifest(sym, tmp_path / "declared", "onnx", nchw, layout={"image": "NCHW"})
    r = _only(validate(sym.source, good))
    assert r.passed, r.diagnosis
    assert r.layout == {"image": "NCHW"}
    # ...and a plain NHWC artifact whose manifest wrongly declares NCHW fails, explained
    lying = with_manifest(sym, tmp_path / "lying", "onnx", layout={"image": "NCHW"})
    r = _only(validate(sym.source, lying))
    assert not r.passed
    assert "artifact expects NHWC input but its manifest declares NCHW" in r.diagnosis


def test_same_arrays_reach_every_format(models, tmp_path, with_manifest, monkeypatch):
    """Every runner receives the very same arrays; only a declared layout transposes them."""
    import modelport.validators.check as check

    sym = models.get("sym")
    nchw = faults.onnx_expect_layout(sym.artifact("onnx"), tmp_path / "nchw.onnx")
    declared = with_manifest(sym, tmp_path / "declared", "onnx", nchw, layout={"image": "NCHW"})
    seen: dict[str, list[dict[str, np.ndarray]]] = {}
    real_open = check.open_runner

    def recording_open(path, fmt):
        runner = real_open(path, fmt)
        real_run = runner.run

        def run(feeds):
            seen.setdefault(path, []).append({k: np.array(v) for k, v in feeds.items()})
            return real_run(feeds)

        runner.run = run
        return runner

    monkeypatch.setattr(check, "open_runner", recording_open)
    report = validate(sym.source, [sym.out, declared], samples=3, seed=9)
    assert report.passed, [(r.artifact, r.diagnosis) for r in report.results]
    want = generate_inputs(sym.source.inputs, 3, 9, sym.source.embedding_vocab, None,
                           sym.source.layout)["image"]
    want = np.concatenate([want, layout_probe(sym.source.inputs, {"image": want})["image"]])
    assert len(seen) == 5
    for path, calls in seen.items():
        fed = np.concatenate([c["image"] for c in calls])
        expected = want.transpose(0, 3, 1, 2) if path.startswith(str(declared)) else want
        np.testing.assert_array_equal(fed, expected, err_msg=path)


def test_degenerate_model_fails_unless_allowed(models):
    deg = models.get("deg")
    report = validate(deg.source, deg.out)
    r = _only(report)
    assert not r.passed and r.max_abs_error < 1e-6  # the artifact matches, yet proves nothing
    assert "degenerate: outputs do not depend on the inputs" in r.diagnosis
    # the model itself is constant (a zero kernel): no input can help, and it says which layer
    assert "layer 'score' (Dense) has an all-zero kernel" in r.diagnosis
    assert "no input can show parity" in r.diagnosis and "--allow-degenerate" in r.diagnosis
    assert report.degenerate == ["score"]
    assert any("do not vary with the inputs on every input distribution tried" in w
               for w in report.warnings), report.warnings
    allowed = validate(deg.source, deg.out, allow_degenerate=True)
    assert allowed.passed
    assert any("degenerate" in w for w in allowed.warnings)


def test_outputs_reordered_but_named_pass(models, tmp_path):
    sym = models.get("sym")
    reordered = faults.onnx_reorder_outputs(sym.artifact("onnx"), tmp_path / "reordered.onnx")
    runner = converters.get("onnx").load(reordered)
    assert [t.name for t in runner.outputs] == ["aux", "probs"]
    tfl = converters.get("tflite").load(sym.artifact("tflite"))
    assert [t.name for t in tfl.outputs] != ["probs", "aux"], "TFLite kept the order"
    # both outputs have the same shape: pairing by position would compare probs with aux
    report = validate(sym.source, [reordered, sym.artifact("tflite")])
    assert report.passed, [r.diagnosis for r in report.results]
    assert not any("position" in w for w in report.warnings)


def test_outputs_bound_to_swapped_names_fail(models, tmp_path):
    sym = models.get("sym")
    bad = faults.onnx_swap_output_names(sym.artifact("onnx"), tmp_path / "swapped.onnx",
                                        "probs", "aux")
    r = _only(validate(sym.source, bad))
    assert not r.passed
    assert "output 'probs' holds the values of the model's 'aux'" in r.diagnosis


def test_unnamed_outputs_are_matched_by_position_with_a_warning(models, tmp_path):
    import onnx

    from modelport.converters.onnx import rename_values

    sym = models.get("sym")
    model = onnx.load(str(sym.artifact("onnx")))
    rename_values(model.graph, {"probs": "Identity:0", "aux": "Identity_1:0"})
    onnx.save(model, str(tmp_path / "unnamed.onnx"))
    report = validate(sym.source, tmp_path / "unnamed.onnx")
    assert _only(report).passed
    assert any("matched by position" in w for w in report.warnings)


def test_channels_first_model_checks_declared_shapes(models, tmp_path, with_manifest):
    cf = models.get("cf")
    assert cf.source.layout == {"pixels": "NCHW"}
    assert validate(cf.source, cf.out).passed
    nhwc = faults.onnx_expect_layout(cf.artifact("onnx"), tmp_path / "nhwc.onnx",
                                     actual="NCHW", expected="NHWC")
    r = _only(validate(cf.source, nhwc))
    assert not r.passed
    assert "artifact expects NHWC input but the model is NCHW" in r.diagnosis
    declared = with_manifest(cf, tmp_path / "declared", "onnx", nhwc,
                             layout={"pixels": "NHWC"}, input_shapes={"pixels": [None, 10, 6, 3]})
    r = _only(validate(cf.source, declared))
    assert r.passed and not r.warnings
    # a manifest whose recorded shape contradicts its declared layout is reported
    stale = with_manifest(cf, tmp_path / "stale", "onnx", nhwc, layout={"pixels": "NHWC"})
    r = _only(validate(cf.source, stale))
    assert r.passed
    assert any("the manifest declares shape [?,3,10,6]" in w and "NCHW shape" in w
               for w in r.warnings), r.warnings


def test_layout_that_cannot_be_seen_is_reported_unverified(models):
    inv = models.get("inv")
    report = validate(inv.source, inv.out)
    assert report.passed
    assert any("'cube': layout unverified" in w and "does not change" in w
               for w in report.warnings)
    sym = models.get("sym")
    assert not any("does not change" in w for w in validate(sym.source, sym.artifact("onnx")).warnings)


def test_broken_artifact_file_is_a_failure_not_a_crash(models, tmp_path):
    sym = models.get("sym")
    (tmp_path / "junk.onnx").write_bytes(b"\x00not an onnx model")
    r = _only(validate(sym.source, tmp_path / "junk.onnx"))
    assert not r.passed and r.diagnosis.startswith("cannot load it")


def test_unusable_input_raises(models, tmp_path):
    sym = models.get("sym")
    with pytest.raises(UserInputError, match="no such file"):
        validate(sym.source, tmp_path / "absent.onnx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="no artifacts"):
        validate(sym.source, tmp_path / "empty")
    (tmp_path / "model.txt").write_text("x")
    with pytest.raises(UserInputError, match="not an artifact"):
        validate(sym.source, tmp_path / "model.txt")
    np.savez(tmp_path / "wrong.npz", image=np.ones((2, 8, 8, 3), np.float32))
    with pytest.raises(UserInputError, match="shape"):
        validate(sym.source, sym.artifact("onnx"), inputs=tmp_path / "wrong.npz")


def test_saved_inputs_replay_the_same_run(models, tmp_path):
    sym = models.get("sym")
    first = validate(sym.source, sym.artifact("onnx"), samples=3, seed=4,
                     save_inputs=tmp_path / "inputs.npz")
    again = validate(sym.source, sym.artifact("onnx"), inputs=tmp_path / "inputs.npz")
    a, b = first.results[0].to_dict(), again.results[0].to_dict()
    assert a["max_abs_error"] == b["max_abs_error"] and a["outputs"] == b["outputs"]
    assert again.samples == 3 and again.seed is None


def test_fixed_batch_artifact_runs_sample_by_sample(models, tmp_path):
    import onnx

    sym = models.get("sym")
    model = onnx.load(str(sym.artifact("onnx")))
    for vi in list(model.graph.input) + list(model.graph.output):
        dim = vi.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_param")
        dim.dim_value = 1
    onnx.save(model, str(tmp_path / "batch1.onnx"))
    runner = converters.get("onnx").load(tmp_path / "batch1.onnx")
    with pytest.raises(Exception):  # the runtime itself refuses a batch of 5
        runner.run({"image": np.ones((5, 8, 8, 8), np.float32)})
    r = _only(validate(sym.source, tmp_path / "batch1.onnx", samples=4))
    assert r.passed, r.diagnosis
    assert r.outputs[0].shape[0] == 5  # 4 samples + the probe, one at a time


def test_per_format_tolerances(models, tmp_path):
    sym = models.get("sym")
    bad = faults.onnx_scale_weights(sym.artifact("onnx"), tmp_path / "scaled.onnx", 1.02)
    need = _only(validate(sym.source, bad)).min_passing_atol
    assert need > 1e-4
    assert _only(validate(sym.source, bad, tolerances={"onnx": (need * 1.5, None)})).passed
    assert _only(validate(sym.source, bad, tolerances={"onnx": {"atol": need * 1.5}})).passed
    assert not _only(validate(sym.source, bad, tolerances={"tflite": need * 1.5})).passed


def test_a_manifest_names_its_artifacts(models):
    sym = models.get("sym")
    report = validate(sym.source, sym.manifest)
    assert sorted(r.format for r in report.results) == sorted(FORMATS)
    assert report.passed and not any("no manifest" in w for w in report.warnings)


def test_output_layouts_are_diagnosed_and_declared_ones_honoured(models, tmp_path, with_manifest):
    seg = models.get("seg")
    assert validate(seg.source, seg.out).passed
    out_nchw = faults.onnx_output_layout(seg.artifact("onnx"), tmp_path / "out_nchw.onnx")
    r = _only(validate(seg.source, out_nchw))
    assert not r.passed
    assert "artifact returns output 'mask' in NCHW but the model's is NHWC" in r.diagnosis
    # NCHW on both sides: one diagnosis names both
    both = faults.onnx_expect_layout(out_nchw, tmp_path / "both.onnx")
    r = _only(validate(seg.source, both))
    assert not r.passed
    assert "artifact expects NCHW input but the model is NHWC" in r.diagnosis
    assert "returns output 'mask' in NCHW" in r.diagnosis
    # declared in the manifest, the same artifact is fed and read in NCHW, and passes
    declared = with_manifest(seg, tmp_path / "declared", "onnx", both,
                             layout={"photo": "NCHW", "mask": "NCHW"},
                             input_shapes={"photo": [None, 3, 5, 7]})
    r = _only(validate(seg.source, declared))
    assert r.passed, r.diagnosis


def test_embedding_inputs_get_ids_inside_the_vocabulary(models, tmp_path):
    emb = models.get("emb")
    report = validate(emb.source, emb.out, samples=8, save_inputs=tmp_path / "in.npz")
    assert report.passed, [r.diagnosis for r in report.results]
    ids = np.load(tmp_path / "in.npz")["words"]
    assert ids.dtype == np.float32 and np.all(ids == np.round(ids))
    assert ids.min() >= 0 and ids.max() < 30 and np.unique(ids).size > 5
    assert report.inputs["words"]["distribution"] == "integers [0, 30)"


def test_user_ids_stored_as_floats_keep_their_probe_in_the_vocabulary_and_their_floor(
        models, monkeypatch):
    """Ids given by the user as floats: the layout probe row is drawn from the vocabulary,
    and the noise floor is not blown up by perturbing ids (517 * (1 - 1e-7) -> id 516)."""
    import modelport.validators.feeds as feeds_module

    emb = models.get("emb")
    seen = {}
    real = feeds_module.run_reference

    def spy(predict, fed, names):
        seen.update(fed)
        return real(predict, fed, names)

    monkeypatch.setattr(feeds_module, "run_reference", spy)
    ids = np.random.default_rng(2).integers(0, 30, (6, 5)).astype(np.float32)
    report = validate(emb.source, emb.out, inputs={"words": ids})
    assert report.passed, [r.diagnosis for r in report.results]
    probe = seen["words"][-1]
    assert np.all(probe == np.round(probe)) and probe.min() >= 0 and probe.max() < 30
    # a probability output: its floor is a few float32 roundings, not an id's worth
    assert report.noise_floors["label"] < 1e-5
