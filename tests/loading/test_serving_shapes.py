"""``--input-shape``: parsing, and the checks against the model's inputs that make a bad
shape a one-line error before anything is traced or written."""

from __future__ import annotations

import pytest

from modelport.core.errors import UserInputError
from modelport.core.records import TensorInfo
from modelport.loading.serving import check_input_shapes, parse_input_shapes

INPUTS = [TensorInfo("image", [None, None, None, 3], "float32"),
          TensorInfo("meta", [None, 8], "float32")]


def test_parse_accepts_lists_dicts_and_open_dimensions():
    assert parse_input_shapes(["image=1,224,224,3", "meta=?,8"]) == {
        "image": [1, 224, 224, 3], "meta": [None, 8]}
    assert parse_input_shapes({"image": [2, None, -1, 3]}) == {"image": [2, None, None, 3]}
    assert parse_input_shapes({"image": "1x64x48x3"}) == {"image": [1, 64, 48, 3]}
    assert parse_input_shapes(None) == {}


@pytest.mark.parametrize("item", ["image", "image=", "=1,2", "image=1,a,3", "image=0,4,4,3"])
def test_parse_refuses_malformed_items(item):
    with pytest.raises(UserInputError, match="expected NAME=D1,D2"):
        parse_input_shapes([item])


def test_check_keeps_the_given_dimensions():
    assert check_input_shapes(INPUTS, {"image": [1, 64, 48, 3]}) == {"image": [1, 64, 48, 3]}
    assert check_input_shapes(INPUTS, {"meta": [None, 8]}) == {"meta": [None, 8]}


@pytest.mark.parametrize("shapes, message", [
    ({"picture": [1, 8, 8, 3]}, "no input 'picture'; its inputs are: image, meta"),
    ({"image": [1, 64, 48]}, "3 dimensions given, the input has rank 4"),
    ({"image": [1, 64, 48, 4]}, "dimension 3 is fixed at 3 in the model"),
    ({"meta": [4, 9]}, "dimension 1 is fixed at 8"),
])
def test_check_refuses_what_contradicts_the_model(shapes, message):
    with pytest.raises(UserInputError, match=message) as info:
        check_input_shapes(INPUTS, shapes)
    assert "\n" not in str(info.value)
