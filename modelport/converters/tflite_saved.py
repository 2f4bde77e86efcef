"""The TFLite converter over a SavedModel directory, without the work TensorFlow's public
entry point throws away.

``TFLiteConverter.from_saved_model`` loads the whole SavedModel into Python objects to
list its signatures, drops them, and ``convert()`` loads it a second time only to read its
(empty, unless saved with ``save_debug_info``) debug info; the conversion itself reads the
directory with the MLIR importer. On MobileNetV2 the two loads are 1.9 s of 3.5 s. The
converter is built here the way ``from_saved_model`` builds it, and the second load gets
the debug info read from the directory; the bytes are the public path's (checked by
``tests/converters/test_reuse.py``). On a TensorFlow whose internals differ, or a
SavedModel with debug info, the public path is used.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import types
from pathlib import Path
from typing import Any, Iterator

__all__ = ["saved_model_converter"]

log = logging.getLogger(__name__)

_PATCH = threading.Lock()  # ``lite._load`` is a module global: one conversion at a time


def saved_model_converter(directory: Path, signature: str) -> tuple[Any, Any]:
    """A ``TFLiteConverter`` over ``directory``'s ``signature`` and the context manager to
    call its ``convert()`` in.

    Returns:
        ``(converter, context)``: ``with context: converter.convert()``.
    """
    import tensorflow as tf

    fast = _direct(directory, signature)
    if fast is not None:
        return fast
    converter = tf.lite.TFLiteConverter.from_saved_model(str(directory),
                                                         signature_keys=[signature])
    return converter, contextlib.nullcontext()


def _direct(directory: Path, signature: str) -> tuple[Any, Any] | None:
    """``from_saved_model`` minus its first load, or ``None`` where that is not possible."""
    try:
        from tensorflow.lite.python import lite
        from tensorflow.python.saved_model import loader_impl

        saved, debug = loader_impl.parse_saved_model_with_debug_info(str(directory))
        if debug is not None and debug.ByteSize():
            return None  # real debug info: its function names need the real loader
        keys = {k for meta in saved.meta_graphs for k in meta.signature_def}
        if signature not in keys:
            return None  # the public path says so in its own words
        lite.TFLiteConverterBase._set_original_model_type(
            lite.conversion_metadata_fb.ModelType.TF_SAVED_MODEL)
        converter = lite.TFLiteSavedModelConverterV2(str(directory), {"serve"}, [signature])
        if not converter.saved_model_dir:
            return None
        stub = types.SimpleNamespace(graph_debug_info=debug)
        return converter, _loading_as(lite, stub)
    except (AttributeError, ImportError, TypeError) as e:  # another TensorFlow
        log.debug("TFLite: public from_saved_model (%s)", e)
        return None


@contextlib.contextmanager
def _loading_as(lite: Any, stub: Any) -> Iterator[None]:
    """``convert()``'s debug-info load answered with ``stub`` (its only use of it)."""
    with _PATCH:
        real = lite._load
        lite._load = lambda *args, **kwargs: stub
        try:
            yield
        finally:
            lite._load = real
