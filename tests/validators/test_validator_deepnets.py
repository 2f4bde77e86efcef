"""A deep net with realistic activations (EfficientNetB0, random weights, BatchNorm
statistics from one training-mode pass over pixels): its ports pass by default on inputs
in its declared domain, and on out-of-domain inputs the report explains why no port can
match it closely (the layers that amplify float32 rounding)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def effnet(tmp_path_factory: pytest.TempPathFactory, calibrate):
    import keras

    from modelport.conversion import convert
    from modelport.loading.source import load

    root = tmp_path_factory.mktemp("effnet")
    keras.utils.set_random_seed(1)
    model = keras.applications.EfficientNetB0(weights=None, input_shape=(64, 64, 3),
                                              classes=10, classifier_activation=None)
    calibrate(model, np.random.default_rng(0).uniform(0, 255, (16, 64, 64, 3))
                        .astype("float32"))
    model.save(root / "effnet.keras")
    source = load(root / "effnet.keras")
    manifest = convert(source, root / "out", formats="pb,onnx")
    assert manifest.ok, [a.error for a in manifest.artifacts]
    return source, root / "out"


def test_ports_pass_on_inputs_in_the_declared_domain(effnet):
    from modelport.validators.validation import validate

    source, out = effnet
    report = validate(source, out)
    assert report.passed, [(r.format, r.diagnosis) for r in report.results]
    (name,) = report.inputs
    assert report.inputs[name]["distribution"] == "uniform [0, 255]"
    assert not any("ill-conditioned" in w for w in report.warnings)
    for r in report.results:
        assert r.outputs[0].noise_ratio < 4, (r.format, r.outputs[0].noise_ratio)


def test_out_of_domain_inputs_are_explained(effnet):
    from modelport.validators.validation import validate

    source, out = effnet
    x = np.random.default_rng(0).standard_normal((4, 64, 64, 3)).astype("float32")
    report = validate(source, out, inputs={source.input_names[0]: x})
    note = next(w for w in report.warnings if "ill-conditioned" in w)
    # the squeeze-excitation gates (a sigmoid of activations in the thousands) amplify
    assert "se_expand' (Conv2D, sigmoid)" in note, note
    assert "outside the model's domain" in note
