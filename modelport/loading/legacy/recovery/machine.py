"""The symbolic stack the bytecode is read onto: placeholders, not values."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from modelport.loading.legacy.recovery import vetted
from modelport.loading.legacy.recovery.nodes import Arg, BinOp, Call, Const, Node

__all__ = ["Refused", "Undecodable", "Machine", "Module", "Func", "NULL", "literal"]


class Refused(Exception):
    """The bytecode does something outside the vetted subset."""


class Undecodable(Refused):
    """The bytes are not an instruction stream of the Python version tried."""


@dataclass(frozen=True)
class Module:
    path: str


@dataclass(frozen=True)
class Func:
    name: str


NULL = object()  # what Python >= 3.11 pushes next to a callable that has no ``self``
_LITERALS = (int, float, bool, str, type(None), type(Ellipsis))


def literal(value: Any, what: str) -> Const:
    """``value`` as a constant node if it is a plain literal (short strings only)."""

    def ok(v: Any) -> bool:
        if isinstance(v, (tuple, list)):
            return all(ok(i) for i in v)
        return isinstance(v, _LITERALS) and not (isinstance(v, str) and len(v) > 64)

    if not ok(value):
        raise Refused(f"{what} is a {type(value).__name__}, not a number, string or tuple")
    return Const(tuple(value) if isinstance(value, list) else value)


class Machine:
    def __init__(self, params: list[str], closure: dict[str, Any], version: str) -> None:
        self.stack: list[Any] = []
        self.locals: dict[str, Any] = {}
        self.params = params
        self.closure = closure
        self.version = version
        self.kwnames: tuple[str, ...] = ()

    @property
    def py2(self) -> bool:
        return self.version.startswith("2.")

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split("."))

    def pop(self, n: int = 1) -> list[Any]:
        if n > len(self.stack):
            raise Undecodable("stack underflow: not a straight-line expression")
        items = self.stack[len(self.stack) - n:] if n else []
        del self.stack[len(self.stack) - n:]
        return items

    def value(self, item: Any, what: str = "operand") -> Node:
        if isinstance(item, Node):
            return item
        name = getattr(item, "path", None) or getattr(item, "name", None) or "a placeholder"
        raise Refused(f"{name} is used as a value ({what}); only calls of it are vetted")

    def resolve(self, path: str) -> Any:
        name = vetted.canonical(path)
        if name in vetted.NAMESPACES:
            return Module(name)
        if name in vetted.FUNCTIONS:
            return Func(name)
        if name in vetted.CONSTANTS:
            return Const(vetted.CONSTANTS[name])
        raise Refused(f"{path} is not in the vetted subset")

    def load_global(self, name: str) -> Any:
        if self.py2 and name in ("True", "False", "None"):
            return Const({"True": True, "False": False, "None": None}[name])
        if name in vetted.GLOBAL_ALIASES:
            return Module(vetted.GLOBAL_ALIASES[name])
        raise Refused(f"global name {name!r} is not a known module alias (K, tf, keras, ...)")

    def load_attr(self, obj: Any, attr: str) -> Any:
        if isinstance(obj, Module):
            return self.resolve(f"{obj.path}.{attr}")
        raise Refused(f"attribute .{attr} of a computed value is not in the vetted subset")

    def load_fast(self, name: str) -> Any:
        if name in self.locals:
            return self.locals[name]
        if name in self.params:
            return Arg(name)
        raise Undecodable(f"local {name!r} is read before it is assigned")

    def call(self, nargs: int, kwnames: tuple[str, ...], callee_slots: int) -> None:
        args = self.pop(nargs)
        slots = [s for s in self.pop(callee_slots) if s is not NULL]
        if len(slots) != 1 or not isinstance(slots[0], Func):
            what = slots[0] if slots else None
            label = getattr(what, "path", None) or getattr(what, "name", None) or \
                type(what).__name__
            raise Refused(f"call of {label}: only vetted functions may be called")
        npos = len(args) - len(kwnames)
        if npos < 0:
            raise Undecodable("more keyword names than arguments")
        pos = tuple(self.value(a, "argument") for a in args[:npos])
        kws = tuple((k, self.value(v, "argument")) for k, v in zip(kwnames, args[npos:]))
        try:
            inspect.signature(vetted.FUNCTIONS[slots[0].name]).bind(*pos, **dict(kws))
        except TypeError as e:
            raise Refused(f"{slots[0].name}: arguments do not fit its vetted signature "
                          f"({e})") from None
        self.stack.append(Call(slots[0].name, pos, kws))

    def binary(self, op: str) -> None:
        left, right = (self.value(v) for v in self.pop(2))
        if isinstance(left, Const) and isinstance(right, Const):
            raise Refused(f"'{op}' between two constants (Python folds those itself)")
        self.stack.append(BinOp(op, left, right))
