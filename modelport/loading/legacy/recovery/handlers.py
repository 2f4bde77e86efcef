"""One small handler per instruction, and ``translate``: bytecode -> expression tree.

The instructions are *read*, never run: each handler moves placeholders on the symbolic
stack. Anything without a handler (jumps, loops, stores to globals or attributes, ...)
is outside the vetted subset and refuses the whole Lambda.
"""

from __future__ import annotations

from typing import Any, Callable

from modelport.loading.legacy.recovery import vetted
from modelport.loading.legacy.recovery.bytecode import Ins, decode
from modelport.loading.legacy.recovery.machine import (NULL, Machine, Module, Refused, Undecodable,
                                               literal)
from modelport.loading.legacy.recovery.nodes import (COMPARE, Const, Node, Seq, SliceNode,
                                             Subscript, Unary)

__all__ = ["translate", "HANDLERS"]

OLD_BINARY = {"ADD": "+", "SUBTRACT": "-", "MULTIPLY": "*", "TRUE_DIVIDE": "/",
              "FLOOR_DIVIDE": "//", "MODULO": "%", "POWER": "**", "MATRIX_MULTIPLY": "@",
              "DIVIDE": "py2/"}
_BINARY_OP_ARG = {0: "+", 2: "//", 4: "@", 5: "*", 6: "%", 8: "**", 10: "-", 11: "/"}

Handler = Callable[[Machine, Ins], Any]


def _name(ins: Ins) -> str:
    value = ins.argval
    if isinstance(value, str):
        return value.replace("NULL + ", "").replace("NULL|self + ", "").strip()
    raise Refused(f"{ins.op} with an unreadable name argument")


def _flag(m: Machine, ins: Ins, since: tuple[int, int]) -> bool:
    """Python >= ``since`` packs "also push NULL" into the argument's low bit."""
    return m.version_tuple >= since and bool(int(ins.arg or 0) & 1)


def _load_global(m: Machine, ins: Ins) -> None:
    value = m.load_global(_name(ins))
    m.stack += [NULL, value] if _flag(m, ins, (3, 11)) else [value]


def _load_attr(m: Machine, ins: Ins) -> None:
    obj, = m.pop()
    value = m.load_attr(obj, _name(ins))
    m.stack += [NULL, value] if _flag(m, ins, (3, 12)) else [value]


def _load_method(m: Machine, ins: Ins) -> None:
    obj, = m.pop()
    m.stack += [NULL, m.load_attr(obj, _name(ins))]


def _load_fast(m: Machine, ins: Ins) -> None:
    names = ins.argval if isinstance(ins.argval, tuple) else (ins.argval,)
    for name in names:
        if not isinstance(name, str):
            raise Refused(f"{ins.op} with an unreadable local name")
        m.stack.append(m.load_fast(name))


def _store_fast(m: Machine, ins: Ins) -> None:
    """STORE_FAST, and 3.13's STORE_FAST_STORE_FAST / STORE_FAST_LOAD_FAST pairs."""
    names = ins.argval if isinstance(ins.argval, tuple) else (ins.argval,)
    if not all(isinstance(n, str) for n in names):
        raise Refused(f"{ins.op} with an unreadable local name")
    stores = names[:1] if ins.op == "STORE_FAST_LOAD_FAST" else names
    for name in stores:
        value = m.pop()[0]
        if value is NULL:
            raise Undecodable("assignment of a call placeholder")
        m.locals[name] = value  # a tensor expression, or a module imported into a local
    if ins.op == "STORE_FAST_LOAD_FAST":
        m.stack.append(m.load_fast(names[1]))


def _unpack(m: Machine, ins: Ins) -> None:
    """``x, y = inputs``: item i of the value, first item on top."""
    value = m.value(m.pop()[0], "unpacked value")
    n = int(ins.arg or 0)
    if isinstance(value, Seq):
        if len(value.items) != n:
            raise Undecodable("unpacking a tuple of another length")
        items = list(value.items)
    else:
        items = [Subscript(value, Const(i)) for i in range(n)]
    m.stack += reversed(items)


def _load_deref(m: Machine, ins: Ins) -> None:
    name = _name(ins)
    if name not in m.closure:
        raise Refused(f"closure variable {name!r} has no stored value")
    m.stack.append(literal(m.closure[name], f"closure variable {name!r}"))


def _load_const(m: Machine, ins: Ins) -> None:
    m.stack.append(literal(ins.argval, "a constant"))


def _binary_old(m: Machine, ins: Ins) -> None:
    m.binary(OLD_BINARY[ins.op.split("_", 1)[1]])


def _binary_op(m: Machine, ins: Ins) -> None:
    arg = int(ins.arg or 0)
    op = _BINARY_OP_ARG.get(arg - 13 if arg >= 13 else arg)
    if op is None:
        raise Refused(f"bitwise operator ({ins.argrepr or arg}) is not in the vetted subset")
    m.binary(op)


def _compare(m: Machine, ins: Ins) -> None:
    op = str(ins.argval if isinstance(ins.argval, str) else ins.argrepr)
    op = op.replace("bool(", "").rstrip(")")
    if op not in COMPARE:
        raise Refused(f"comparison {op!r} is not in the vetted subset")
    m.binary(op)


def _unary(m: Machine, ins: Ins) -> None:
    value, = m.pop()
    m.stack.append(Unary("-" if ins.op == "UNARY_NEGATIVE" else "+", m.value(value)))


def _subscript(m: Machine, ins: Ins) -> None:
    value, index = m.pop(2)
    m.stack.append(Subscript(m.value(value), m.value(index, "index")))


def _binary_slice(m: Machine, ins: Ins) -> None:
    value, start, stop = m.pop(3)
    m.stack.append(Subscript(m.value(value), SliceNode(m.value(start), m.value(stop), Const(None))))


def _py2_slice(m: Machine, ins: Ins) -> None:
    """SLICE+0: x[:], SLICE+1: x[a:], SLICE+2: x[:b], SLICE+3: x[a:b]."""
    kind = int(ins.op[-1])
    items = [m.value(v) for v in m.pop({0: 1, 1: 2, 2: 2, 3: 3}[kind])]
    start = items[1] if kind in (1, 3) else Const(None)
    stop = items[-1] if kind in (2, 3) else Const(None)
    m.stack.append(Subscript(items[0], SliceNode(start, stop, Const(None))))


def _build(m: Machine, ins: Ins) -> None:
    items = tuple(m.value(v) for v in m.pop(int(ins.arg or 0)))
    if ins.op == "BUILD_SLICE":
        m.stack.append(SliceNode(items[0], items[1], items[2] if len(items) > 2 else Const(None)))
    else:
        m.stack.append(Seq("list" if ins.op == "BUILD_LIST" else "tuple", items))


def _list_extend(m: Machine, ins: Ins) -> None:
    target, extra = m.pop(2)
    if not (isinstance(target, Seq) and isinstance(extra, Const)
            and isinstance(extra.value, tuple)):
        raise Refused("list unpacking of a computed value is not in the vetted subset")
    m.stack.append(Seq(target.kind, target.items + tuple(Const(v) for v in extra.value)))


def _stack_op(m: Machine, ins: Ins) -> None:
    s = m.stack
    if ins.op == "POP_TOP":
        m.pop()
    elif ins.op == "DUP_TOP":
        s.append(s[-1] if s else m.pop())
    elif ins.op == "ROT_TWO" or (ins.op == "SWAP" and ins.arg == 2):
        a, b = m.pop(2)
        s += [b, a]
    elif ins.op == "ROT_THREE":
        a, b, c = m.pop(3)
        s += [c, a, b]
    elif ins.op == "COPY":
        n = int(ins.arg or 1)
        s.append(s[-n] if 0 < n <= len(s) else m.pop(n)[0])
    elif ins.op == "PUSHNULL":
        s.append(NULL)
    else:
        raise Refused(f"{ins.op} is not in the vetted subset")


def _import_name(m: Machine, ins: Ins) -> None:
    _level, fromlist = m.pop(2)
    name = _name(ins)
    top = name.split(".")[0]
    if top not in ("tensorflow", "keras", "tf_keras", "numpy", "math"):
        raise Refused(f"imports {name}, which is not a numeric library")
    has_from = isinstance(fromlist, Const) and fromlist.value not in (None, ())
    m.stack.append(Module(vetted.canonical(name if has_from else top)))


def _import_from(m: Machine, ins: Ins) -> None:
    m.stack.append(m.load_attr(m.stack[-1] if m.stack else m.pop()[0], _name(ins)))


def _call_old(m: Machine, ins: Ins) -> None:
    """Python <= 3.5: arg = positional count | keyword pairs << 8."""
    arg = int(ins.arg or 0)
    npos, nkw = arg & 0xFF, (arg >> 8) & 0xFF
    pairs = m.pop(2 * nkw)
    names = []
    for key in pairs[0::2]:
        if not (isinstance(key, Const) and isinstance(key.value, str)):
            raise Refused("keyword name is not a constant")
        names.append(key.value)
    args = m.pop(npos)
    m.stack += args + pairs[1::2]
    m.call(npos + nkw, tuple(names), 1)


def _call(m: Machine, ins: Ins) -> None:
    n = int(ins.arg or 0)
    if ins.op in ("CALL_FUNCTION_KW", "CALL_KW"):
        names = m.value(m.pop()[0], "keyword names")
        if not (isinstance(names, Const) and isinstance(names.value, tuple)):
            raise Refused("keyword names are not a constant tuple")
        kwnames = names.value
    else:
        kwnames, m.kwnames = m.kwnames, ()
    slots = 2 if ins.op in ("CALL", "CALL_KW", "CALL_METHOD") else 1
    m.call(n, tuple(kwnames), slots)


def _kw_names(m: Machine, ins: Ins) -> None:
    if not isinstance(ins.argval, tuple):
        raise Refused("KW_NAMES without a constant tuple")
    m.kwnames = ins.argval


HANDLERS: dict[str, Handler] = {
    "LOAD_GLOBAL": _load_global, "LOAD_NAME": _load_global, "LOAD_ATTR": _load_attr,
    "LOAD_METHOD": _load_method, "LOAD_FAST": _load_fast, "LOAD_FAST_CHECK": _load_fast,
    "LOAD_FAST_LOAD_FAST": _load_fast, "STORE_FAST": _store_fast,
    "STORE_FAST_STORE_FAST": _store_fast, "STORE_FAST_LOAD_FAST": _store_fast,
    "UNPACK_SEQUENCE": _unpack, "LOAD_DEREF": _load_deref,
    "LOAD_CLASSDEREF": _load_deref, "LOAD_CONST": _load_const,
    **{f"BINARY_{k}": _binary_old for k in OLD_BINARY},
    **{f"INPLACE_{k}": _binary_old for k in OLD_BINARY},
    "BINARY_OP": _binary_op, "COMPARE_OP": _compare, "UNARY_NEGATIVE": _unary,
    "UNARY_POSITIVE": _unary, "BINARY_SUBSCR": _subscript, "BINARY_SLICE": _binary_slice,
    **{f"SLICE+{k}": _py2_slice for k in range(4)},
    "BUILD_TUPLE": _build, "BUILD_LIST": _build, "BUILD_SLICE": _build,
    "LIST_EXTEND": _list_extend,
    **{k: _stack_op for k in ("POP_TOP", "DUP_TOP", "ROT_TWO", "ROT_THREE", "COPY", "SWAP",
                              "PUSHNULL")},
    "IMPORT_NAME": _import_name, "IMPORT_FROM": _import_from,
    "CALL_FUNCTION": _call, "CALL_FUNCTION_KW": _call, "CALL_METHOD": _call, "CALL": _call,
    "CALL_KW": _call, "KW_NAMES": _kw_names,
}


def _handler(op: str, version: str) -> Handler:
    if op == "CALL_FUNCTION" and version in ("2.6", "2.7", "3.4", "3.5"):
        return _call_old
    handler = HANDLERS.get(op)
    if handler is None:
        raise Refused(f"{op} is not in the vetted subset (straight-line arithmetic and "
                      "calls only)")
    return handler


def _return(m: Machine, ins: Ins) -> Node:
    value = literal(ins.argval, "the result") if ins.op == "RETURN_CONST" else \
        m.value(m.pop()[0], "return value")
    if m.stack:
        raise Undecodable("values left on the stack at return")
    if isinstance(value, Const):
        raise Refused("the function returns a constant, not a tensor")
    return value


def translate(code: Any, version: str, closure: dict[str, Any]) -> tuple[Node, list[str]]:
    """The expression ``code`` computes, read as Python ``version`` bytecode.

    Returns:
        ``(tree, parameter names)``; the first parameter receives the Lambda's input.

    Raises:
        Refused: outside the vetted subset (``Undecodable``: not this version's bytecode).
    """
    if int(getattr(code, "co_flags", 0)) & 0x0C or getattr(code, "co_kwonlyargcount", 0):
        raise Refused("*args, **kwargs and keyword-only parameters are not in the vetted subset")
    params = [str(p) for p in code.co_varnames[:code.co_argcount]]
    if not params:
        raise Refused("the function takes no input")
    try:
        instructions = decode(code, version)
    except ValueError as e:
        raise Undecodable(str(e)) from None
    m = Machine(params, closure, version)
    for ins in instructions:
        if ins.op in ("RETURN_VALUE", "RETURN_CONST"):
            return _return(m, ins), params
        _handler(ins.op, version)(m, ins)
    raise Undecodable("no return instruction")
