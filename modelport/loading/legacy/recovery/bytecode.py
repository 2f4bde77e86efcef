"""Decode a code object's instructions for a given Python version, without running it.

Marshal formats are shared by families of Python versions (3.0-3.7, 3.8-3.10,
3.11-3.13), so the version that parsed the code object is only a family: the
instructions are decoded once per member and the interpreter keeps the readings that
make sense. ``xdis`` does the decoding; we only normalise what changed between
versions (call conventions, cache entries, packed arguments).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any

__all__ = ["Ins", "candidate_versions", "decode"]

# pure bookkeeping in some versions: no effect on the values computed
_SKIP = {"CACHE", "RESUME", "NOP", "EXTENDED_ARG", "PRECALL", "COPY_FREE_VARS",
         "SETUP_ANNOTATIONS", "NOT_TAKEN"}


@dataclass(frozen=True)
class Ins:
    op: str
    arg: int | None
    argval: Any
    argrepr: str = ""


def candidate_versions(python: str) -> list[str]:
    """Versions whose instruction set may have produced a code object parsed as ``python``
    (newest first)."""
    try:
        major, minor = (int(p) for p in python.split(".")[:2])
    except ValueError:
        return []
    if major == 2:
        return ["2.7", "2.6"]
    if minor <= 7:
        return ["3.7", "3.6", "3.5", "3.4"]
    if minor <= 10:
        return ["3.10", "3.9", "3.8"]
    if minor <= 13:
        return ["3.13", "3.12", "3.11"]
    return [python]


def _opcode_module(version: str) -> Any:
    from xdis.op_imports import get_opcode_module
    from xdis.version_info import PythonImplementation

    return get_opcode_module(tuple(int(p) for p in version.split(".")),
                             PythonImplementation.CPython)


def decode(code: Any, version: str) -> list[Ins]:
    """The instructions of ``code`` read as Python ``version``; raises ``ValueError`` when
    the bytes are not a valid instruction stream for that version."""
    from xdis.bytecode import get_instructions_bytes

    opc = _opcode_module(version)
    out = []
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for ins in get_instructions_bytes(code, opc):
                op = str(ins.opname)
                if op.startswith("<") or op not in opc.opmap:
                    raise ValueError(f"invalid opcode {op} for Python {version}")
                if op in _SKIP:
                    continue
                out.append(Ins(op, ins.arg, ins.argval, str(ins.argrepr or "")))
    except (IndexError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not Python {version} bytecode ({type(e).__name__})") from None
    return out
