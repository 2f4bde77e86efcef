"""How Keras stored a Lambda's bytecode, and how that storage damaged some of it.

Keras stores ``marshal.dumps(func.__code__)`` next to the function's defaults and closure
(``func_dump``); nothing here unmarshals with CPython or runs anything, it only yields the
byte strings ``xdis`` should try:

- **text**: Keras >= 2.0 writes the bytes as base64; Keras 1 decoded them as
  ``raw_unicode_escape`` text. A Keras 1 string of plain ASCII also "decodes" as lenient
  base64 (into junk), so both readings are tried, strict base64 first.
- **Windows**: on Windows (``os.name == "nt"``) Keras 2, tf.keras and Keras 3 replace every
  byte 0x5C (``\\``) of the marshalled code by 0x2F (``/``) before encoding it
  (``func_dump``: ``marshal.dumps(...).replace(b"\\\\", b"/")``), and no loader undoes it.
  The opcode UNPACK_SEQUENCE (92 = 0x5C, the ``x, y = vects`` of every siamese distance)
  becomes the undefined opcode 47 ("invalid opcode <47>"); a length or reference of 92 in
  the marshal data makes it unreadable for every Python version. Such data has no 0x5C
  byte left; each 0x2F may have been either, so the restorations are tried, and a reading
  is only used when every reading that makes sense computes the same thing.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from typing import Any, Iterator

__all__ = ["encodings", "may_be_windows", "marshal_restorations", "code_restorations"]

SLASH, BACKSLASH = 0x2F, 0x5C
_BASE64 = re.compile(rb"[A-Za-z0-9+/=\s]*")
_MAX_VARIANTS = 256  # readings tried per Lambda; beyond that the data is not a small Lambda


def encodings(code: Any) -> list[bytes]:
    """The byte strings a stored ``code`` field may stand for, most likely first."""
    if isinstance(code, bytes):
        return [code]
    if not isinstance(code, str):
        return []
    found: list[bytes] = []
    try:
        text = code.encode("ascii")
    except UnicodeEncodeError:
        text = None
    if text is not None and _BASE64.fullmatch(text):
        try:
            found.append(base64.b64decode(b"".join(text.split()), validate=True))
        except (binascii.Error, ValueError):
            pass
    try:  # Keras 1: the marshal bytes as raw_unicode_escape text
        raw = code.encode("raw_unicode_escape")
    except UnicodeEncodeError:
        raw = None
    if raw is not None and raw not in found:
        found.append(raw)
    return found


def may_be_windows(raw: bytes, filename: Any = None) -> bool:
    """Whether ``raw`` may have gone through Windows' ``\\`` -> ``/`` replacement: it has
    a ``/`` and no ``\\`` left, and its file name is not a POSIX path."""
    if BACKSLASH in raw or SLASH not in raw:
        return False
    return not (isinstance(filename, str) and re.match(r"/[^/]", filename))


def _subsets(positions: list[int]) -> Iterator[tuple[int, ...]]:
    """Subsets of ``positions``, smallest first, at most ``_MAX_VARIANTS`` of them."""
    count = 0
    for size in range(len(positions) + 1):
        for subset in itertools.combinations(positions, size):
            yield subset
            count += 1
            if count >= _MAX_VARIANTS:
                return


def _with(raw: bytes, positions: tuple[int, ...], value: int) -> bytes:
    out = bytearray(raw)
    for p in positions:
        out[p] = value
    return bytes(out)


def marshal_restorations(raw: bytes) -> Iterator[bytes]:
    """``raw`` with its 0x2F bytes restored to 0x5C: all of them (a Windows path's
    separators were all backslashes), then one, two, ... of them."""
    slashes = [i for i, b in enumerate(raw) if b == SLASH]
    yield _with(raw, tuple(slashes), BACKSLASH)
    for subset in _subsets(slashes):
        if subset and len(subset) < len(slashes):
            yield _with(raw, subset, BACKSLASH)


def code_restorations(co_code: bytes) -> list[bytes]:
    """Every instruction stream ``co_code`` may have been: each 0x2F or 0x5C byte (after
    a marshal restoration) either way, the bytes as read first."""
    ambiguous = [i for i, b in enumerate(co_code) if b in (SLASH, BACKSLASH)]
    variants = []
    for subset in _subsets(ambiguous):
        variant = bytearray(co_code)
        for p in ambiguous:
            variant[p] = BACKSLASH if (p in subset) != (co_code[p] == BACKSLASH) else SLASH
        variants.append(bytes(variant))
    return variants
