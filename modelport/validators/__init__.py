"""Format-agnostic validation: input generation, comparison, layout checks, report.

``validate`` (in ``validation.py``) runs the Keras model and every artifact on identical
inputs; the other modules each hold one concern: ``inputs``, ``artifacts`` (discovery and
manifests), ``run`` (one artifact in its runtime), ``compare``, ``layout``, ``reference``,
``check`` (one artifact's verdict and diagnosis), ``report`` and ``faults`` (fault
injection for tests).
"""

from __future__ import annotations

from typing import Any

__all__ = ["validate"]


def validate(model: Any, artifacts: Any, **options: Any):
    """See ``modelport.validators.validation.validate``; imported lazily (it pulls in
    TensorFlow)."""
    from modelport.validators.validation import validate as _validate

    return _validate(model, artifacts, **options)
