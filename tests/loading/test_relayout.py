"""``loading/relayout.py``: a channels_first model rewritten channels_last computes what
the original computes (inputs moved NCHW -> NHWC), layer kind by layer kind; what it cannot
rewrite safely is refused with the layer's name; layers with no rule keep a transpose back,
and say so."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from modelport.core.errors import UserInputError
from modelport.fixtures.base import fill_weights
from modelport.loading.relayout import to_channels_last
from modelport.loading.source import load
from modelport.validators.inputs import generate_inputs

CF = "channels_first"


def halve(x):
    """Elementwise: commutes with any transpose."""
    return x * 0.5 - 1.0


def flip_rows(x):
    """Reverses axis 2 (the rows of an NCHW tensor, the columns once moved): it does not
    commute with the move."""
    import keras

    return keras.ops.flip(x, axis=2)


def _save(model, path, seed=3):
    fill_weights(model, np.random.default_rng(seed))
    model.save(path)
    return path


def _moved(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, [0, *range(2, x.ndim), 1]))


def _assert_same(source, relaid, samples=3):
    """The rewritten model on moved inputs equals the original on the original inputs."""
    target = relaid.source
    feeds = generate_inputs(source.inputs, samples=samples, seed=11)
    want = source.predict(feeds)
    got = target.predict({k: _moved(v) if k in relaid.moved_inputs else v
                          for k, v in feeds.items()})
    for name, y in want.items():
        g = got[name]
        if target.layout.get(name) != source.layout.get(name, "none") and name in target.layout:
            g = np.transpose(g, [0, g.ndim - 1, *range(1, g.ndim - 1)])
        assert g.shape == y.shape, name
        assert float(np.std(y, axis=0).max()) > 1e-3, f"{name} does not vary with the input"
        np.testing.assert_allclose(g, y, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(y).max()))
    return want


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    """Every rule at once: BN(axis=1), Concatenate(axis=1), PReLU per position, a softmax
    over the rows, LayerNormalization over (C, H, W), a channel-keeping Reshape, a
    squeeze-and-excite Multiply, an elementwise Lambda, a Flatten (NCHW order) + Dense."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(4)
    inp = keras.Input((3, 12, 10), name="image")
    a = layers.Conv2D(4, 3, padding="same", data_format=CF, name="conv_a")(inp)
    b = layers.Conv2D(2, 1, data_format=CF, name="conv_b")(inp)
    x = layers.Concatenate(axis=1, name="concat")([a, b])
    x = layers.BatchNormalization(axis=1, name="bn")(x)
    x = layers.PReLU(name="prelu")(x)
    x = layers.Lambda(halve, name="halve")(x)
    x = layers.LayerNormalization(axis=[1, 2, 3], name="ln")(x)
    s = layers.GlobalAveragePooling2D(data_format=CF, name="gap")(x)
    s = layers.Dense(6, activation="sigmoid", name="excite")(s)
    s = layers.Reshape((6, 1, 1), name="to_map")(s)
    x = layers.Multiply(name="scale")([x, s])
    x = layers.MaxPooling2D(2, data_format=CF, name="pool")(x)
    rows = layers.Activation("softmax", name="row_softmax")(x)  # over W of NCHW
    x = layers.Add(name="add")([x, rows])
    x = layers.Softmax(axis=1, name="channel_softmax")(x)
    x = layers.Reshape((6, 30), name="regroup")(x)  # channels kept, H*W merged
    x = layers.Reshape((6, 5, 6), name="back")(x)
    x = layers.Conv2D(3, 3, data_format=CF, activation="tanh", name="conv_c")(x)
    flat = layers.Flatten(name="flatten")(x)  # channels_last Flatten on NCHW: C,H,W order
    out = layers.Dense(5, name="logits")(flat)
    path = tmp_path_factory.mktemp("rich") / "rich.keras"
    return _save(keras.Model(inp, [out, x]), path)


def test_rich_model_moves_every_layer_without_transposes(rich):
    source = load(rich, custom_objects={"halve": halve})
    relaid = to_channels_last(source)
    assert relaid.moved_inputs == ["image"] and relaid.transposes == []
    assert relaid.source.layout["image"] == "NHWC"
    _assert_same(source, relaid)
    model = relaid.source.model
    assert all(getattr(l, "data_format", "channels_last") == "channels_last"
               for l in model.layers)
    assert {"bn", "concat", "prelu", "ln", "logits", "channel_softmax", "row_softmax",
            "regroup", "back"} <= set(relaid.rewritten)


def test_outputs_left_channels_first_are_declared_moved(rich):
    """A spatial output comes out NHWC and the layout says so; the original stays NCHW."""
    source = load(rich, custom_objects={"halve": halve})
    relaid = to_channels_last(source)
    spatial = source.output_names[1]
    assert source.inputs and relaid.source.outputs[1].shape == [None, 3, 4, 3]
    assert relaid.source.layout[spatial] == "NHWC"
    assert source.layout.get(spatial) is None  # the model's own record keeps inputs only


def test_keras1_theano_flatten_dense_rows_are_permuted(tmp_path, monkeypatch):
    """Keras 1 'th' Conv -> Flatten (C,H,W order) -> Dense, loaded by tf_keras: the Dense
    kernel's rows must follow the new (H,W,C) flatten order; checked against Theano maths."""
    from modelport.loading.legacy.upgrade import BACKEND_ENV
    from tests.loading.legacy.test_theano_weights import X, keras1_th_file, theano_reference

    monkeypatch.delenv(BACKEND_ENV, raising=False)
    source = load(keras1_th_file(tmp_path))
    relaid = to_channels_last(source)
    assert source.framework == "tf_keras" and "dense_1" in relaid.rewritten
    got = relaid.source.predict({"convolution2d_1_input": _moved(X)})["dense_1"]
    np.testing.assert_allclose(got, theano_reference(X), rtol=1e-4, atol=1e-4)


def test_layer_without_rule_keeps_a_transpose_and_says_so(tmp_path):
    """An LSTM reads axis 1 of an NCW tensor as time: it gets its input transposed back."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(6)
    inp = keras.Input((4, 9), name="signal")  # NCW
    x = layers.Conv1D(5, 3, data_format=CF, activation="tanh", name="conv")(inp)
    out = layers.LSTM(3, name="lstm")(x)
    source = load(_save(keras.Model(inp, out), tmp_path / "seq.keras"))
    relaid = to_channels_last(source)
    assert relaid.transposes == ["lstm (LSTM)"]
    assert "kept 1 transpose(s) back to channels_first, before: lstm (LSTM)" in \
        relaid.source.warnings[-1]
    _assert_same(source, relaid)


def test_input_used_only_in_the_original_layout_is_not_moved(tmp_path):
    import keras
    from keras import layers

    keras.utils.set_random_seed(7)
    inp = keras.Input((4, 6), name="seq")  # described NCW, but an LSTM reads it first
    x = layers.LSTM(3, return_sequences=True, name="lstm")(inp)
    x = layers.Conv1D(2, 2, data_format=CF, name="conv")(x)
    out = layers.Flatten(name="flat")(x)
    source = load(_save(keras.Model(inp, out), tmp_path / "first.keras"))
    assert source.layout["seq"] == "NCW"
    relaid = to_channels_last(source)
    assert relaid.moved_inputs == [] and relaid.source.layout["seq"] == "NCW"
    _assert_same(source, relaid)


def test_lambda_that_touches_axes_is_refused_by_name(tmp_path):
    import keras
    from keras import layers

    inp = keras.Input((3, 8, 6), name="image")
    x = layers.Conv2D(4, 3, data_format=CF, name="conv")(inp)
    x = layers.Lambda(flip_rows, name="flip")(x)
    out = layers.GlobalAveragePooling2D(data_format=CF, name="gap")(x)
    source = load(_save(keras.Model(inp, out), tmp_path / "flip.keras"),
                  custom_objects={"flip_rows": flip_rows})
    with pytest.raises(UserInputError, match=r"layer 'flip' \(Lambda\) computes along the "
                                             r"axes") as info:
        to_channels_last(source)
    assert "\n" not in str(info.value) and "convert without --layout" in str(info.value)


def test_unknown_layer_with_a_data_format_is_refused_by_name(tmp_path):
    import keras
    from keras import layers

    @keras.saving.register_keras_serializable(package="relayout_test")
    class Shift(layers.Layer):
        """Elementwise, but declares a data_format nothing here knows."""

        def __init__(self, data_format=CF, **kwargs):
            super().__init__(**kwargs)
            self.data_format = data_format

        def call(self, x):
            return x + 1.0

        def get_config(self):
            return {**super().get_config(), "data_format": self.data_format}

    inp = keras.Input((3, 8, 6), name="image")
    x = layers.Conv2D(4, 3, data_format=CF, name="conv")(inp)
    out = Shift(name="shift")(x)
    path = _save(keras.Model(inp, out), tmp_path / "shift.keras")
    source = load(path, custom_objects={"relayout_test>Shift": Shift, "Shift": Shift})
    with pytest.raises(UserInputError, match=r"layer 'shift' \(Shift\) has "
                                             r"data_format='channels_first' and no"):
        to_channels_last(source)


def test_channels_last_model_is_left_alone(fixture_models):
    source = load(fixture_models.get("cnn_bn").path)
    relaid = to_channels_last(source)
    assert relaid.source is source and relaid.moved_inputs == []


def test_sequential_and_nested_models(tmp_path):
    """A Keras 3 Sequential inside a functional model: replayed as one graph."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(8)
    block = keras.Sequential([
        keras.Input((4, 10, 8)),
        layers.Conv2D(5, 3, padding="same", data_format=CF, activation="relu", name="inner_conv"),
        layers.BatchNormalization(axis=1, name="inner_bn"),
    ], name="block")
    inp = keras.Input((3, 10, 8), name="image")
    x = layers.Conv2D(4, 1, data_format=CF, name="stem")(inp)
    x = block(x)
    x = layers.AveragePooling2D(2, data_format=CF, name="pool")(x)
    out = layers.Dense(3, name="head")(layers.Flatten(name="flat")(x))
    source = load(_save(keras.Model(inp, out), tmp_path / "nested.keras"))
    relaid = to_channels_last(source)
    assert relaid.transposes == [] and {"inner_conv", "inner_bn", "head"} <= set(relaid.rewritten)
    _assert_same(source, relaid)

    seq = keras.Sequential([keras.Input((2, 9, 7), name="pixels"),
                            layers.Conv2D(3, 3, data_format=CF, activation="tanh"),
                            layers.MaxPooling2D(2, data_format=CF), layers.Flatten(),
                            layers.Dense(4)])
    source = load(_save(seq, tmp_path / "seq.keras"))
    relaid = to_channels_last(source)
    assert relaid.transposes == [] and relaid.source.layout["pixels"] == "NHWC"
    _assert_same(source, relaid)


def test_tf_keras_functional_with_a_nested_sequential(tmp_path):
    import tf_keras
    from tf_keras import layers

    tf_keras.utils.set_random_seed(9)
    block = tf_keras.Sequential([
        layers.Conv2D(5, 3, padding="same", data_format=CF, activation="relu",
                      input_shape=(4, 10, 8), name="inner_conv"),
        layers.BatchNormalization(axis=1, name="inner_bn")], name="block")
    inp = tf_keras.Input((3, 10, 8), name="image")
    stem = layers.Conv2D(4, 1, data_format=CF, name="stem")(inp)
    x = layers.Concatenate(axis=1, name="concat")([stem, block(stem)])
    x = layers.GlobalAveragePooling2D(data_format=CF, name="gap")(x)
    out = layers.Dense(3, name="head")(x)
    model = tf_keras.Model(inp, out)
    rng = np.random.default_rng(2)
    for layer in model.layers + block.layers:
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") if "variance" in w.name
                           else rng.normal(0, 0.5, w.shape).astype("float32")
                           for w in layer.weights])
    path = tmp_path / "tfk.h5"
    model.save(path)
    source = load(path)
    assert source.framework == "tf_keras"
    relaid = to_channels_last(source)
    assert relaid.transposes == [] and {"inner_bn", "concat", "gap"} <= set(relaid.rewritten)
    _assert_same(source, relaid)


def test_keras_ops_in_the_graph_are_probed(tmp_path):
    """Keras 3 ops between layers: elementwise ones commute with the move and stay; one
    that reduces over the channel axis does not, and is refused by name."""
    import keras
    from keras import layers

    def model(body, name):
        keras.utils.set_random_seed(10)
        inp = keras.Input((3, 8, 6), name="image")
        x = body(layers.Conv2D(4, 3, data_format=CF, name="conv")(inp))
        out = layers.GlobalAveragePooling2D(data_format=CF, name="gap")(x)
        return load(_save(keras.Model(inp, out), tmp_path / f"{name}.keras"))

    source = model(lambda x: keras.ops.tanh(x) * 2.0 + 1.0, "elementwise")
    relaid = to_channels_last(source)
    assert relaid.transposes == []
    _assert_same(source, relaid)
    source = model(lambda x: x - keras.ops.mean(x, axis=1, keepdims=True), "reducing")
    with pytest.raises(UserInputError, match=r"layer 'mean(_\d+)?' \(Mean\) computes along"):
        to_channels_last(source)


@pytest.mark.slow
def test_keras_applications_mobilenet_v2_built_channels_first(tmp_path):
    """MobileNetV2 as Keras Applications builds it under image_data_format
    channels_first: BatchNormalization(axis=1), DepthwiseConv2D, ZeroPadding2D, ReLU(6),
    Add, GlobalAveragePooling2D; every layer moved, none left between transposes."""
    import keras

    keras.config.set_image_data_format(CF)
    try:
        model = keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(3, 64, 48),
                                               classes=6, classifier_activation=None)
    finally:
        keras.config.set_image_data_format("channels_last")
    rng = np.random.default_rng(12)
    fill_weights(model, rng)
    for layer in model.layers:  # gains that keep the signal alive through 50 layers
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([np.full_like(gamma, 3.0), rng.normal(0, 0.1, beta.shape)
                               .astype("float32"), np.zeros_like(mean), np.ones_like(var)])
    model.save(tmp_path / "mobilenet_cf.keras")
    source = load(tmp_path / "mobilenet_cf.keras")
    relaid = to_channels_last(source)
    assert relaid.transposes == [] and len(relaid.rewritten) > 100
    _assert_same(source, relaid, samples=2)


def test_normalization_per_channel_moves_with_its_statistics(tmp_path):
    import keras
    from keras import layers

    keras.utils.set_random_seed(13)
    inp = keras.Input((3, 8, 6), name="image")
    norm = layers.Normalization(axis=1, name="norm")
    norm.adapt(np.random.default_rng(1).normal([[[[5.0]], [[-2.0]], [[0.5]]]], 3.0, (64, 3, 8, 6)))
    x = layers.Conv2D(4, 3, data_format=CF, activation="tanh", name="conv")(norm(inp))
    out = layers.GlobalAveragePooling2D(data_format=CF, name="gap")(x)
    source = load(_save(keras.Model(inp, out), tmp_path / "norm.keras"))
    relaid = to_channels_last(source)
    assert relaid.transposes == [] and "norm" in relaid.rewritten
    _assert_same(source, relaid)
