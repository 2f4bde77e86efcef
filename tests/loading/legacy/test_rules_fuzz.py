"""Malformed legacy configs: the rules and ``plan`` either upgrade them or refuse them with
a ModelFileError; any other exception is a bug (the loader would report it as a crash)."""

from __future__ import annotations

import copy
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelport.core.errors import ModelFileError
from modelport.loading.legacy.upgrade import plan, upgrade_config
from modelport.loading.raw import RawModel

from tests.loading.legacy.test_loader_acceptance import KERAS1_FUNCTIONAL, KERAS1_SEQUENTIAL
from tests.mutation import replace_node

SEEDS = [KERAS1_SEQUENTIAL, KERAS1_FUNCTIONAL]
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 300) | st.floats(allow_nan=False, width=16)
    | st.sampled_from(["", "th", "one", "cpu", "Sequential", "LSTM", "concat", "x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["class_name", "config", "layers", "layer", "name", "mode", "nb_row",
                         "padding", "inbound_nodes", "function", "dim_ordering", "x"]),
        inner, max_size=3),
    max_leaves=6)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.sampled_from(range(len(SEEDS))), st.lists(st.tuples(st.integers(0, 10**6), _values),
                                                    min_size=1, max_size=3),
       st.sampled_from(["", "theano", "tensorflow"]))
def test_mutated_keras1_configs_upgrade_or_refuse_cleanly(seed, mutations, backend):
    config = copy.deepcopy(SEEDS[seed])
    for which, value in mutations:
        replace_node(config, which, value)
    raw = RawModel(Path("f.h5"), "h5", config, "1.2.2", backend)
    try:
        upgrade_config(raw, copy.deepcopy(config))
    except ModelFileError as e:
        assert str(e).startswith("f.h5: ")
    plan(raw)  # reports blockers instead of raising
