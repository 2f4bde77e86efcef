"""Seeded, user-supplied and probe inputs."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.core.records import TensorInfo
from modelport.core.errors import UserInputError
from modelport.validators.inputs import (
    DEFAULT_DIM, DEFAULT_SPATIAL_DIM, generate_inputs, layout_probe, parse_shape_overrides,
    resolve_shape,
)
from modelport.validators.user_inputs import conform_inputs, load_inputs, save_inputs

IMAGE = TensorInfo("image", [None, 8, 8, 3], "float32")
TOKENS = TensorInfo("tokens", [None, 12], "int32")
FLOAT_IDS = TensorInfo("ids", [None, 5], "float32")  # Input() default dtype feeding an Embedding
FLAGS = TensorInfo("flags", [None, 4], "bool")
BYTES = TensorInfo("bytes", [None, 6], "uint8")
FREE = TensorInfo("free", [None, None, None, 3], "float32")


def test_seeded_generation_is_reproducible_and_seed_dependent():
    a = generate_inputs([IMAGE, TOKENS], samples=3, seed=5)
    b = generate_inputs([IMAGE, TOKENS], samples=3, seed=5)
    c = generate_inputs([IMAGE, TOKENS], samples=3, seed=6)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["image"], c["image"])


@pytest.mark.parametrize("spec", [IMAGE, TOKENS, FLOAT_IDS, FLAGS, BYTES])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_arrays_are_never_constant(spec, seed):
    arr = generate_inputs([spec], samples=2, seed=seed, vocab={"ids": 7})[spec.name]
    assert arr.dtype == np.dtype(spec.dtype)
    assert arr.shape[0] == 2
    assert np.unique(arr).size > 1, f"{spec.name} is constant"
    # samples must differ from each other too, or outputs cannot vary with the input
    assert not np.array_equal(arr[0], arr[1])


def test_embedding_inputs_get_ids_inside_the_vocabulary_whatever_the_dtype():
    feeds = generate_inputs([TOKENS, FLOAT_IDS], samples=50, seed=0,
                            vocab={"tokens": 3, "ids": 1000})
    assert feeds["tokens"].min() >= 0 and feeds["tokens"].max() <= 2
    assert set(np.unique(feeds["tokens"])) == {0, 1, 2}
    ids = feeds["ids"]
    assert ids.dtype == np.float32
    assert np.all(ids == np.round(ids)) and ids.min() >= 0 and ids.max() < 1000
    assert ids.max() > 100  # spread over the vocabulary, not stuck near 0


def test_dtype_aware_ranges():
    feeds = generate_inputs([BYTES, TOKENS, FLAGS], samples=200, seed=0)
    assert feeds["bytes"].max() > 200  # image bytes use the whole range
    assert 0 <= feeds["tokens"].min() and feeds["tokens"].max() < 10
    assert feeds["flags"].dtype == bool


def test_unknown_dimensions_and_overrides():
    assert resolve_shape(FREE, 4, layout="NHWC") == [4, DEFAULT_SPATIAL_DIM, DEFAULT_SPATIAL_DIM, 3]
    assert resolve_shape(TensorInfo("s", [None, None, 5], "float32"), 2) == [2, DEFAULT_DIM, 5]
    # a full shape (batch first) or the dims without batch; --samples decides the batch
    assert resolve_shape(FREE, 4, {"free": [1, 64, 48, 3]}) == [4, 64, 48, 3]
    assert resolve_shape(FREE, 4, {"free": [64, 48, 3]}) == [4, 64, 48, 3]
    with pytest.raises(UserInputError, match="fixed at 3"):
        resolve_shape(FREE, 4, {"free": [1, 64, 48, 4]})
    with pytest.raises(UserInputError, match="rank 4"):
        resolve_shape(FREE, 4, {"free": [64, 48]})
    feeds = generate_inputs([FREE], samples=2, shapes={"free": [1, 5, 7, 3]})
    assert feeds["free"].shape == (2, 5, 7, 3)


def test_parse_shape_overrides():
    assert parse_shape_overrides(["image=1,224,224,3", "t=1x9"]) == {
        "image": [1, 224, 224, 3], "t": [1, 9]}
    for bad in ["image", "image=", "=1,2", "image=a,b", "image=1,0,3"]:
        with pytest.raises(UserInputError):
            parse_shape_overrides([bad])


def test_layout_probe_values_encode_their_position():
    like = generate_inputs([IMAGE, TOKENS], samples=2, seed=0, vocab={"tokens": 1000})
    probe = layout_probe([IMAGE, TOKENS], like, vocab={"tokens": 1000})
    img = probe["image"]
    assert img.shape == (1, 8, 8, 3) and img.dtype == np.float32
    assert np.unique(img).size == img.size  # every position holds a distinct value
    # a transposed (NCHW-read) or reshaped view puts other values at the same positions
    moved = img.reshape(1, 3, 8, 8).transpose(0, 2, 3, 1)
    assert not np.allclose(moved, img)
    assert not np.allclose(img.transpose(0, 2, 1, 3), img)
    assert probe["tokens"].dtype == np.int32
    assert 0 <= probe["tokens"].min() and probe["tokens"].max() < 1000
    assert np.unique(probe["tokens"]).size == 12


def test_npz_npy_round_trip_and_errors(tmp_path):
    feeds = generate_inputs([IMAGE, TOKENS], samples=2, seed=3)
    saved = save_inputs(tmp_path / "in", feeds)
    assert saved.name == "in.npz"
    loaded = load_inputs(saved, [IMAGE, TOKENS])
    for k in feeds:
        np.testing.assert_array_equal(loaded[k], feeds[k])
        assert loaded[k].dtype == feeds[k].dtype

    np.save(tmp_path / "one.npy", feeds["image"][0].astype(np.float64))  # no batch, float64
    one = load_inputs(tmp_path / "one.npy", [IMAGE])
    assert one["image"].shape == (1, 8, 8, 3) and one["image"].dtype == np.float32
    with pytest.raises(UserInputError, match="one array"):
        load_inputs(tmp_path / "one.npy", [IMAGE, TOKENS])

    np.savez(tmp_path / "missing.npz", image=feeds["image"])
    with pytest.raises(UserInputError, match="tokens"):
        load_inputs(tmp_path / "missing.npz", [IMAGE, TOKENS])
    np.savez(tmp_path / "shape.npz", image=np.zeros((2, 8, 3, 8), np.float32))
    with pytest.raises(UserInputError, match="shape"):
        load_inputs(tmp_path / "shape.npz", [IMAGE])
    (tmp_path / "junk.npz").write_bytes(b"not numpy")
    with pytest.raises(UserInputError, match="cannot read"):
        load_inputs(tmp_path / "junk.npz", [IMAGE])
    with pytest.raises(UserInputError, match="cannot read"):
        load_inputs(tmp_path / "absent.npz", [IMAGE])


def test_conform_checks_dtypes_and_batches():
    ok = conform_inputs({"tokens:0": np.array([[1] * 12, [2] * 12], np.int64)}, [TOKENS])
    assert ok["tokens"].dtype == np.int32
    with pytest.raises(UserInputError, match="convert exactly"):
        conform_inputs({"tokens": np.full((1, 12), 1.5)}, [TOKENS])
    with pytest.raises(UserInputError, match="batch"):
        conform_inputs({"image": np.ones((2, 8, 8, 3), np.float32),
                        "tokens": np.ones((3, 12), np.int32)}, [IMAGE, TOKENS])


def test_inputs_are_drawn_from_the_declared_domain():
    from modelport.loading.domain import InputDomain

    pixels = InputDomain("uniform", 0.0, 255.0, reason="Rescaling")
    norm = InputDomain("normal", mean=np.array([[[10.0, -5.0, 0.0]]]),
                       std=np.array([[[2.0, 0.5, 1.0]]]), reason="Normalization")
    vocab = InputDomain("values", values=(12, 36, 42, 1138), reason="IntegerLookup")
    specs = [IMAGE, TensorInfo("feat", [None, 4, 3], "float32"),
             TensorInfo("ids", [None, 6], "int64")]
    domains = {"image": pixels, "feat": norm, "ids": vocab}
    feeds = generate_inputs(specs, samples=400, seed=1, domains=domains)
    img = feeds["image"]
    assert img.min() >= 0 and img.max() <= 255 and img.max() > 250 and img.min() < 5
    assert abs(img.mean() - 127.5) < 3
    per_channel = feeds["feat"].reshape(-1, 3)
    np.testing.assert_allclose(per_channel.mean(0), [10.0, -5.0, 0.0], atol=0.1)
    np.testing.assert_allclose(per_channel.std(0), [2.0, 0.5, 1.0], rtol=0.05)
    assert set(np.unique(feeds["ids"])) == {12, 36, 42, 1138}
    # the layout probe stays in the domain too, and still encodes positions
    probe = layout_probe(specs, feeds, domains=domains)
    assert probe["image"].min() >= 0 and probe["image"].max() <= 255
    assert np.unique(probe["image"]).size == probe["image"].size
    assert set(np.unique(probe["ids"])) <= {12, 36, 42, 1138}
    assert abs(probe["feat"][..., 0].mean() - 10.0) < 2.0


def test_default_domains_say_why():
    from modelport.validators.inputs import choose_domains

    chosen = choose_domains([IMAGE, TOKENS, FLOAT_IDS, BYTES, FLAGS], vocab={"ids": 40})
    assert chosen["image"].describe() == "normal (mean 0, std 1)"
    assert chosen["image"].reason.startswith("default")
    assert chosen["tokens"].describe() == "integers [0, 10)"
    assert chosen["ids"].describe() == "integers [0, 40)" and "Embedding" in chosen["ids"].reason
    assert chosen["bytes"].describe() == "integers [0, 256)"
    assert chosen["flags"].kind == "integers"


def test_safer_domains_replace_float_inputs_only():
    from modelport.validators.inputs import SAFER_DOMAINS, choose_domains, safer_domains

    chosen = choose_domains([IMAGE, TOKENS, FLOAT_IDS], vocab={"ids": 40})
    safer = safer_domains([IMAGE, TOKENS, FLOAT_IDS], chosen, SAFER_DOMAINS[0])
    assert safer["image"] is SAFER_DOMAINS[0]
    assert safer["tokens"] is chosen["tokens"] and safer["ids"] is chosen["ids"]
    feeds = generate_inputs([IMAGE], samples=3, domains=safer)
    assert feeds["image"].min() >= 0 and feeds["image"].max() < 1
