"""Refuse unsafe config content before any framework parses it.

We scan the config ourselves instead of trusting a framework's ``safe_mode`` (tf_keras
ignores it for ``.h5``): module references in a Keras 3 config can name any importable
callable (``{"module": "os", "class_name": "function", "config": "system"}``). The HDF5
structure (external links, external storage, virtual datasets) is scanned once, by the
child-process probe that reads the file (``h5probe``).
"""

from __future__ import annotations

from typing import Any, Iterator

from modelport.core.errors import UnsafeModelError
from modelport.loading.config import NOT_BUILT, is_keras_module, walk
from modelport.loading.registry import is_python_builtin
from modelport.loading.raw import RawModel

__all__ = ["check_config"]

# modules whose mere mention in a model config is an attack, whatever the referenced name
DENIED_MODULE_ROOTS = {"os", "sys", "subprocess", "shutil", "builtins", "importlib", "pickle",
                       "marshal", "socket", "ctypes", "posix", "nt", "pty", "runpy", "code",
                       "codecs", "io", "pathlib", "urllib", "http", "requests", "webbrowser",
                       "multiprocessing", "threading", "signal", "tempfile", "glob", "types"}


def check_config(raw: RawModel, config: dict[str, Any], custom: dict[str, Any]) -> None:
    """Raise ``UnsafeModelError`` for config content that would run code."""
    allowed_modules = {getattr(obj, "__module__", None) for obj in custom.values()}
    allowed_modules.discard(None)
    bad = []
    for where, module, name, is_function in _module_refs(config):
        root = module.split(".")[0]
        if is_keras_module(module):
            continue
        if name and (name in custom or name.rsplit(">", 1)[-1] in custom):
            continue  # the user registered it: it will be resolved from their objects
        if is_function and module == "builtins" and not is_python_builtin(name):
            # Keras 3 writes every plain function as module "builtins": it looks the name
            # up among its activations, losses... and the custom objects, never imports
            # it; a missing one is reported by objectcheck. A Python builtin (eval, exec,
            # open) is never a model's function.
            continue
        if root not in DENIED_MODULE_ROOTS and (module in allowed_modules or not is_function
                                                or module == "__main__"):
            # a class from the user's own package: resolved from --custom-objects or
            # reported as missing; nothing imports its module
            continue
        bad.append(f"{where}: {module}.{name}" if name else f"{where}: {module}")
    if bad:
        raise UnsafeModelError(
            f"{raw.path}: the config references code outside Keras/TensorFlow "
            f"({'; '.join(bad[:5])}); refused. If these are your own objects, pass them with "
            "--custom-objects FILE.py"
        )


def _module_refs(config: Any) -> Iterator[tuple[str, str, str, bool]]:
    """``(layer, module, name, is_function)`` for every object that names its module."""
    for path, node in walk(config, skip=NOT_BUILT):  # never read with compile=False
        if not isinstance(node, dict):
            continue
        module = node.get("module")
        cls = node.get("class_name")
        if isinstance(module, str) and module and isinstance(cls, str):
            cfg = node.get("config")
            name = cfg if cls == "function" and isinstance(cfg, str) else cls
            if cls == "__lambda__":
                name = ""
            yield path.rsplit("/", 1)[-1] or "config", module, name, cls == "function"
