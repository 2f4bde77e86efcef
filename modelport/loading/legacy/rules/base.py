"""The rule registry: one small named function per known change in the Keras config format.

A rule says *when* it applies (from the file's Keras version and backend, never from its
name) and *what* it touches (layer class names, or the whole model). The ``@rule``
decorator only attaches that description to the function; ``rules/__init__.py`` lists the
rules explicitly, because order matters where one rule's output is the next one's input
(class renames before argument renames).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

__all__ = ["Context", "Rule", "rule", "rename_keys", "keras1", "pre_keras3", "theano",
           "multi_backend_keras2"]


@dataclass
class Context:
    """What a rule may know about the file besides the config it rewrites."""

    keras_version: str
    backend: str
    major: int
    root: dict[str, Any] = field(default_factory=dict)  # the whole (partly upgraded) config


Fix = Callable[[dict[str, Any], Context], bool]


@dataclass(frozen=True)
class Rule:
    name: str
    summary: str  # what changed and when; shown by ``inspect`` and in load warnings
    applies: Callable[[Context], bool]
    fix: Fix  # returns True when it changed something
    classes: frozenset[str] = frozenset()  # layer classes it looks at; empty: every layer
    model: bool = False  # True: ``fix`` receives the root config once, not each layer


def rule(name: str, summary: str, *, when: Callable[[Context], bool],
         classes: Iterable[str] | None = None, model: bool = False) -> Callable[[Fix], Fix]:
    """Describe ``fn`` as an upgrade rule (available as ``fn.rule``)."""

    def describe(fn: Fix) -> Fix:
        described = Rule(name, summary, when, fn, frozenset(classes or ()), model)
        fn.rule = described  # type: ignore[attr-defined]
        return fn

    return describe


# ---------------------------------------------------------------- era gates


def keras1(ctx: Context) -> bool:
    return ctx.major <= 1


def pre_keras3(ctx: Context) -> bool:
    return ctx.major <= 2


def theano(ctx: Context) -> bool:
    return ctx.backend == "theano"


def multi_backend_keras2(ctx: Context) -> bool:
    """Keras 2.0-2.3 (the multi-backend ``keras`` package), not tf.keras (``2.x-tf``,
    2.4+ which is tf.keras only)."""
    parts = ctx.keras_version.split(".")
    return ctx.major == 2 and not ctx.keras_version.endswith("-tf") and len(parts) > 1 \
        and parts[1].isdigit() and int(parts[1]) <= 3


# ---------------------------------------------------------------- helpers


def rename_keys(cfg: dict[str, Any], pairs: Iterable[tuple[str, str]]) -> bool:
    """Rename ``old -> new`` keys; a Keras 2 key already present wins over the old one."""
    changed = False
    for old, new in pairs:
        if old in cfg:
            value = cfg.pop(old)
            cfg.setdefault(new, value)
            changed = True
    return changed
