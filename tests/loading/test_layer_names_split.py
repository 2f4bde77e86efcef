"""Keras splits a string list over ``layer_names0``, ``layer_names1``, ... when it exceeds
HDF5's 64 KiB attribute limit; every reader of ``layer_names`` must see the whole list."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.loading.hdf5 import HEADER_LIMIT, read_names, write_names

N_LAYERS = 300
NAME_LEN = 240  # 300 names x 240 bytes = 72 KB > 64 KiB: Keras must split


@pytest.fixture(scope="module")
def deep(tmp_path_factory):
    """A tf.keras model with enough long-named layers for Keras to split layer_names."""
    import tf_keras

    tf_keras.utils.set_random_seed(5)
    layers = [tf_keras.layers.Dense(4, activation="tanh", input_shape=(3,), name="first")]
    layers += [tf_keras.layers.Activation("linear", name=f"a{i:03d}".ljust(NAME_LEN, "x"))
               for i in range(N_LAYERS)]
    layers += [tf_keras.layers.Dense(2, name="last")]
    model = tf_keras.Sequential(layers, name="deep")
    d = tmp_path_factory.mktemp("split")
    full, weights, arch = d / "deep.h5", d / "deep_weights.h5", d / "deep.json"
    model.save(full)
    model.save_weights(weights)
    arch.write_text(model.to_json())
    x = np.random.default_rng(0).standard_normal((5, 3)).astype("float32")
    return {"full": full, "weights": weights, "arch": arch, "x": x,
            "y": model.predict(x, verbose=0), "names": [l.name for l in model.layers]}


def test_keras_really_split_the_list(deep):
    import h5py

    with h5py.File(deep["full"], "r") as f:
        attrs = f["model_weights"].attrs
        assert "layer_names" not in attrs and "layer_names1" in attrs
        assert read_names(attrs, "layer_names") == deep["names"]
    with h5py.File(deep["weights"], "r") as f:
        assert "layer_names1" in f.attrs and read_names(f.attrs, "layer_names") == deep["names"]


def test_full_model_loads_and_computes_the_same(deep):
    from modelport.loading.source import load

    source = load(deep["full"])
    got = source.predict({source.input_names[0]: deep["x"]})
    np.testing.assert_allclose(next(iter(got.values())), deep["y"], rtol=1e-5, atol=1e-6)


def test_weights_only_file_is_recognised_and_listed(deep):
    from modelport.core.errors import ModelFileError
    from modelport.inspection import inspect
    from modelport.loading.source import load

    with pytest.raises(ModelFileError, match="holds weights only"):
        load(deep["weights"])
    desc = inspect(deep["weights"])
    assert desc.details["weights_only"] and desc.details["weight_layers"] == deep["names"]


def test_weights_with_architecture_combine_by_name(deep):
    from modelport.loading.source import load

    source = load(deep["weights"], architecture=deep["arch"])
    got = source.predict({source.input_names[0]: deep["x"]})
    np.testing.assert_allclose(next(iter(got.values())), deep["y"], rtol=1e-5, atol=1e-6)


def test_write_names_splits_like_keras_and_reads_back(tmp_path):
    import h5py

    names = [f"layer_{i}".ljust(200, "y") for i in range(1000)]
    with h5py.File(tmp_path / "n.h5", "w") as f:
        write_names(f.attrs, "layer_names", names)
        parts = [k for k in f.attrs if k.startswith("layer_names")]
        assert len(parts) > 1 and all(f.attrs[k].nbytes <= HEADER_LIMIT for k in parts)
        assert read_names(f.attrs, "layer_names") == names
        write_names(f.attrs, "layer_names", ["a", "b"])  # a short list replaces every part
        assert list(f.attrs) == ["layer_names"]
        assert read_names(f.attrs, "layer_names") == ["a", "b"]
