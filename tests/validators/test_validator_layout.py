"""Layout arithmetic and name binding (no runtime needed)."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.validators.layout import (
    alternatives, expected_shape, flipped, implied_layout, is_symmetric, permutation,
    shape_conflicts, to_layout,
)
from modelport.validators.run import ArtifactRunError, bind_names


def test_to_layout_moves_the_channel_axis():
    x = np.arange(2 * 4 * 5 * 3).reshape(2, 4, 5, 3)
    y = to_layout(x, "NHWC", "NCHW")
    assert y.shape == (2, 3, 4, 5)
    assert y[1, 2, 3, 4] == x[1, 3, 4, 2]
    np.testing.assert_array_equal(to_layout(y, "NCHW", "NHWC"), x)
    assert to_layout(x, "NHWC", "NHWC") is x
    assert to_layout(x, "none", "NCHW") is x
    assert to_layout(np.zeros((2, 7, 3)), "NWC", "NCW").shape == (2, 3, 7)
    assert permutation("NDHWC", "NCDHW") == [0, 4, 1, 2, 3]


def test_flips_and_implied_layouts():
    assert flipped("NHWC") == "NCHW" and flipped("NCW") == "NWC" and flipped("none") is None
    assert implied_layout("none", 4, "float32") == "NHWC"
    assert implied_layout("NCHW", 4, "float32") == "NCHW"
    assert implied_layout("none", 2, "float32") is None
    assert implied_layout("none", 3, "int32") is None  # ids are never transposed


def test_shapes():
    assert expected_shape([None, 8, 6, 3], "NHWC", "NCHW") == [None, 3, 8, 6]
    assert not shape_conflicts(["batch", 3, 8, 6], [None, 3, 8, 6])
    assert shape_conflicts([None, 8, 6, 3], [None, 3, 8, 6])
    assert shape_conflicts([None, 8], [None, 8, 1])
    assert not shape_conflicts([None, None, None, 3], [None, 8, 6, 3])
    assert is_symmetric((5, 8, 8, 8), "NHWC") and is_symmetric((5, 4, 4), "NWC")
    assert not is_symmetric((5, 8, 8, 3), "NHWC") and not is_symmetric((5, 8, 8, 8), None)


def test_alternatives_flip_each_input_and_their_combinations():
    alts = alternatives({"a": "NHWC", "b": "NCW", "ids": None})
    assert {"a": "NCHW"} in alts and {"b": "NWC"} in alts
    assert {"a": "NCHW", "b": "NWC"} in alts
    assert all("ids" not in a for a in alts)
    assert alternatives({"ids": None}) == []


def test_bind_by_name_whatever_the_order():
    mapping, notes = bind_names(["probs", "aux"], ["aux", "probs"], "output")
    assert mapping == {"probs": "probs", "aux": "aux"} and notes == []
    mapping, notes = bind_names(["image"], ["image:0"], "input")
    assert mapping == {"image": "image:0"} and notes == []


def test_bind_by_position_only_without_names():
    mapping, notes = bind_names(["probs", "aux"], ["Identity:0", "Identity_1:0"], "output")
    assert mapping == {"probs": "Identity:0", "aux": "Identity_1:0"}
    assert notes and "position" in notes[0]
    # names matched first, the rest by position
    mapping, _ = bind_names(["probs", "aux"], ["out_x", "probs"], "output")
    assert mapping == {"probs": "probs", "aux": "out_x"}
    with pytest.raises(ArtifactRunError, match="do not match"):
        bind_names(["probs", "aux"], ["y"], "output")
