"""The corpus tool on a small made-up directory (no real corpus needed)."""

from __future__ import annotations

import pytest

from modelport.corpus import format_table, main, run_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    import h5py
    import tf_keras

    d = tmp_path_factory.mktemp("corpus")
    (d / "notes.h5").write_text("not a model")
    (d / "MANIFEST.tsv").write_text("file\tkeras_version\nweights.h5\t2.2.4\n")
    model = tf_keras.Sequential([tf_keras.layers.Dense(3, input_shape=(4,), name="d")])
    model.save_weights(d / "weights.h5")
    model.save(d / "small.h5", save_format="h5")
    with h5py.File(d / "weights.h5", "r") as f:
        assert "model_config" not in f.attrs
    return d


def test_rows_for_a_good_file_a_weights_file_and_a_non_model(corpus, tmp_path):
    rows = {r.file: r for r in run_corpus(corpus, tmp_path)}
    assert sorted(rows) == ["notes.h5", "small.h5", "weights.h5"]  # MANIFEST.tsv skipped
    good, weights, junk = rows["small.h5"], rows["weights.h5"], rows["notes.h5"]
    assert good.ok and good.loaded_with == "tf_keras" and good.reason == "ok"
    assert weights.refused and "weights only" in weights.reason and "model.save" in weights.reason
    assert weights.keras_version.startswith("2.") and not weights.crashed
    assert junk.refused and "not an HDF5" in junk.reason and not junk.crashed
    table = format_table(list(rows.values()))
    assert table.startswith("1 of 3 files load, port to all four formats and validate; "
                            "2 refused with a reason; 0 crashed.")
    assert "| small.h5 | " in table and "| all 4 | all 4 | ok |" in table


def test_main_writes_the_report_and_exits_0(corpus, tmp_path, monkeypatch):
    import modelport.corpus as tool

    monkeypatch.setattr(tool, "run_file", lambda path, work, version="?", keep=False:
                        tool.Row(path.name, version, reason="stubbed"))
    report = tmp_path / "out" / "report.md"
    assert main([str(corpus), str(report)]) == 0
    assert report.read_text().count("stubbed") == 3
    assert main([str(tmp_path / "missing"), str(report)]) == 2
