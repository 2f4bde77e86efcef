"""The Keras reference's first run goes ahead in a background thread while the SavedModel
is saved, only where it cannot change anything: a function that writes state (a stateful
RNN's states, a random generator, a table) is never run beside a conversion."""

from __future__ import annotations

import threading

import pytest

from modelport.conversion import check as check_mod
from modelport.conversion import convert
from modelport.loading.source import load


def _cnn(path):
    import keras

    keras.utils.set_random_seed(2)
    a = keras.Input((10, 10, 3), name="img")
    x = keras.layers.Conv2D(4, 3, activation="relu")(a)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(a, keras.layers.Dense(3, name="logits")(x)).save(path)
    return path


def _stateful_rnn(path):
    import keras

    keras.utils.set_random_seed(2)
    a = keras.Input((5, 3), batch_size=3, name="seq")
    x = keras.layers.LSTM(4, stateful=True)(a)
    keras.Model(a, keras.layers.Dense(2, name="y")(x)).save(path)
    return path


@pytest.fixture
def warm_runs(monkeypatch) -> list[str]:
    """The threads the warm-up ran the reference in."""
    seen: list[str] = []
    real = check_mod.QuickCheck.warm_up

    def spy(self, serving):
        predict = type(self.source).predict

        def counted(source, feeds):
            seen.append(threading.current_thread().name)
            return predict(source, feeds)

        monkeypatch.setattr(type(self.source), "predict", counted)
        return real(self, serving)

    monkeypatch.setattr(check_mod.QuickCheck, "warm_up", spy)
    return seen


def test_the_reference_warms_up_beside_the_conversion(tmp_path, warm_runs, monkeypatch):
    path = _cnn(tmp_path / "cnn.keras")
    manifest = convert(path, tmp_path / "out", "savedmodel,onnx")
    assert manifest.ok
    assert warm_runs[0] == "modelport-warm-up"  # first, in its own thread
    assert all(name != "modelport-warm-up" for name in warm_runs[1:])  # the check's own
    monkeypatch.setattr(check_mod.QuickCheck, "warm_up", lambda self, serving: None)
    cold = convert(path, tmp_path / "cold", "savedmodel,onnx")  # the same, never warmed
    for warm_rec, cold_rec in zip(manifest.artifacts, cold.artifacts):
        assert warm_rec.check["max_abs_error"] == cold_rec.check["max_abs_error"]
    assert (tmp_path / "out" / "cnn.onnx").read_bytes() == \
        (tmp_path / "cold" / "cnn.onnx").read_bytes()


def test_a_function_that_writes_state_is_never_warmed_up(tmp_path, warm_runs):
    source = load(_stateful_rnn(tmp_path / "rnn.keras"))
    assert check_mod.writes_state(source.serving.concrete())
    assert not check_mod.writes_state(load(_cnn(tmp_path / "cnn.keras")).serving.concrete())
    convert(source, tmp_path / "out", "savedmodel")
    assert "modelport-warm-up" not in warm_runs
