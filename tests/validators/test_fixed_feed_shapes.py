"""``fixed_feed_shapes``: what artifacts converted with ``--input-shape`` fix is fed by the
validator, in the model's layout; artifacts that disagree, or a ``--shape`` that contradicts
them, are one-line errors."""

from __future__ import annotations

import pytest

from modelport.core.errors import UserInputError
from modelport.core.records import TensorInfo
from modelport.validators.artifacts import fixed_feed_shapes

MODEL = [TensorInfo("image", [None, 3, None, None], "float32"),
         TensorInfo("meta", [None, 4], "float32")]
NCHW = {"image": "NCHW", "meta": "none"}


def _artifact(shape, layout="NHWC"):
    return ("a.tflite", [TensorInfo("image", shape, "float32"),
                         TensorInfo("meta", [1, 4], "float32")], {"image": layout})


def test_fixed_dimensions_come_back_in_the_model_layout():
    assert fixed_feed_shapes(MODEL, NCHW, [_artifact([1, 24, 16, 3])]) == {
        "image": [None, None, 24, 16]}  # the channels the model fixes are its own


def test_open_artifacts_fix_nothing():
    assert fixed_feed_shapes(MODEL, NCHW, [_artifact([None, None, None, 3])]) == {}


def test_artifacts_that_disagree_are_refused():
    with pytest.raises(UserInputError, match=r"a.tflite and b.onnx fix dimension 2 of input "
                                             r"'image' differently \(24 and 32\)"):
        fixed_feed_shapes(MODEL, NCHW, [_artifact([1, 24, 16, 3]),
                                        ("b.onnx", [TensorInfo("image", [1, 3, 32, 16],
                                                               "float32")], {"image": "NCHW"})])


def test_user_shape_fills_in_and_must_agree():
    got = fixed_feed_shapes(MODEL, NCHW, [_artifact([1, 24, None, 3])], {"image": [3, 24, 40]})
    assert got == {"image": [None, 3, 24, 40]}
    with pytest.raises(UserInputError, match="contradicts the artifacts"):
        fixed_feed_shapes(MODEL, NCHW, [_artifact([1, 24, 16, 3])], {"image": [1, 3, 30, 16]})
