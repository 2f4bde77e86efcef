"""Refuse unsafe model content before any framework parses it.

We scan the raw file and config ourselves instead of trusting a framework's ``safe_mode``
(tf_keras ignores it for ``.h5``): HDF5 external links, external storage and virtual
datasets can make a reader open host files; module references in a Keras 3 config can name
any importable callable (``{"module": "os", "class_name": "function", "config": "system"}``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from modelport.errors import UnsafeModelError
from modelport.modelfile import RawModel

__all__ = ["check_config", "check_hdf5", "ALLOWED_MODULE_ROOTS"]

ALLOWED_MODULE_ROOTS = ("keras", "tf_keras", "tensorflow", "keras_nlp", "keras_hub", "keras_cv")
# modules whose mere mention in a model config is an attack, whatever the referenced name
DENIED_MODULE_ROOTS = {"os", "sys", "subprocess", "shutil", "builtins", "importlib", "pickle",
                       "marshal", "socket", "ctypes", "posix", "nt", "pty", "runpy", "code",
                       "codecs", "io", "pathlib", "urllib", "http", "requests", "webbrowser",
                       "multiprocessing", "threading", "signal", "tempfile", "glob", "types"}


def check_config(raw: RawModel, config: dict[str, Any], custom: dict[str, Any]) -> None:
    """Raise ``UnsafeModelError`` for content that would run code or read host files."""
    if raw.kind == "h5":
        check_hdf5(raw.path)
    allowed_modules = {getattr(obj, "__module__", None) for obj in custom.values()}
    allowed_modules.discard(None)
    bad = []
    for where, module, name, is_function in _module_refs(config):
        root = module.split(".")[0]
        if root in ALLOWED_MODULE_ROOTS:
            continue
        if name and (name in custom or name.rsplit(">", 1)[-1] in custom):
            continue  # the user registered it: it will be resolved from their objects
        if is_function and module == "builtins" and ">" in name:
            # Keras 3 writes registered functions as builtins + "package>name": a registry
            # lookup (missing ones are reported by objectcheck); nothing is imported
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


def _module_refs(node: Any, where: str = "config") -> Iterator[tuple[str, str, str, bool]]:
    if isinstance(node, dict):
        module = node.get("module")
        cls = node.get("class_name")
        if isinstance(module, str) and module and isinstance(cls, str):
            cfg = node.get("config")
            name = cfg if cls == "function" and isinstance(cfg, str) else cls
            if cls == "__lambda__":
                name = ""
            yield where, module, name, cls == "function"
        for key, value in node.items():
            if key in ("module", "function_type", "output_shape_type", "output_shape_module"):
                continue
            label = where
            if isinstance(value, dict) and isinstance(value.get("config"), dict):
                label = str(value["config"].get("name", where))
            yield from _module_refs(value, label)
    elif isinstance(node, list):
        for item in node:
            yield from _module_refs(item, where)


def check_hdf5(path: Path) -> None:
    """Refuse external links, external storage and virtual datasets, without following them."""
    import h5py

    problems: list[str] = []
    with h5py.File(path, "r") as f:

        def visit(name: str, link: Any) -> None:
            if isinstance(link, h5py.ExternalLink):
                problems.append(f"external link /{name} -> {link.filename}:{link.path}")
                return
            if isinstance(link, h5py.SoftLink):
                return  # points inside this file; targets are visited on their own
            obj = f.get(name, getlink=False)
            if isinstance(obj, h5py.Dataset):
                if obj.is_virtual:
                    sources = {s.file_name for s in obj.virtual_sources()}
                    problems.append(f"virtual dataset /{name} (reads {sorted(sources)})")
                elif obj.external:
                    files = [e[0] for e in obj.external]
                    problems.append(f"dataset /{name} stored in external file(s) {files}")

        _visit_links(f, visit)
    if problems:
        raise UnsafeModelError(
            f"{path}: HDF5 content that reads other files: {'; '.join(problems[:3])}; refused "
            "(a model file must be self-contained; re-save it with model.save())"
        )


def _visit_links(f: Any, fn: Any) -> None:
    """``visititems_links`` where h5py has it; else a manual walk that never follows
    external links."""
    if hasattr(f, "visititems_links"):
        f.visititems_links(fn)
        return
    import h5py

    def walk(group: Any, prefix: str) -> None:
        for key in group.keys():
            link = group.get(key, getlink=True)
            name = f"{prefix}{key}"
            fn(name, link)
            if isinstance(link, h5py.HardLink) and isinstance(group.get(key), h5py.Group):
                walk(group[key], name + "/")

    walk(f, "")
