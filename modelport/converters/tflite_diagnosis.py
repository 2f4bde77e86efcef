"""What a failed TFLite conversion means: the TensorFlow ops the converter could not
lower (from its diagnostics), and whether this LiteRT could run Flex ops instead."""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

from modelport.core.quiet import native_stderr_silenced
from modelport.core.text import one_line

__all__ = ["missing_ops", "explain_conversion_error", "flex_delegate_available"]

log = logging.getLogger(__name__)

_NEEDS = ("ERROR_NEEDS_FLEX_OPS", "ERROR_NEEDS_CUSTOM_OPS")


def missing_ops(e: BaseException) -> list[str]:
    """The TensorFlow ops the converter could not lower, from its structured diagnostics
    (``e.errors``) or, failing those, its text."""
    found: list[str] = []
    for err in getattr(e, "errors", None) or []:
        try:
            code = type(err).ErrorCode.Name(err.error_code)
            name = err.operator.name
        except (AttributeError, ValueError):
            continue
        if code in _NEEDS and name:
            found.append(name)
    text = str(e)
    for line in re.findall(r"^(?:TF Select|Custom) ops: (.+)$", text, flags=re.M):
        found += [n.strip() for n in line.split(",")]
    found += re.findall(r"'(tf\.\w+)' op is neither a custom op nor a flex op", text)
    names = [n[3:] if n.startswith("tf.") else n for n in found]
    return sorted(set(n for n in names if n))


def explain_conversion_error(e: BaseException, flex: bool, hint: bool = True) -> str:
    """One line for a failed conversion: the ops it could not lower and what to do
    (``hint``: suggest ``--allow-flex``), or the converter's own last error line."""
    missing = missing_ops(e)
    if not missing:
        if "Lowering tensor list ops is failed" in str(e):
            return ("its TensorList ops (a recurrent or other loop) lower to builtins only "
                    "with a fixed batch size")
        return one_line(e, with_type=False)
    ops = ", ".join(missing)
    if flex:
        return f"{ops}: neither a TFLite builtin nor a Flex op"
    if not hint:
        return f"TFLite builtins cannot express {ops}"
    where = ("" if flex_delegate_available() else
             "; the LiteRT Python package here has no Flex delegate, so such an artifact "
             "cannot be run or checked here")
    return (f"TFLite builtins cannot express {ops}; retry with --allow-flex (the artifact "
            f"then needs the Flex delegate at run time{where})")


@functools.lru_cache(maxsize=1)
def flex_delegate_available() -> bool:
    """Whether this LiteRT runs Flex ops: a one-op Flex model (MaxPool3D) is converted and
    opened once per process."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    @tf.function(input_signature=[tf.TensorSpec([1, 1, 1, 1, 1], tf.float32)])
    def pool(x: Any) -> Any:
        return tf.nn.max_pool3d(x, 1, 1, "VALID")

    try:
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [pool.get_concrete_function()], pool)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                               tf.lite.OpsSet.SELECT_TF_OPS]
        with native_stderr_silenced():
            Interpreter(model_content=converter.convert()).allocate_tensors()
        return True
    except Exception:  # conversion or loading failed: no Flex here
        log.debug("Flex probe failed", exc_info=True)
        return False
