"""``view``: serve an artifact in Netron, on loopback unless the user insists otherwise.

Netron's server answers ``/data/<anything>`` with any file in the served model's directory.
We therefore serve the model's bytes from memory with an empty staging directory as its
"directory" (plus the companion files the model needs, such as an ONNX external-data file),
so the server exposes that model and nothing beside it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.core.errors import MissingDependencyError, ModelFileError, UserInputError
from modelport.core.manifest import MANIFEST_SUFFIX, read_manifest

__all__ = ["Viewer", "start", "wait", "servable_file", "is_loopback", "LOOPBACK"]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


@dataclass
class Viewer:
    """A running Netron server; ``stop()`` (or leaving a ``with`` block) shuts it down."""

    source: Path  # the file Netron shows
    host: str
    port: int
    _stage: Any = field(repr=False, default=None)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def model_url(self) -> str:
        """Where the model's bytes are served (what Netron's page fetches)."""
        return f"{self.url}data/{self.source.name}"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def running(self) -> bool:
        import netron

        return bool(netron.status(self.address))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving; returns once Netron's server thread has finished (or ``timeout``)."""
        import netron

        netron.stop(self.address)
        # netron.stop only signals its thread, which notices within its 0.25 s poll
        deadline = time.monotonic() + timeout
        while netron.status(self.address) and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._stage is not None:
            self._stage.cleanup()
            self._stage = None

    def __enter__(self) -> "Viewer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses; a hostname counts only if every
    address it resolves to is loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def servable_file(path: str | Path) -> Path:
    """The one file Netron should open for ``path``.

    An artifact directory opens as the file its format names (a SavedModel's
    ``saved_model.pb``); a ``convert`` output directory (or its manifest) as its first
    present artifact in the order Netron draws best (ONNX, TFLite, .pb, SavedModel).
    """
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{p}: no such file or directory; check the path")
    if p.is_file() and p.name.endswith(MANIFEST_SUFFIX):
        return _from_manifest(p)
    if p.is_dir():
        from modelport import converters

        fmt = converters.detect(p)
        if fmt is not None:  # an artifact that is a directory: the file that draws it
            return converters.get(fmt).view_file(p)
        manifests = sorted(p.glob("*" + MANIFEST_SUFFIX))
        if len(manifests) == 1:
            return _from_manifest(manifests[0])
        hint = ("pass one of its artifacts" if manifests else
                "pass a model file, a SavedModel directory or a 'modelport convert' output")
        raise UserInputError(f"{p}: cannot pick a model in this directory; {hint}")
    return p


def _from_manifest(manifest: Path) -> Path:
    from modelport import converters

    try:
        # per format its float32 artifact first, then its quantized variants
        records = sorted((a for a in read_manifest(manifest).artifacts if a.ok),
                         key=lambda a: a.quantization is not None)
    except (ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"{manifest}: not a readable modelport manifest ({e})") from None
    for fmt in converters.by_view_rank():  # the format Netron draws most completely first
        for record in (r for r in records if r.format == fmt):
            if (manifest.parent / record.path).exists():
                return servable_file(manifest.parent / record.path)
    raise UserInputError(f"{manifest}: no converted artifact is present beside it; "
                         "re-run 'modelport convert'")


def _companions(model: Path) -> list[Path]:
    """Files Netron fetches next to the model: a ``<name>.data`` side file, and the files
    the model's format says it reads (an ONNX graph's external tensors)."""
    from modelport import converters

    found = []
    side = model.with_name(model.name + ".data")
    if side.is_file():
        found.append(side)
    fmt = converters.detect(model)
    if fmt is not None:
        found += [f for f in converters.get(fmt).companions(model) if f not in found]
    return found


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another filesystem, or links not allowed
        shutil.copy2(src, dest)


def start(path: str | Path, host: str = LOOPBACK, port: int | None = None,
          browse: bool = False, allow_remote: bool = False) -> Viewer:
    """Serve ``path`` in Netron and return the running ``Viewer``.

    Args:
        path: a model file, SavedModel directory, or ``convert`` output directory.
        host: address to listen on; loopback unless ``allow_remote``.
        port: port to listen on; ``None`` lets Netron pick (8080 when free), 0 any free port.
        browse: open the page in a web browser.
        allow_remote: permit a non-loopback ``host`` (anyone reaching it can download the
            model).

    Raises:
        UserInputError: a non-loopback host without ``allow_remote``, or the port is taken.
        MissingDependencyError: netron is not installed.
    """
    if not is_loopback(host):
        if not allow_remote:
            raise UserInputError(
                f"--host {host} is not a loopback address: anyone who can reach it could "
                "download the model; pass --allow-remote to serve it there anyway")
        log.warning("serving on %s: the model is downloadable by anyone who can reach it", host)
    source = servable_file(path)
    try:
        import netron
    except ImportError as e:
        raise MissingDependencyError(f"view needs netron: pip install netron ({e})") from e
    stage = tempfile.TemporaryDirectory(prefix="modelport-view-")
    staged = Path(stage.name) / source.name
    try:
        for extra in _companions(source):
            _link_or_copy(extra, Path(stage.name) / extra.name)
        data = bytearray(source.read_bytes())  # a bytearray, so Netron serves it as raw bytes
        address = _serve(netron, str(staged), data, (host, port))
    except BaseException:
        stage.cleanup()
        raise
    viewer = Viewer(source, address[0], int(address[1]), stage)
    if browse:
        import webbrowser

        webbrowser.open(viewer.url)
    return viewer


def _serve(netron: Any, staged: str, data: bytearray, address: tuple[str, int | None]) -> Any:
    root = logging.getLogger()
    # netron.serve configures root logging at INFO when nothing is configured; a library
    # must not do that to its caller, so give it a handler to find for the call's duration
    guard = None if root.hasHandlers() else logging.NullHandler()
    if guard is not None:
        root.addHandler(guard)
    try:
        return netron.serve(staged, data, address=address, browse=False)
    except OSError as e:
        raise UserInputError(
            f"cannot listen on {address[0]}:{address[1]} ({e.strerror or e}); pick another "
            "--port, or omit it to let modelport choose") from None
    finally:
        if guard is not None:
            root.removeHandler(guard)


def wait(viewer: Viewer, poll: float = 0.2) -> None:
    """Block until the server stops or the user presses Ctrl-C; then stop it cleanly."""
    try:
        while viewer.running():
            time.sleep(poll)
    except KeyboardInterrupt:
        pass
    finally:
        viewer.stop()
