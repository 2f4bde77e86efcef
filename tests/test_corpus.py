"""The corpus tier: every real file in ../shared/corpus/public through load + convert +
validate, and the cross-loader check against tf_keras's own reading of the same file.

Run alone with ``pytest -m corpus tests/test_corpus.py``; skipped when the corpus is absent.
"""

from __future__ import annotations

import copy
import csv
import json

import numpy as np
import pytest

pytestmark = [pytest.mark.corpus, pytest.mark.slow]

from tests.paths import CORPUS


def _manifest() -> dict[str, dict[str, str]]:
    path = CORPUS / "MANIFEST.tsv"
    if not path.is_file():
        return {}
    with path.open(newline="") as fh:
        return {r["file"]: r for r in csv.DictReader(fh, delimiter="\t")}


MANIFEST = _manifest()
FILES = sorted(MANIFEST)
FULL_MODELS = [f for f in FILES if MANIFEST[f]["model_class"] != "WEIGHTS_ONLY"]
# files stock tf_keras reads without running Lambda bytecode: an independent reference
CROSS = [f for f in FULL_MODELS
         if MANIFEST[f]["tf_keras_loads"] == "yes" and MANIFEST[f]["has_lambda"] != "yes"]
KERAS1 = [f for f in FULL_MODELS
          if MANIFEST[f]["era"] == "keras1" and MANIFEST[f]["has_lambda"] != "yes"]

if not MANIFEST:
    pytest.skip(f"corpus not found at {CORPUS}", allow_module_level=True)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    from modelport.corpus import run_corpus

    return {r.file: r for r in run_corpus(CORPUS, tmp_path_factory.mktemp("corpus"),
                                          keep_sources=True)}


@pytest.mark.parametrize("name", FULL_MODELS, ids=FULL_MODELS)
def test_full_model_loads_ports_and_validates(rows, name):
    row = rows[name]
    assert not row.crashed, row.reason
    assert row.ok, f"{name}: loaded={row.loaded_with!r} ported={row.ported} " \
                   f"validated={row.validated}: {row.reason}"


@pytest.mark.parametrize("name", [f for f in FILES if f not in FULL_MODELS],
                         ids=[f for f in FILES if f not in FULL_MODELS])
def test_weights_only_file_is_refused_with_guidance(rows, name):
    row = rows[name]
    assert row.refused and not row.loaded_with
    assert "weights only" in row.reason and "model.save" in row.reason


def test_every_corpus_file_has_a_row_and_the_table_lists_it(rows):
    from modelport.corpus import corpus_files, format_table

    assert sorted(rows) == sorted(p.name for p in corpus_files(CORPUS))
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


@pytest.mark.parametrize("name", CROSS, ids=CROSS)
def test_upgraded_model_computes_what_tf_keras_computes(rows, name):
    import tf_keras

    src = rows[name].source
    assert src is not None, rows[name].reason
    custom = _cudnn_as_keras2_rnn() if "CuDNN" in MANIFEST[name]["layer_types"] else {}
    reference = tf_keras.models.load_model(CORPUS / name, compile=False, custom_objects=custom)
    if MANIFEST[name]["backend"] == "theano":
        _keras2_theano_kernels(reference)
    feeds = _inputs(reference, src)
    expected = _outputs(reference, feeds, src.input_names)
    got = src.predict(feeds)
    assert len(got) == len(expected)
    for out_name, want in zip(src.output_names, expected):
        np.testing.assert_allclose(got[out_name], want, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", KERAS1, ids=KERAS1)
def test_keras1_weights_match_tf_keras_own_keras1_conversion(rows, name):
    """No stock loader reads Keras 1 configs, but tf_keras still converts Keras 1 weight
    arrays: build our upgraded config with it and let it convert the original arrays."""
    import h5py
    import tf_keras
    from tf_keras.src.saving.legacy import hdf5_format

    from modelport.loading.legacy.upgrade import source_backend, upgrade_config
    from modelport.loading.modelfile import read_model_file

    raw = read_model_file(CORPUS / name)
    if source_backend(raw)[0] != "tensorflow":
        pytest.skip("Theano kernels: tf_keras no longer flips them (see test_theano_weights)")
    config = copy.deepcopy(raw.config)
    upgrade_config(raw, config)
    reference = tf_keras.models.model_from_json(json.dumps(config))
    with h5py.File(CORPUS / name, "r") as f:
        hdf5_format.load_weights_from_hdf5_group(f["model_weights"], reference)
    src = rows[name].source
    feeds = _inputs(reference, src)
    expected = _outputs(reference, feeds, src.input_names)
    for out_name, want in zip(src.output_names, expected):
        np.testing.assert_allclose(src.predict(feeds)[out_name], want, rtol=1e-5, atol=1e-5)
