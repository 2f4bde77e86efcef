"""Reading a TFLite flatbuffer without TensorFlow: signatures, tensors, op names,
variable (stateful) tensors. ``tflite.describe`` is built on it; so are the converter's
checks of what it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelport.core.errors import ModelFileError
from modelport.core.records import Description, NodeInfo, TensorInfo
from modelport.core.text import to_text

__all__ = ["read_model", "op_names", "variable_tensors", "describe", "with_signature"]


def read_model(data: bytes) -> Any:
    """The flatbuffer as the schema's object tree.

    Raises:
        ModelFileError: ``data`` is not a TFLite flatbuffer.
    """
    from ai_edge_litert import schema_py_generated as schema

    try:
        return schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    except Exception as e:
        raise ModelFileError(f"not a TFLite flatbuffer ({e})") from None


def op_names(model: Any) -> list[str]:
    """Every operator of every subgraph of a ``read_model`` tree, by builtin name (or
    custom code: ``FlexMaxPool3D``)."""
    from ai_edge_litert import schema_py_generated as schema

    codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = []
    for sub in model.subgraphs or []:
        for op in sub.operators or []:
            oc = model.operatorCodes[op.opcodeIndex]
            code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
            if code == schema.BuiltinOperator.CUSTOM:
                names.append(to_text(oc.customCode))
            else:
                names.append(codes.get(code, str(code)))
    return names


_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
           6: "bool", 7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128",
           12: "uint64", 13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4",
           18: "bfloat16", 19: "int2", 20: "uint4", 21: "float8_e4m3fn", 22: "float8_e5m2"}


def describe(path: str | Path, fmt: str, nodes: bool = True) -> Description:
    """Signatures, every tensor (shape, dtype, quantization) and the op list, as format
    ``fmt``; no TensorFlow."""
    data = Path(path).read_bytes()
    try:
        model = read_model(data)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}; pass a .tflite file written by a TFLite "
                             "converter") from None
    subgraphs = model.subgraphs or []
    main = subgraphs[0] if subgraphs else None

    name = to_text

    def tensor_info(sub: Any, idx: int, key: str | None = None) -> TensorInfo:
        t = sub.tensors[idx]
        sig = [int(d) for d in t.shapeSignature] if t.shapeSignature is not None else []
        plain = [int(d) for d in t.shape] if t.shape is not None else []
        shape = [None if d < 0 else d for d in (sig or plain)]
        extra: dict[str, Any] = {"tensor": name(t.name), "index": idx}
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale) and q.zeroPoint is not None:
            extra["quantization"] = {"scale": [float(s) for s in q.scale],
                                     "zero_point": [int(z) for z in q.zeroPoint]}
        return TensorInfo(key or name(t.name), shape, _DTYPES.get(t.type, str(t.type)), extra)

    sigs = {}
    inputs: list[TensorInfo] = []
    outputs: list[TensorInfo] = []
    for sd in model.signatureDefs or []:
        sub = subgraphs[sd.subgraphIndex]
        ins = [tensor_info(sub, m.tensorIndex, name(m.name)) for m in sd.inputs or []]
        outs = [tensor_info(sub, m.tensorIndex, name(m.name)) for m in sd.outputs or []]
        key = name(sd.signatureKey)
        sigs[key] = {"inputs": [t.to_dict() for t in ins], "outputs": [t.to_dict() for t in outs]}
        if not inputs or key == "serving_default":
            inputs, outputs = ins, outs
    if not sigs and main is not None:
        inputs = [tensor_info(main, i) for i in main.inputs]
        outputs = [tensor_info(main, i) for i in main.outputs]
    ops = op_names(model)
    node_list = []
    tensors = []
    if main is not None:
        for i, op in enumerate(main.operators or []):
            outs = [name(main.tensors[j].name) for j in op.outputs if j >= 0]
            ins = [name(main.tensors[j].name) for j in op.inputs if j >= 0]
            node_list.append(NodeInfo(outs[0] if outs else f"op_{i}", ops[i], ins))
        tensors = [tensor_info(main, i).to_dict() for i in range(len(main.tensors or []))]
    flex = sorted({o for o in ops if o.startswith("Flex")})
    return Description(fmt, str(path), inputs, outputs, node_list if nodes else [], {
        "signatures": sigs, "tensors": tensors if nodes else [], "flex_ops": flex,
        "subgraphs": len(subgraphs), "version": model.version,
        "variable_tensors": variable_tensors(model),
    })


def variable_tensors(model: Any) -> list[str]:
    """Tensors marked variable: state the interpreter keeps from one invocation to the next
    (the fused LSTM kernel's hidden and cell state)."""
    return [to_text(t.name) for sub in model.subgraphs or [] for t in sub.tensors or []
            if t.isVariable]


def with_signature(data: bytes, inputs: list[str], outputs: list[str],
                   key: str = "serving_default") -> bytes:
    """``data`` with a signature ``key`` whose inputs and outputs are the main subgraph's
    I/O tensors of those names (TensorFlow's graph converter writes none).

    Raises:
        ModelFileError: a named tensor is not an input or output of the main subgraph.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = read_model(data)
    main = model.subgraphs[0]

    def tensor_map(names: list[str], indices: Any, what: str) -> list[Any]:
        by_name = {to_text(main.tensors[i].name).split(":")[0]: i for i in indices}
        maps = []
        for name in names:
            if name not in by_name:
                raise ModelFileError(f"the flatbuffer has no {what} named {name!r} "
                                     f"(it has {sorted(by_name)})")
            entry = schema.TensorMapT()
            entry.name, entry.tensorIndex = name, by_name[name]
            maps.append(entry)
        return maps

    sig = schema.SignatureDefT()
    sig.signatureKey = key
    sig.subgraphIndex = 0
    sig.inputs = tensor_map(inputs, main.inputs, "input")
    sig.outputs = tensor_map(outputs, main.outputs, "output")
    model.signatureDefs = [sig]
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
