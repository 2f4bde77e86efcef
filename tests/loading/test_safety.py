"""Safety checks on the config (module references) and on the HDF5 structure (links and
storage that read other files), exercised directly."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.core.errors import UnsafeModelError
from modelport.loading.hdf5 import unsafe_content
from modelport.loading.raw import RawModel
from modelport.loading.safety import check_config


def _config(activation):
    return {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"class_name": "Dense", "name": "dense_1",
         "config": {"name": "dense_1", "activation": activation}}]}}


def _raw(config):
    return RawModel(Path("m.keras"), "keras", config, "3.8.0")


def _fn(module, name):
    return {"module": module, "class_name": "function", "config": name,
            "registered_name": name}


@pytest.mark.parametrize("ref", [
    _fn("os", "system"), _fn("subprocess", "run"), _fn("builtins", "eval"),
    _fn("builtins", "exec"), _fn("builtins", "open"), _fn("builtins", "__import__"),
    _fn("mypackage.helpers", "steal"),
])
def test_code_outside_keras_is_refused_and_located(ref):
    config = _config(ref)
    with pytest.raises(UnsafeModelError, match=f"dense_1: {ref['module']}.{ref['config']}"):
        check_config(_raw(config), config, {})


@pytest.mark.parametrize("ref", [
    "relu", _fn("keras.activations", "relu"), _fn("keras.src.activations", "gelu"),
    # Keras 3 writes registered functions as builtins + "package>name": a registry lookup
    _fn("builtins", "my_pkg>swish"),
])
def test_keras_and_registry_references_pass(ref):
    config = _config(ref)
    check_config(_raw(config), config, {})


def test_a_plain_function_keras3_wrote_under_builtins_is_not_called_unsafe():
    # Keras 3 writes every plain function (the author's collapse_hw) as module "builtins"
    # and only looks the name up; a missing one is for objectcheck to report, by name
    config = _config(_fn("builtins", "collapse_hw"))
    check_config(_raw(config), config, {})


def test_the_compile_config_is_never_checked_because_it_is_never_read():
    config = _config("relu")
    config["compile_config"] = {"loss": _fn("os", "system"), "metrics": [_fn("builtins", "rmse")]}
    check_config(_raw(config), config, {})
    config["config"]["layers"][0]["config"]["activation"] = _fn("os", "system")
    with pytest.raises(UnsafeModelError, match="dense_1: os.system"):
        check_config(_raw(config), config, {})


def test_a_users_own_object_passes():
    def steal(x):
        return x

    steal.__module__ = "mypackage.helpers"
    config = _config(_fn("mypackage.helpers", "steal"))
    check_config(_raw(config), config, {"steal": steal})


def _h5(path: Path, build) -> Path:
    import h5py

    with h5py.File(path, "w") as f:
        f["model_weights/dense/kernel"] = [[1.0, 2.0]]
        build(f, h5py)
    return path


def test_hdf5_scan_finds_each_kind_of_outside_read(tmp_path):
    import h5py

    def link(f, h5):
        f["model_weights/leak"] = h5.ExternalLink("/etc/passwd", "/")

    def virtual(f, h5):
        layout = h5.VirtualLayout(shape=(4,), dtype="f4")
        layout[:] = h5.VirtualSource("/etc/hostname", "x", shape=(4,))
        f.create_virtual_dataset("v", layout)

    def external(f, h5):
        f.create_dataset("e", shape=(4,), dtype="u1", external=[("/etc/hostname", 0, 4)])

    for name, build, expect in [("l.h5", link, "external link /model_weights/leak -> /etc/passwd"),
                                ("v.h5", virtual, "virtual dataset /v"),
                                ("e.h5", external, "dataset /e stored in external file")]:
        with h5py.File(_h5(tmp_path / name, build), "r") as f:
            problems = unsafe_content(f)
        assert len(problems) == 1 and expect in problems[0], problems
    with h5py.File(_h5(tmp_path / "ok.h5", lambda f, h5: None), "r") as f:
        assert unsafe_content(f) == []
