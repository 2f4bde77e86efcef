"""modelport: port Keras models to SavedModel, frozen .pb, TFLite and ONNX, and prove it.

Public API (heavy frameworks are imported only when a function is called)::

    import modelport
    manifest = modelport.convert("model.h5", out_dir="out", custom_objects="objs.py")
    report = modelport.validate("model.h5", ["out"])
    info = modelport.inspect("out/model.onnx")
    source = modelport.load("model.h5")
    maps = modelport.name_maps("model.h5", ["out"])        # layer output -> tensor, per artifact
    modelport.plot("out/model.tflite", "graph.svg")       # a picture of the graph
    report = modelport.validate("model.h5", ["out"], layers=True)  # layer-wise drift
"""

from __future__ import annotations

from typing import Any

from modelport.core.errors import ModelportError

__all__ = ["convert", "validate", "inspect", "load", "name_maps", "plot", "ModelportError",
           "__version__"]

__version__ = "0.1.0"


def convert(model: Any, out_dir: Any = "out", **kwargs: Any):
    """See :func:`modelport.conversion.convert`."""
    from modelport.conversion import convert as _convert

    return _convert(model, out_dir, **kwargs)


def load(path: Any, **kwargs: Any):
    """See :func:`modelport.loading.source.load`."""
    from modelport.loading.source import load as _load

    return _load(path, **kwargs)


def validate(model: Any, artifacts: Any, **kwargs: Any):
    """See :func:`modelport.validators.validation.validate`."""
    from modelport.validators.validation import validate as _validate

    return _validate(model, artifacts, **kwargs)


def inspect(path: Any, **kwargs: Any):
    """See :func:`modelport.inspection.inspect`."""
    from modelport.inspection import inspect as _inspect

    return _inspect(path, **kwargs)


def name_maps(model: Any, artifacts: Any, **kwargs: Any):
    """See :func:`modelport.inspection.namemap.name_maps`."""
    from modelport.inspection.namemap import name_maps as _name_maps

    return _name_maps(model, artifacts, **kwargs)


def plot(path: Any, dest: Any, **kwargs: Any):
    """See :func:`modelport.inspection.plot.plot`."""
    from modelport.inspection.plot import plot as _plot

    return _plot(path, dest, **kwargs)
