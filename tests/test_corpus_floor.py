"""The floor, on real files: every corpus file that stock Keras 3 or stock tf_keras opens
(its ``MANIFEST.tsv`` says so; stock loaders are not run here, so no Lambda bytecode
runs) is opened by modelport too, without custom objects or ``--trust-lambda``."""

from __future__ import annotations

import pytest

from tests.test_corpus import CORPORA, LOADS, MANIFESTS, _ids

pytestmark = [pytest.mark.corpus, pytest.mark.slow]

STOCK_OPENS = [(c, f) for c in CORPORA for f, m in sorted(MANIFESTS[c].items())
               if m.get("keras3_loads") in LOADS or m.get("tf_keras_loads") in LOADS]


@pytest.mark.parametrize("corpus, name", STOCK_OPENS, ids=_ids(STOCK_OPENS))
def test_what_a_stock_loader_opens_modelport_opens(corpus, name):
    from modelport.loading.source import load

    src = load(CORPORA[corpus] / name)  # no custom objects, no --trust-lambda
    assert src.input_names and src.output_names and src.framework in ("keras3", "tf_keras")
