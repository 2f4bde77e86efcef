"""A TFLite model's intermediate tensors, read from an interpreter created with
``experimental_preserve_all_tensors=True`` (what ``TFLiteRunner.tensors()`` and
``run_with()`` use): which tensors the ops compute from the inputs, their names as the
graph gives them (made unique with ``#index`` when two share one), and their values with
quantized activations dequantized (``(q - zero_point) * scale``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.core.records import TensorInfo

__all__ = ["TensorTable"]


def _scales(d: dict[str, Any]) -> bool:
    q = d.get("quantization_parameters") or {}
    return len(q.get("scales", [])) == 1 and float(q["scales"][0]) != 0.0


def _dequantized(x: np.ndarray, d: dict[str, Any]) -> np.ndarray:
    if np.asarray(x).dtype.kind not in "iu" or not _scales(d):
        return np.array(x)
    q = d["quantization_parameters"]
    return ((np.asarray(x, np.float64) - int(q["zero_points"][0]))
            * float(q["scales"][0])).astype(np.float32)


class TensorTable:
    """The tensors of one tensor-preserving interpreter."""

    def __init__(self, interp: Any) -> None:
        self.interp = interp
        self.details = {d["index"]: d for d in interp.get_tensor_details()}
        self._counts: dict[str, int] = {}
        for d in self.details.values():
            self._counts[d["name"]] = self._counts.get(d["name"], 0) + 1
        self.index: dict[str, int] = {}
        self.tensors = self._list()

    def name(self, i: int) -> str:
        d = self.details[i]
        return d["name"] if self._counts.get(d["name"], 0) <= 1 else f"{d['name']}#{i}"

    def _list(self) -> list[TensorInfo]:
        """Every float or quantized tensor an op of the main graph writes from an input,
        in execution order."""
        live = {d["index"] for d in self.interp.get_input_details()}
        found = []
        for op in self.interp._get_ops_details():
            if not any(i in live for i in op["inputs"] if i >= 0):
                continue
            ins = [self.name(i) for i in op["inputs"] if i >= 0]
            for i in op["outputs"]:
                live.add(i)
                d = self.details[i]
                kind = np.dtype(d["dtype"]).kind
                if kind not in "fiu" or (kind in "iu" and not _scales(d)):
                    continue  # integer shapes and indices, not activations
                name = self.name(i)
                self.index[name] = int(i)
                extra: dict[str, Any] = {"op": op["op_name"], "inputs": ins,
                                         "order": len(found), "index": int(i)}
                if _scales(d):
                    q = d["quantization_parameters"]
                    extra["quantization"] = {"scale": float(q["scales"][0]),
                                             "zero_point": int(q["zero_points"][0])}
                shape = [int(x) if x >= 0 else None for x in d["shape_signature"]]
                dtype = "float32" if kind in "iu" else str(np.dtype(d["dtype"]))
                found.append(TensorInfo(name, shape, dtype, extra))
        return found

    def io_names(self, key: str) -> tuple[dict[str, str], dict[str, str]]:
        """Signature input and output names -> the graph tensors behind them."""
        runner = self.interp.get_signature_runner(key)
        return ({k: self.name(v["index"]) for k, v in runner.get_input_details().items()},
                {k: self.name(v["index"]) for k, v in runner.get_output_details().items()})

    def values(self, names: list[str]) -> dict[str, np.ndarray]:
        """The named tensors after the last run, dequantized."""
        return {n: _dequantized(self.interp.get_tensor(self.index[n]),
                                self.details[self.index[n]]) for n in names}
