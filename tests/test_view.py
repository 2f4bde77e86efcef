"""``view`` serves the artifact in Netron on loopback, and only the artifact; it stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from modelport.cli import main
from modelport.core.errors import UserInputError
from modelport.view import is_loopback, servable_file, start

# no proxy: a proxy from the environment would otherwise answer for 127.0.0.1
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with _OPENER.open(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Nothing listens there: a server could bind it (closed connections may linger in
    TIME_WAIT, which SO_REUSEADDR allows, as every server sets it)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def model(tmp_path) -> Path:
    """A tiny ONNX file, with a file beside it that must never be served."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g", [x], [y])
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph), str(path))
    (tmp_path / "secret.txt").write_text("not for the network")
    return path


def test_serves_page_and_model_bytes_then_stops(model):
    port = free_port()
    with start(model, port=port) as viewer:
        assert viewer.url == f"http://127.0.0.1:{port}/"
        status, page = fetch(viewer.url)
        assert status == 200 and b'<meta name="file" content="/data/tiny.onnx">' in page
        status, data = fetch(viewer.model_url)
        assert status == 200 and data == model.read_bytes()
        assert fetch(viewer.url + "data/secret.txt")[0] == 404  # siblings stay private
        assert viewer.running()
    assert not viewer.running()
    with pytest.raises(urllib.error.URLError):
        _OPENER.open(viewer.url, timeout=5)
    assert port_is_free(port)


def test_cli_view_prints_url_serves_and_stops_on_ctrl_c(model):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelport", "view", str(model), "--port", str(port),
         "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()))
        reader.start()
        reader.join(30)
        assert line and line[0].strip().endswith(f"http://127.0.0.1:{port}/"), \
            (line, proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
        url = line[0].split()[-1]
        status, page = fetch(url)
        assert status == 200 and b"/data/tiny.onnx" in page
        assert fetch(url + "data/tiny.onnx") == (200, model.read_bytes())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err
    assert port_is_free(port)


def test_non_loopback_host_needs_allow_remote(model, capsys):
    assert main(["view", str(model), "--host", "0.0.0.0", "--no-browser"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    with start(model, host="0.0.0.0", port=0, allow_remote=True) as viewer:
        assert fetch(f"http://127.0.0.1:{viewer.port}/data/tiny.onnx")[1] == model.read_bytes()


def test_a_taken_port_is_a_user_error(model):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(UserInputError, match="another"):
            start(model, port=busy.getsockname()[1])


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.0.1", True), ("localhost", True), ("::1", True),
    ("0.0.0.0", False), ("10.1.2.3", False), ("::", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_directories_open_their_model(tmp_path, model):
    from modelport.core.records import ArtifactRecord
    from modelport.core.manifest import Manifest

    sm = tmp_path / "m.savedmodel"
    sm.mkdir()
    (sm / "saved_model.pb").write_bytes(b"\x08\x01")
    assert servable_file(sm) == sm / "saved_model.pb"
    with start(sm, port=0) as viewer:
        assert fetch(viewer.url + "data/saved_model.pb") == (200, b"\x08\x01")

    out = tmp_path / "out"
    out.mkdir()
    Manifest({}, {}, {}, [ArtifactRecord("tflite", "m.tflite", [], []),
                          ArtifactRecord("onnx", "m.onnx", [], [])]).write(out / "m.manifest.json")
    (out / "m.tflite").write_bytes(b"TFL3")
    assert servable_file(out) == out / "m.tflite"  # the ONNX file is not there
    (out / "m.onnx").write_bytes(model.read_bytes())
    assert servable_file(out) == out / "m.onnx"
    with pytest.raises(UserInputError):
        servable_file(tmp_path)  # neither a SavedModel nor a convert output


def test_a_convert_output_opens_the_float_artifact_not_a_quantized_variant(tmp_path, model):
    from modelport.core.manifest import Manifest
    from modelport.core.records import ArtifactRecord

    out = tmp_path / "out"
    out.mkdir()
    variant = ArtifactRecord("onnx", "m.int8.onnx", [], [],
                             details={"quantization": {"mode": "int8"}})
    Manifest({}, {}, {}, [variant, ArtifactRecord("onnx", "m.onnx", [], [])]).write(
        out / "m.manifest.json")
    for name in ("m.onnx", "m.int8.onnx"):
        (out / name).write_bytes(model.read_bytes())
    assert servable_file(out) == out / "m.onnx"
    (out / "m.onnx").unlink()  # only the variant is left: it is shown rather than nothing
    assert servable_file(out) == out / "m.int8.onnx"
