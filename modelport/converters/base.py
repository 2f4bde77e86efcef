"""What every format module shares: the format-module contract and the runner base class.

A format module (``savedmodel.py``, ``frozen_pb.py``, ``tflite.py``, ``onnx.py``) satisfies
``FormatModule``:

- ``NAME`` and ``SUFFIX`` (the registry is built from them), ``ALIASES`` (other names
  users type), ``VIEW_RANK`` (which artifact of a convert output Netron opens first) and
  ``BYTE_DETERMINISTIC`` (``True``, or why not);
- ``detect(path) -> bool``: whether a path on disk is an artifact of this format;
- ``view_file(path) -> Path``: the file a graph viewer opens (a SavedModel's graph);
- ``companions(path) -> list[Path]``: other files the artifact reads (ONNX external data);
- ``routes(source, serving, options) -> list[Route]``: the ways it knows to write the
  artifact, best first; each route's ``write(dest)`` writes one candidate at ``dest`` and
  returns its record (the conversion pipeline checks each candidate against the Keras model
  and takes the next route when one fails to convert or to match; a route with an
  ``offload`` may be run in a helper process beside the other formats);
- optionally ``OFFLOAD = True``: its first route has an ``offload``, so ``convert``
  starts a helper process for it before loading the model;
- optionally ``published(serving, path)``: called once the format's checked artifact of
  ``serving`` is under its final name, so a later format may convert from it rather than
  write the same thing again (TFLite converts from the SavedModel artifact);
- ``load(path, threads=None) -> Runner``: open the artifact in the runtime a user would
  deploy it with (``threads``: that runtime's intra-op threads; ``None``: its default);
  ``RUNTIME`` names the module of that runtime (its version is reported with benchmarks);
- ``describe(path, nodes=True) -> Description``: names a user must type to feed and fetch.

A format with quantized variants (``convert --quantize``) also has ``QUANTIZE`` (mode ->
description), ``CALIBRATED`` (the modes that need representative inputs) and
``quantized_routes(source, serving, options, mode, base) -> list[Route]``: the routes to
that variant, where ``base`` is the format's checked float32 artifact, if any.

Heavy frameworks are imported inside those functions, never at module import time, so
``modelport inspect x.onnx`` does not import TensorFlow.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from modelport.core.errors import ConversionError, UserInputError
from modelport.core.records import (
    ArtifactRecord, Calibration, ConvertOptions, Description, TensorInfo,
)

if TYPE_CHECKING:  # pragma: no cover
    from modelport.loading.serving import Serving
    from modelport.loading.source import SourceModel

__all__ = ["FormatModule", "Route", "Offload", "Runner", "np_dtype", "OPTIONAL", "check_mode"]

# ``TensorInfo.extra`` of a runner input that may be fed but need not be (a ``.pb``
# placeholder no output depends on)
OPTIONAL = {"optional": True}


@dataclass(frozen=True)
class Offload:
    """A route's conversion as a job another process can run (``convert`` runs it beside
    the other formats): ``prepare(dest)`` returns ``(function, args)``, an importable
    function and picklable arguments whose call writes the same candidate at ``dest`` and
    returns a picklable value; ``finish(dest, value)`` makes the record from it here."""

    prepare: Callable[[Path], tuple[Callable[..., Any], tuple]]
    finish: Callable[[Path, Any], ArtifactRecord]


@dataclass(frozen=True)
class Route:
    """One way to write an artifact: ``write(dest)`` writes a candidate at ``dest`` (a
    path inside a private staging directory) and returns its record, or raises when this
    route cannot convert the model. ``offload``: the same conversion as a job for
    another process, when it needs nothing but what can be sent there."""

    name: str
    description: str  # one line, shown in the manifest
    write: Callable[[Path], ArtifactRecord]
    offload: Offload | None = None


class Runner(abc.ABC):
    """An artifact opened in its runtime. Feeds and results are bound by tensor name."""

    format: str = ""

    def __init__(self, path: str, inputs: list[TensorInfo] | None = None,
                 outputs: list[TensorInfo] | None = None) -> None:
        self.path = path
        self._inputs = list(inputs or [])
        self._outputs = list(outputs or [])

    @property
    def inputs(self) -> list[TensorInfo]:
        """The artifact's feedable inputs, by the names a user passes."""
        return self._inputs

    @property
    def outputs(self) -> list[TensorInfo]:
        """The artifact's outputs, by the names a user fetches."""
        return self._outputs

    @property
    def fixed_batch(self) -> int | None:
        """The batch size baked into the artifact, if any (a TFLite RNN export has 1)."""
        return None

    def _checked(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        expected = [t.name for t in self.inputs]
        missing = [t.name for t in self.inputs if t.name not in feeds
                   and not t.extra.get("optional")]
        unknown = [n for n in feeds if n not in expected]
        if missing or unknown:
            raise UserInputError(
                f"{self.format} artifact {self.path}: feeds do not match its inputs "
                f"(missing {missing}, unknown {unknown}); available inputs: {expected}"
            )
        return {n: np.asarray(feeds[n]) for n in expected if n in feeds}

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; checks that every required input is fed and nothing unknown is
        (optional inputs may be fed or not)."""
        return self.run_impl(self._checked(feeds))

    @abc.abstractmethod
    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Format-specific execution; returns ``{output_name: array}``."""

    # -- optional capability: intermediate tensors (layer-wise drift, the name map)

    @property
    def exposes_tensors(self) -> bool:
        """Whether ``tensors()`` and ``run_with()`` are implemented for this format."""
        return type(self).run_with_impl is not Runner.run_with_impl

    def tensors(self) -> list[TensorInfo]:
        """The intermediate tensors ``run_with`` can return, in execution order: computed
        values that depend on an input (weights and shape arithmetic left out), float or
        quantized. ``extra`` holds ``op`` (the producing op's type), ``inputs`` (the names
        of the tensors that op reads), ``order`` and, where the format has them,
        ``index`` (TFLite tensor index) and ``quantization`` (``scale``, ``zero_point``)."""
        return []

    def io_tensors(self) -> tuple[dict[str, str], dict[str, str]]:
        """The names of the graph tensors behind the inputs and outputs, as ``tensors()``
        names them: ``(input name -> tensor, output name -> tensor)``."""
        return {t.name: t.name for t in self.inputs}, {t.name: t.name for t in self.outputs}

    def run_with(self, feeds: Mapping[str, np.ndarray],
                 extra: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Run one batch and also return the intermediate tensors named in ``extra`` (names
        from ``tensors()``), quantized ones dequantized to float32.

        Returns:
            ``(outputs by output name, extras by tensor name)``.
        """
        return self.run_with_impl(self._checked(feeds), list(extra))

    def run_with_impl(self, feeds: dict[str, np.ndarray], extra: list[str],
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        raise NotImplementedError(f"the {self.format} runner cannot expose intermediate tensors")


class FormatModule(Protocol):
    """The contract of a module in ``converters/`` (checked by the registry's tests)."""

    NAME: str
    SUFFIX: str
    ALIASES: tuple[str, ...]
    VIEW_RANK: int
    BYTE_DETERMINISTIC: bool | str
    RUNTIME: str

    def detect(self, path: Path) -> bool: ...

    def view_file(self, path: Path) -> Path: ...

    def companions(self, path: Path) -> list[Path]: ...

    def routes(self, source: "SourceModel", serving: "Serving",
               options: ConvertOptions) -> list[Route]: ...

    def load(self, path: str | Path, threads: int | None = None) -> Runner: ...

    def describe(self, path: str | Path, nodes: bool = True) -> Description: ...


def np_dtype(name: Any) -> str:
    """A numpy dtype name for any framework's dtype object or string."""
    try:
        return str(np.dtype(getattr(name, "as_numpy_dtype", name)))
    except TypeError:
        return str(name)


def check_mode(fmt: str, modes: Mapping[str, str], calibrated: Any, mode: str,
               calibration: Calibration | None) -> None:
    """Guard a format's ``quantized_routes`` (the pipeline asks for calibration data before
    converting anything; this guards the API).

    Raises:
        ConversionError: ``mode`` is not one of ``modes``, or needs calibration data and
            none was given.
    """
    if mode not in modes:
        raise ConversionError(f"unknown {fmt} quantization mode {mode!r}; choose from "
                              f"{', '.join(modes)}")
    if mode in calibrated and calibration is None:
        raise ConversionError(f"--quantize {mode} needs calibration data: pass --calibration "
                              "FILE.npz|DIR or --synthetic-calibration")
