"""Fuzzing the loader with mutated .h5 files: anything but success or a ModelportError is a
bug. CI runs a bounded budget; run longer with e.g.

    MODELPORT_FUZZ_SECONDS=3600 .venv/bin/python -m pytest tests/test_fuzz.py -p no:cacheprovider
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelport.core.errors import ModelportError
from modelport.loading.source import load
from tests.mutation import replace_node

BUDGET = float(os.environ.get("MODELPORT_FUZZ_SECONDS", "25"))
# CI replays the same examples each run (a failure there is reproducible); a longer run
# asked for with MODELPORT_FUZZ_SECONDS explores new ones
DERANDOMIZE = "MODELPORT_FUZZ_SECONDS" not in os.environ
EXAMPLES = 400  # per round; a long run repeats rounds until its time budget is spent


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory) -> dict[str, bytes]:
    import keras
    import tf_keras

    d = tmp_path_factory.mktemp("fuzzseed")
    inp = keras.Input((5,), name="x")
    out = keras.layers.Dense(2, name="y")(keras.layers.Dense(4, activation="relu")(inp))
    keras.Model(inp, out).save(d / "k3.h5")
    tin = tf_keras.Input((3, 4), name="seq")
    tout = tf_keras.layers.Dense(1)(tf_keras.layers.LSTM(3)(tin))
    tf_keras.Model(tin, tout).save(str(d / "tfk.h5"), save_format="h5")
    return {p.name: p.read_bytes() for p in d.iterdir()}


class LoaderHang(BaseException):  # not Exception: the loader must not swallow it
    pass


def _alarm(signum, frame):
    raise LoaderHang("loading one mutated file took over 60 s: a hang is a bug too")


def _try(path: Path) -> None:
    import signal

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        load(path)
    except ModelportError:
        pass  # a clean refusal is a fine outcome
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _rounds(run, clock) -> None:
    run()
    while not DERANDOMIZE and clock.left():
        run()


class _Clock:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> bool:
        return time.monotonic() < self.end


def test_byte_mutations(seed_files, tmp_path):
    clock = _Clock(BUDGET * 0.5)
    names = sorted(seed_files)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(names), st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)),
                                            min_size=1, max_size=8),
           st.one_of(st.none(), st.integers(0, 10**9)))
    def run(name, flips, cut):
        if not clock.left():
            return
        data = bytearray(seed_files[name])
        for pos, value in flips:
            data[pos % len(data)] = value
        if cut is not None:
            data = data[: cut % len(data)]
        p = tmp_path / "m.h5"
        p.write_bytes(bytes(data))
        _try(p)

    _rounds(run, clock)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def test_config_mutations(seed_files, tmp_path):
    """Structure-aware: replace one node of model_config with random JSON."""
    import h5py

    clock = _Clock(BUDGET * 0.5)
    names = sorted(seed_files)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(names), st.integers(0, 10**6), _json_values)
    def run(name, which, value):
        if not clock.left():
            return
        p = tmp_path / "c.h5"
        p.write_bytes(seed_files[name])
        with h5py.File(p, "r+") as f:
            config = json.loads(f.attrs["model_config"])
            replace_node(config, which, value)
            f.attrs["model_config"] = json.dumps(config)
        _try(p)

    _rounds(run, clock)
