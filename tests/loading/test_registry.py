"""The registry module asks the real Keras registries; its snapshot for ``inspect`` is what
they say today, and it never imports a module a config names outside Keras."""

from __future__ import annotations

import importlib
import inspect

import pytest

from modelport.loading import registry


def test_the_snapshot_inspect_reads_is_what_the_registries_say():
    from modelport.loading.registry_names import LAYER_CLASSES

    live = registry.layer_class_names()
    assert LAYER_CLASSES == live, (
        "registry_names.py is stale: run python -m modelport.loading.registry "
        f"(missing {sorted(live - LAYER_CLASSES)[:10]}, extra {sorted(LAYER_CLASSES - live)[:10]})")


def test_every_layer_class_of_keras_and_tf_keras_is_known():
    import keras
    import tf_keras

    unknown = [f"{m.__name__}.{n}" for m in (keras.layers, tf_keras.layers)
               for n in dir(m) if inspect.isclass(getattr(m, n))
               and not registry.is_known_class(n)]
    assert not unknown


@pytest.mark.parametrize("name, module", [
    ("TFOpLambda", None), ("SlicingOpLambda", None),  # tf_keras's serialization table
    ("LayerScale", None), ("LayerScale", "keras.src.applications.convnext"),
    ("NotEqual", "keras.src.ops.numpy"), ("NotEqual", None),
    ("GlorotUniform", "keras.initializers"), ("DTypePolicy", "keras"), ("Dense", "keras.layers"),
    ("Functional", "keras.src.models.functional"), ("Policy", None),  # tf_keras mixed precision
    ("keras.src.ops>Add", None),
])
def test_names_keras_resolves_are_known(name, module):
    assert registry.is_known_class(name, module)


@pytest.mark.parametrize("name, module", [
    ("L1Dist", None), ("TransformerBlock", "__main__"), ("Dense", "mypackage.layers"),
    ("LayerScale", "keras.src.applications.resnet"),  # that module does not define it
    ("Custom>TCN", None), ("keras.src.ops>NoSuchOp", None),
    ("ResNet", None),  # a function of tf_keras.applications, not a class
])
def test_names_nobody_provides_are_unknown(name, module):
    assert not registry.is_known_class(name, module)


def test_functions_keras_resolves_and_ones_it_does_not():
    assert registry.is_known_function("relu") and registry.is_known_function("swish")
    assert registry.is_known_function("gelu", "keras.src.activations.activations")
    assert not registry.is_known_function("collapse_hw")
    assert not registry.is_known_function("system", "os")
    assert registry.is_python_builtin("eval") and not registry.is_python_builtin("relu")


def test_a_module_outside_keras_is_never_imported(monkeypatch):
    imported = []
    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module",
                        lambda name, *a: imported.append(name) or real(name, *a))
    assert not registry.is_known_class("Thing", "json")
    assert registry.keras_object("json", "loads") is None
    assert registry.keras_object("os", "system") is None
    assert not registry.is_known_function("system", "os")
    assert imported == []


def test_keras_owned_classes_fill_what_each_reader_lacks():
    from keras.src.applications.convnext import LayerScale
    from keras.src.ops.numpy import Add
    from tf_keras.src.applications.convnext import LayerScale as TfkLayerScale

    names = ["LayerScale", "Dense", "keras.src.ops>Add", "L1Dist", "Mean"]
    # a bare "Mean" in a Keras 2 file is the author's layer, never keras.src.ops' Mean
    assert registry.keras_owned_classes(names, "keras3") == {
        "LayerScale": LayerScale, "keras.src.ops>Add": Add}
    assert registry.keras_owned_classes(names, "tf_keras") == {"LayerScale": TfkLayerScale}
