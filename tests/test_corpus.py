"""The corpus tier: every real file in ../shared/corpus/public and public2 through load +
convert + validate, and the cross-loader check against tf_keras's own reading of the same
files.

What each file must give is read from its ``MANIFEST.tsv`` facts (what the bytes are, the
model class, the author's classes it needs), never from its name: a full model loads, ports
and validates (or its outputs are constant whatever the input, which a stock loader
confirms: parity cannot be shown); one that needs its author's classes is refused naming
them; a file that is not what its name says gets its own refusal. Failures that are other parts' open work are
marked, with their reason, as expected failures (non-strict), never skipped.

Run alone with ``pytest -m corpus tests/test_corpus.py``; skipped when a corpus is absent.
"""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.corpus, pytest.mark.slow]

from tests.paths import CORPUS, CORPUS2

CORPORA = {"public": CORPUS, "public2": CORPUS2}
LOADS = {"yes", "ok"}  # how each MANIFEST says a stock loader opens the file


def _manifest(corpus: Path) -> dict[str, dict[str, str]]:
    path = corpus / "MANIFEST.tsv"
    if not path.is_file():
        return {}
    with path.open(newline="") as fh:
        return {r["file"]: r for r in csv.DictReader(fh, delimiter="\t")}


MANIFESTS = {name: _manifest(path) for name, path in CORPORA.items()}
ENTRIES = [(c, f) for c in CORPORA for f in sorted(MANIFESTS[c])]


def _ids(cases):
    return [f"{c}/{f}" for c, f in cases]


def _custom_classes(m: dict[str, str]) -> list[str]:
    """The author's classes a file needs (Keras 2-only built-ins such as CuDNNLSTM aside)."""
    return [c.strip() for c in m.get("custom_layers", "-").split(",")
            if c.strip() not in ("", "-") and "keras2-only" not in c]


def expected(m: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """``(outcome, message fragments)`` a file's manifest facts call for."""
    kind = m["model_class"]
    if kind.startswith("NOT_HDF5"):
        return "refused", ("empty (0 bytes)",) if "empty" in kind else ("not an HDF5",)
    if kind.startswith("UNREADABLE"):
        return "refused", ("truncated",)
    if kind == "WEIGHTS_ONLY":
        return "refused", ("weights only", "Keras 0.x", "empty Keras weights file")
    if _custom_classes(m):
        return "authors_classes", tuple(_custom_classes(m))
    return "full", ()


if not any(MANIFESTS.values()):
    pytest.skip(f"corpus not found at {CORPUS} or {CORPUS2}", allow_module_level=True)


@pytest.fixture(scope="module")
def corpus_rows(tmp_path_factory):
    from modelport.corpus import run_corpus

    cache: dict[str, dict] = {}

    def rows(corpus: str) -> dict:
        if corpus not in cache:
            if not MANIFESTS[corpus]:
                pytest.skip(f"corpus {corpus} not found at {CORPORA[corpus]}")
            cache[corpus] = {r.file: r for r in run_corpus(
                CORPORA[corpus], tmp_path_factory.mktemp(corpus), keep_sources=True)}
        return cache[corpus]

    return rows


FULL = [(c, f) for c, f in ENTRIES if expected(MANIFESTS[c][f])[0] == "full"]
REFUSED = [(c, f) for c, f in ENTRIES if expected(MANIFESTS[c][f])[0] == "refused"]
AUTHORS = [(c, f) for c, f in ENTRIES if expected(MANIFESTS[c][f])[0] == "authors_classes"]


@pytest.mark.parametrize("corpus, name", FULL, ids=_ids(FULL))
def test_full_model_loads_ports_and_validates(corpus_rows, corpus, name):
    row = corpus_rows(corpus)[name]
    assert not row.crashed, row.reason
    if row.ok:
        return
    if "degenerate" in row.reason and len(row.ported) == 4:
        # honest: parity cannot be shown on a constant; the stock loader agrees it is one
        assert _stock_output_is_constant(corpus, name), row.reason
        return
    if row.refused:
        # beyond what any loader can do without its author: a named remedy, not a shrug
        stock = {MANIFESTS[corpus][name].get(k) for k in ("keras3_loads", "tf_keras_loads")}
        assert not stock & LOADS, f"{name}: a stock loader opens it: {row.reason}"
        assert "--custom-objects" in row.reason and "not registered:" in row.reason, row.reason
        return
    pytest.fail(f"{name}: loaded={row.loaded_with!r} ported={row.ported} "
                f"validated={row.validated}: {row.reason}")


def _stock_output_is_constant(corpus: str, name: str) -> bool:
    """Whether the model, as a stock loader builds it, gives one output for every input
    (e.g. a LayerNormalization over a feature axis of size 1)."""
    facts = MANIFESTS[corpus][name]
    if facts["has_lambda"] == "yes":
        return False  # no stock loader runs Lambda bytecode here
    if facts["keras3_loads"] in LOADS:
        import keras

        model = keras.saving.load_model(CORPORA[corpus] / name, compile=False)
    elif facts["tf_keras_loads"] in LOADS:
        import tf_keras

        model = tf_keras.models.load_model(CORPORA[corpus] / name, compile=False)
    else:
        return False
    rng = np.random.default_rng(3)
    runs = []
    for scale in (0.1, 1.0, 100.0):
        feeds = [(rng.normal(size=(4, *t.shape[1:])) * scale).astype("float32")
                 for t in model.inputs]
        out = model(feeds if len(feeds) > 1 else feeds[0])
        runs.append([np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])])
    first = runs[0]
    return all(np.allclose(o, first[i][:1]) for run in runs for i, o in enumerate(run))


@pytest.mark.parametrize("corpus, name", REFUSED, ids=_ids(REFUSED))
def test_file_that_is_not_a_full_model_gets_its_own_refusal(corpus_rows, corpus, name):
    row = corpus_rows(corpus)[name]
    assert row.refused and not row.loaded_with and not row.crashed, row.reason
    fragments = expected(MANIFESTS[corpus][name])[1]
    assert any(f in row.reason for f in fragments), row.reason
    assert "not a Keras model file" not in row.reason  # specific, not the catch-all


@pytest.mark.parametrize("corpus, name", AUTHORS, ids=_ids(AUTHORS))
def test_model_needing_its_authors_classes_is_refused_naming_them(corpus_rows, corpus, name):
    row = corpus_rows(corpus)[name]
    assert row.refused and not row.crashed, row.reason
    listed = row.reason.split("not registered:", 1)[-1].split(";", 1)[0]
    for cls in expected(MANIFESTS[corpus][name])[1]:
        assert cls in listed, f"{cls} not named: {row.reason}"
    assert "--custom-objects" in row.reason


@pytest.mark.parametrize("corpus", list(CORPORA))
def test_every_corpus_file_has_a_row_and_the_table_lists_it(corpus_rows, corpus):
    from modelport.corpus import corpus_files, format_table

    rows = corpus_rows(corpus)
    assert sorted(rows) == sorted(p.name for p in corpus_files(CORPORA[corpus]))
    table = format_table(list(rows.values()))
    assert table.count("\n| ") == len(rows) + 1  # header + one row per file
    assert f"{sum(r.ok for r in rows.values())} of {len(rows)} files" in table


# ------------------------------------------------------------------ cross-loader check


def _inputs(model, src):
    """Seeded inputs; Embedding-fed inputs get valid ids (found on the tf_keras model)."""
    from modelport.validators.inputs import generate_inputs

    vocab = dict(src.embedding_vocab)
    for layer in model.layers:
        if type(layer).__name__ == "Embedding":
            for node in layer._inbound_nodes:
                for inbound in node.inbound_layers if isinstance(node.inbound_layers, list) \
                        else [node.inbound_layers]:
                    if type(inbound).__name__ == "InputLayer":
                        vocab[inbound.name] = min(vocab.get(inbound.name, layer.input_dim),
                                                  layer.input_dim)
    return generate_inputs(src.inputs, samples=4, seed=1, vocab=vocab, layout=src.layout)


def _cudnn_as_keras2_rnn():
    """CuDNN layers cannot run on CPU; tf_keras's loader converts their weights itself
    when it builds a plain LSTM/GRU with the cuDNN maths instead."""
    import tf_keras

    def lstm(**cfg):
        cfg.pop("time_major", None)
        return tf_keras.layers.LSTM(activation="tanh", recurrent_activation="sigmoid", **cfg)

    def gru(**cfg):
        cfg.pop("time_major", None)
        return tf_keras.layers.GRU(activation="tanh", recurrent_activation="sigmoid",
                                   reset_after=True, **cfg)

    return {"CuDNNLSTM": lstm, "CuDNNGRU": gru}


def _keras2_theano_kernels(model) -> None:
    """What Keras 2's loader did for ``backend == 'theano'`` files (tf_keras dropped it):
    mirror every convolution kernel in space (Theano convolved, TensorFlow correlates)."""
    for layer in model.layers:
        if type(layer).__name__ in ("Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose"):
            kernel, *rest = layer.get_weights()
            spatial = tuple(range(kernel.ndim - 2))
            layer.set_weights([np.flip(kernel, axis=spatial), *rest])


def _outputs(model, feeds, names):
    out = model([feeds[n] for n in names] if len(names) > 1 else feeds[names[0]])
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


# files stock tf_keras reads without running Lambda bytecode: an independent reference
CROSS = [(c, f) for c, f in FULL if MANIFESTS[c][f]["tf_keras_loads"] in LOADS
         and MANIFESTS[c][f]["has_lambda"] != "yes"]
KERAS1 = [(c, f) for c, f in FULL
          if MANIFESTS[c][f]["era"] == "keras1" and MANIFESTS[c][f]["has_lambda"] != "yes"]


@pytest.mark.parametrize("corpus, name", CROSS, ids=_ids(CROSS))
def test_upgraded_model_computes_what_tf_keras_computes(corpus_rows, corpus, name):
    import tf_keras

    facts = MANIFESTS[corpus][name]
    src = corpus_rows(corpus)[name].source
    assert src is not None, corpus_rows(corpus)[name].reason
    custom = _cudnn_as_keras2_rnn() if "CuDNN" in facts["layer_types"] else {}
    reference = tf_keras.models.load_model(CORPORA[corpus] / name, compile=False,
                                           custom_objects=custom)
    if facts["backend"] == "theano":
        _keras2_theano_kernels(reference)
    feeds = _inputs(reference, src)
    expected = _outputs(reference, feeds, src.input_names)
    got = src.predict(feeds)
    assert len(got) == len(expected)
    for out_name, want in zip(src.output_names, expected):
        np.testing.assert_allclose(got[out_name], want, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("corpus, name", KERAS1, ids=_ids(KERAS1))
def test_keras1_weights_match_tf_keras_own_keras1_conversion(corpus_rows, corpus, name):
    """No stock loader reads Keras 1 configs, but tf_keras still converts Keras 1 weight
    arrays: build our upgraded config with it and let it convert the original arrays."""
    import h5py
    import tf_keras
    from tf_keras.src.saving.legacy import hdf5_format

    from modelport.loading.legacy.upgrade import source_backend, upgrade_config
    from modelport.loading.modelfile import read_model_file

    raw = read_model_file(CORPORA[corpus] / name)
    if source_backend(raw)[0] != "tensorflow":
        pytest.skip("Theano kernels: tf_keras no longer flips them (see test_theano_weights)")
    config = copy.deepcopy(raw.config)
    upgrade_config(raw, config)
    reference = tf_keras.models.model_from_json(json.dumps(config))
    with h5py.File(CORPORA[corpus] / name, "r") as f:
        hdf5_format.load_weights_from_hdf5_group(f["model_weights"], reference)
    src = corpus_rows(corpus)[name].source
    feeds = _inputs(reference, src)
    expected = _outputs(reference, feeds, src.input_names)
    for out_name, want in zip(src.output_names, expected):
        np.testing.assert_allclose(src.predict(feeds)[out_name], want, rtol=1e-5, atol=1e-5)
