"""The CLI starts fast, and inspecting ONNX, TFLite and Keras files needs no TensorFlow.

The artifacts here are built by hand (onnx.helper, the TFLite flatbuffer schema, h5py and
zipfile), so this module itself never imports TensorFlow or Keras. The inspections run in
a subprocess whose import system refuses ``tensorflow``, ``keras``, ``tf_keras`` and
``tf2onnx`` as if they were not installed, and records any attempt.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

HEAVY = ("tensorflow", "keras", "tf_keras", "tf2onnx", "numpy", "onnx", "onnxruntime", "h5py")
HELP_BUDGET_S = 1.0  # the "well under a second"; --help takes ~0.1 s here

BLOCKER = r'''
import importlib.abc, json, sys
BLOCKED = {"tensorflow", "keras", "tf_keras", "tf2onnx"}
attempts = []
class _Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None
sys.meta_path.insert(0, _Refuse())
from modelport.cli import main
rc = main(sys.argv[1:])
sys.stdout.flush()
sys.stderr.write("\nBLOCKED-ATTEMPTS " + json.dumps(attempts) + "\n")
sys.exit(rc)
'''


def run_blocked(*argv: str) -> tuple[int, str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", BLOCKER, *argv], capture_output=True,
                          text=True, timeout=120)
    marker = proc.stderr.rsplit("BLOCKED-ATTEMPTS ", 1)
    assert len(marker) == 2, proc.stderr
    return proc.returncode, proc.stdout, json.loads(marker[1])


def inspect_json(path: Path, *flags: str) -> dict:
    rc, out, attempts = run_blocked("inspect", str(path), "--json", *flags)
    assert rc == 0, out
    assert attempts == [], f"inspect tried to import {attempts}"
    return json.loads(out)


# ----------------------------------------------------------------------------- hand-built files


def make_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    left = helper.make_tensor_value_info("left", TensorProto.FLOAT, ["batch", 4])
    right = helper.make_tensor_value_info("right", TensorProto.FLOAT, ["batch", 4])
    total = helper.make_tensor_value_info("total", TensorProto.FLOAT, ["batch", 4])
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [4], [0.5, -1.0, 2.0, 0.0])
    graph = helper.make_graph(
        [helper.make_node("Add", ["left", "right"], ["sum"], name="adder"),
         helper.make_node("Add", ["sum", "bias"], ["biased"], name="bias_add"),
         helper.make_node("Relu", ["biased"], ["total"], name="relu")],
        "tiny", [left, right], [total], initializer=[bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def make_tflite(path: Path, flex: bool = False) -> Path:
    """An int8 ADD (quantized tensors) with signature ``left, right -> total``; ``flex``
    swaps the op for the custom ``FlexAddV2`` that needs the Flex delegate."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    def tensor(name: str, buf: int, scale: float, zero_point: int):
        t = s.TensorT()
        t.name, t.shape, t.shapeSignature = name, [1, 4], [-1, 4]
        t.type, t.buffer = s.TensorType.INT8, buf
        t.quantization = s.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [scale], [zero_point]
        return t

    def tensor_map(name: str, index: int):
        m = s.TensorMapT()
        m.name, m.tensorIndex = name, index
        return m

    code = s.OperatorCodeT()
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1], [2]
    if flex:
        code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.CUSTOM
        code.customCode = "FlexAddV2"
    else:
        code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.ADD
        code.version = 2
        op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.AddOptions, s.AddOptionsT()
    sub = s.SubGraphT()
    sub.tensors = [tensor("in_left", 1, 0.5, 1), tensor("in_right", 2, 0.25, -2),
                   tensor("out_sum", 3, 1.0, 0)]
    sub.inputs, sub.outputs, sub.operators = [0, 1], [2], [op]
    sig = s.SignatureDefT()
    sig.signatureKey, sig.subgraphIndex = "serving_default", 0
    sig.inputs = [tensor_map("left", 0), tensor_map("right", 1)]
    sig.outputs = [tensor_map("total", 2)]
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [sub]
    model.signatureDefs, model.buffers = [sig], [s.BufferT() for _ in range(4)]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def _keras2_config() -> dict:
    """What tf.keras 2 writes for ``Model([feat, aux], [out, out])`` with a custom layer."""
    return {"class_name": "Functional", "config": {
        "name": "hand", "input_layers": [["feat", 0, 0], ["aux", 0, 0]],
        "output_layers": [["out", 0, 0], ["out", 0, 0]],
        "layers": [
            {"class_name": "InputLayer", "name": "feat", "inbound_nodes": [],
             "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "feat"}},
            {"class_name": "InputLayer", "name": "aux", "inbound_nodes": [],
             "config": {"batch_input_shape": [None, 4], "dtype": "int32", "name": "aux"}},
            {"class_name": "MyBlend", "name": "blend", "config": {"name": "blend"},
             "inbound_nodes": [[["feat", 0, 0, {}], ["aux", 0, 0, {}]]]},
            {"class_name": "Dense", "name": "out", "config": {"name": "out", "units": 2,
                                                               "dtype": "float32"},
             "inbound_nodes": [[["blend", 0, 0, {}]]]},
        ]}}


def make_h5(path: Path) -> Path:
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(_keras2_config()).encode()
        f.attrs["keras_version"] = b"2.4.0"
        f.attrs["backend"] = b"tensorflow"
        f.create_group("model_weights")
    return path


def make_keras(path: Path) -> Path:
    config = _keras2_config()
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", json.dumps({"keras_version": "3.1.0"}))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("startup")
    return {"onnx": make_onnx(tmp / "tiny.onnx"), "tflite": make_tflite(tmp / "tiny.tflite"),
            "flex": make_tflite(tmp / "flex.tflite", flex=True), "h5": make_h5(tmp / "hand.h5"),
            "keras": make_keras(tmp / "hand.keras")}


# ----------------------------------------------------------------------------- startup


def test_help_answers_well_under_a_second():
    script = Path(sys.executable).with_name("modelport")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "modelport"]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        proc = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60)
        times.append(time.perf_counter() - t0)
        assert proc.returncode == 0 and "inspect" in proc.stdout and "view" in proc.stdout
    assert min(times) < HELP_BUDGET_S, f"modelport --help took {min(times):.2f}s at best"


@pytest.mark.parametrize("argv", [["--help"], ["inspect", "--help"], ["view", "--help"]])
def test_help_imports_no_framework(argv):
    code = ("import sys\nfrom modelport.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    pass\n"
            f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("LOADED []"), proc.stdout[-300:]


# ----------------------------------------------------------------------------- no TensorFlow


def test_onnx_inspects_and_runs_by_names_without_tensorflow(files):
    import onnx
    import onnxruntime as ort

    d = inspect_json(files["onnx"])
    g = onnx.load(str(files["onnx"])).graph
    assert [t["name"] for t in d["inputs"]] == ["left", "right"]  # "bias" is an initializer
    assert [t["name"] for t in d["outputs"]] == ["total"]
    assert [t["shape"] for t in d["inputs"]] == [["batch", 4], ["batch", 4]]
    assert [(n["name"], n["op"], n["inputs"]) for n in d["nodes"]] == \
        [(n.name, n.op_type, list(n.input)) for n in g.node]
    sess = ort.InferenceSession(str(files["onnx"]), providers=["CPUExecutionProvider"])
    feeds = {t["name"]: np.arange(8, dtype="float32").reshape(2, 4) - 3 for t in d["inputs"]}
    (total,) = sess.run([t["name"] for t in d["outputs"]], feeds)
    np.testing.assert_allclose(total, np.maximum(2 * feeds["left"] + [0.5, -1, 2, 0], 0))


def test_tflite_tensors_and_quantization_match_the_interpreter(files):
    from ai_edge_litert.interpreter import Interpreter

    d = inspect_json(files["tflite"])
    interp = Interpreter(model_path=str(files["tflite"]))
    assert interp.get_signature_list() == {"serving_default": {
        "inputs": [t["name"] for t in d["inputs"]], "outputs": [t["name"] for t in d["outputs"]]}}
    for want, mine in zip(interp.get_tensor_details(), d["tensors"], strict=True):
        q = want["quantization_parameters"]
        assert (mine["index"], mine["name"], mine["dtype"]) == \
            (want["index"], want["name"], np.dtype(want["dtype"]).name)
        assert mine["shape"] == [None if s < 0 else int(s) for s in want["shape_signature"]]
        assert mine["quantization"] == {"scale": q["scales"].tolist(),
                                        "zero_point": q["zero_points"].tolist()}
    assert {t["name"]: t["quantization"]["zero_point"] for t in d["inputs"]} == \
        {"left": [1], "right": [-2]}
    assert [n["op"] for n in d["nodes"]] == ["ADD"] and d["flex_ops"] == []
    runner = interp.get_signature_runner("serving_default")
    out = runner(**{t["name"]: np.array([[1, 2, 3, 4]], np.int8) for t in d["inputs"]})
    assert list(out) == [t["name"] for t in d["outputs"]]


def test_flex_ops_are_flagged_without_tensorflow(files):
    d = inspect_json(files["flex"])
    assert d["flex_ops"] == ["FlexAddV2"] and [n["op"] for n in d["nodes"]] == ["FlexAddV2"]
    rc, text, attempts = run_blocked("inspect", str(files["flex"]))
    assert rc == 0 and attempts == []
    assert "Flex ops (need the Flex delegate): FlexAddV2" in text


@pytest.mark.parametrize("kind", ["h5", "keras"])
def test_keras_files_inspect_without_tensorflow(files, kind):
    d = inspect_json(files[kind])
    assert d["format"] == kind
    assert [(t["name"], t["shape"], t["dtype"]) for t in d["inputs"]] == \
        [("feat", [None, 4], "float32"), ("aux", [None, 4], "int32")]
    assert [t["name"] for t in d["outputs"]] == ["out", "out_1"]  # made unique, as convert does
    assert [(n["name"], n["op"], n["inputs"]) for n in d["nodes"]] == [
        ("feat", "InputLayer", []), ("aux", "InputLayer", []),
        ("blend", "MyBlend", ["feat", "aux"]), ("out", "Dense", ["blend"])]
    assert [c["class"] for c in d["custom_classes"]] == ["MyBlend"]
    assert d["keras_version"] == ("2.4.0" if kind == "h5" else "3.1.0")
