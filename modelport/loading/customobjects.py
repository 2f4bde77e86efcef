"""Collect the user's custom objects from ``.py`` files, module names, dicts or modules.

This runs the *user's own* code (their ``--custom-objects`` file), never the model file's.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any, Iterable, Mapping

from modelport.core.errors import UserInputError

__all__ = ["collect_custom_objects", "alias_registered_names"]


def _public_names(module: types.ModuleType) -> dict[str, Any]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return {n: getattr(module, n) for n in names if hasattr(module, n)}


def _import_file(path: Path) -> types.ModuleType:
    mod_name = f"modelport_custom_{abs(hash(str(path.resolve()))) & 0xFFFFFFFF:x}_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise UserInputError(f"--custom-objects {path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    # let the file import its siblings (helpers next to it)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's file failed: say where, keep the cause
        sys.modules.pop(mod_name, None)
        raise UserInputError(
            f"--custom-objects {path}: importing it failed: {type(e).__name__}: {e}"
        ) from e
    finally:
        sys.path.remove(str(path.parent.resolve()))
    return module


def _load_one(item: Any) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, types.ModuleType):
        return _public_names(item)
    if isinstance(item, (str, Path)):
        text = str(item)
        path = Path(text)
        if text.endswith(".py") or path.exists():
            if not path.is_file():
                raise UserInputError(
                    f"--custom-objects {text}: no such file; pass a .py file or a module name"
                )
            return _public_names(_import_file(path))
        try:
            module = importlib.import_module(text)
        except ImportError as e:
            raise UserInputError(
                f"--custom-objects {text}: not a file and not an importable module ({e}); "
                "pass a .py path or a module on PYTHONPATH"
            ) from e
        return _public_names(module)
    if callable(item) and hasattr(item, "__name__"):
        return {item.__name__: item}
    raise UserInputError(
        f"custom objects: cannot use {type(item).__name__}; pass a dict, module, .py path or name"
    )


def collect_custom_objects(items: Any) -> dict[str, Any]:
    """Merge custom objects from one or several sources; later sources win.

    Args:
        items: ``None``, a dict, a module, a ``.py`` path, a module name, or a list of those.

    Returns:
        ``{name: object}`` with every public name (classes, functions, and module globals
        such as ``K``, ``tf``, ``np`` that Lambda functions refer to).
    """
    if items is None:
        return {}
    if isinstance(items, (str, Path, Mapping, types.ModuleType)) or callable(items):
        items = [items]
    merged: dict[str, Any] = {}
    for item in items:  # type: ignore[union-attr]
        merged.update(_load_one(item))
    return merged


def alias_registered_names(custom: dict[str, Any], referenced: Iterable[str]) -> dict[str, Any]:
    """Add ``package>Name`` keys the file references when ``Name`` was supplied bare.

    Keras 3 writes ``'mypkg>Scale'`` for registered classes; the user's file may define
    ``Scale`` without registering it (or under another package).
    """
    out = dict(custom)
    for ref in referenced:
        if ">" in ref and ref not in out:
            bare = ref.rsplit(">", 1)[1]
            if bare in out:
                out[ref] = out[bare]
    return out
