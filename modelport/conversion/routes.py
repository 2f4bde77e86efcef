"""Routes to an artifact: each candidate is written in a hidden staging directory inside
the output directory (``.NAME.partial-XXXX``, removed by ``clean_partials`` after a kill),
checked there, and only then moved to its final name with its companion files. A format
whose every candidate differs from the Keras model leaves nothing under its final name: the
last candidate is kept aside as ``<stem>.unverified<suffix>`` for debugging.

A quantized variant (``mode``) is produced the same way from the format's
``quantized_routes``, under ``<stem>.<mode><suffix>`` (aside: ``<stem>.<mode>.unverified<suffix>``),
and checked against its mode's accuracy tier instead of the float rule."""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from modelport import converters
from modelport.converters.base import FormatModule, Route
from modelport.conversion.helper import Helper, HelperLost, Pending
from modelport.core.atomic import publish, remove, sha256_of, size_of, staging_dir
from modelport.core.errors import ModelportError
from modelport.core.records import ArtifactRecord, ConvertOptions
from modelport.core.text import one_line

if TYPE_CHECKING:  # pragma: no cover
    from modelport.conversion.check import QuickCheck
    from modelport.loading.serving import Serving
    from modelport.loading.source import SourceModel

__all__ = ["produce", "hand_over", "Started", "UNVERIFIED"]

log = logging.getLogger(__name__)

UNVERIFIED = ".unverified"


def _attempt(name: str, description: str, outcome: str, reason: str = "",
             seconds: float = 0.0) -> dict:
    """One entry of the manifest's ``routes``: how a route fared and why."""
    return {"name": name, "description": description, "outcome": outcome, "reason": reason,
            "seconds": round(seconds, 3)}


@dataclass
class Started:
    """A format's first route, already converting in the helper process: its routes, the
    staged path its candidate is written at, and the job."""

    routes: list[Route]
    path: Path
    job: Pending
    prepared: float = 0.0  # seconds spent here handing it over (e.g. freezing the graph)

    def write(self, route: Route, dest: Path) -> ArtifactRecord:
        """The job's candidate (``route.write`` here if the helper could not run it)."""
        try:
            value = self.job.result()
        except HelperLost as e:
            log.debug("%s: helper lost (%s); converting here", route.name, e)
            self.job.seconds = 0.0
            return route.write(dest)
        assert route.offload is not None
        return route.offload.finish(dest, value)


def hand_over(module: FormatModule, source: SourceModel, serving: Serving,
          options: ConvertOptions, out: Path, helper: Helper) -> Started | None:
    """Hand the format's first route to ``helper`` when it can run there (``Offload``);
    ``None`` when it cannot (``produce`` then converts as usual)."""
    try:
        routes = module.routes(source, serving, options)
    except Exception:  # produce lists them again and reports it
        return None
    if not routes or routes[0].offload is None:
        return None
    final = converters.artifact_path(out, source.stem, module.NAME)
    path = staging_dir(out, final.name) / final.name
    t0 = time.monotonic()
    try:
        function, args = routes[0].offload.prepare(path)
    except Exception:  # e.g. the frozen graph cannot be made: produce says why
        log.debug("%s: cannot offload", module.NAME, exc_info=True)
        remove(path.parent)
        return None
    return Started(routes, path, helper.submit(function, args), time.monotonic() - t0)


def produce(module: FormatModule, source: SourceModel, serving: Serving,
            options: ConvertOptions, out: Path, checker: QuickCheck | None,
            mode: str | None = None, base: Path | None = None,
            started: Started | None = None) -> ArtifactRecord:
    """Try the format's routes in order; publish the first candidate that converts and
    passes the check (``checker``; ``None`` skips it). Returns the record (``ok=False``
    when no route did). ``mode``: write that quantized variant instead, from ``base``
    (the format's published float32 artifact) where the format quantizes an artifact.
    ``started``: the first route's candidate is the helper's (``hand_over``)."""
    stem = f"{source.stem}.{mode}" if mode else source.stem
    final = converters.artifact_path(out, stem, module.NAME)
    tried: list[dict] = []
    try:
        routes = started.routes if started is not None else \
            module.routes(source, serving, options) if mode is None else \
            module.quantized_routes(source, serving, options, mode, base)
    except Exception as e:  # a format that cannot even list its routes fails alone
        log.debug("%s routes failed", module.NAME, exc_info=True)
        routes = []
        tried.append(_attempt("routes", "listing the routes", "conversion failed",
                              one_line(e, 500, with_type=not isinstance(e, ModelportError))))
    last: tuple[Path, ArtifactRecord, Route] | None = None  # the last failed candidate
    try:
        for i, route in enumerate(routes):
            if started is not None and i == 0:
                path = started.path
                record, attempt = _candidate(module.NAME, route, path, checker,
                                             functools.partial(started.write, route))
                if started.job.seconds:  # converted in the helper: its own time and what
                    # handing it over cost here, not the wait
                    check = (record.check or {}).get("seconds") or 0.0 if record else 0.0
                    attempt.update(seconds=round(started.prepared + started.job.seconds
                                                 + check, 3), process="helper")
            else:
                path = staging_dir(out, final.name) / final.name
                record, attempt = _candidate(module.NAME, route, path, checker)
            tried.append(attempt)
            if record is None:
                continue
            if record.unverified:
                if last is not None:
                    remove(last[0].parent)
                last = (path, record, route)
                continue
            _place(module, path, final, record, out)
            remove(path.parent)
            _discard(module, _aside(out, stem, module), keep=final)
            if mode is None and hasattr(module, "published"):
                module.published(serving, final)  # later formats may convert from it
            record.route, record.routes = route.name, tried
            return record
        return _give_up(module, final, out, stem, tried, last, mode)
    finally:
        if last is not None:
            remove(last[0].parent)


def _candidate(fmt: str, route: Route, path: Path, checker: QuickCheck | None,
               write: Callable[[Path], ArtifactRecord] | None = None,
               ) -> tuple[ArtifactRecord | None, dict]:
    """Write one route's candidate at ``path`` (inside its staging directory; ``write``
    instead of ``route.write``) and check it there; returns its record (``None`` when it
    did not convert; its staging directory is then gone) and the manifest's entry for the
    attempt."""
    t0 = time.monotonic()
    try:
        record = (write or route.write)(path)
        if not path.exists():
            raise RuntimeError("the route wrote nothing")
    except Exception as e:  # any route failing must not stop the next one
        log.debug("%s route %s failed", fmt, route.name, exc_info=True)
        remove(path.parent)
        msg = one_line(e, 500, with_type=not isinstance(e, ModelportError))
        return None, _attempt(route.name, route.description, "conversion failed", msg,
                              time.monotonic() - t0)
    except BaseException:
        remove(path.parent)
        raise
    try:
        record.check = checker.check(fmt, path, record) if checker else \
            {"status": "skipped", "reason": "--no-check"}
    except BaseException:
        remove(path.parent)
        raise
    if record.unverified:
        return record, _attempt(route.name, route.description, "check failed",
                                record.check["summary"], time.monotonic() - t0)
    return record, _attempt(route.name, route.description, "used", "", time.monotonic() - t0)


def _aside(out: Path, stem: str, module: FormatModule) -> Path:
    return out / f"{stem}{UNVERIFIED}{module.SUFFIX}"


def _give_up(module: FormatModule, final: Path, out: Path, stem: str, tried: list[dict],
             last: tuple[Path, ArtifactRecord, Route] | None,
             mode: str | None = None) -> ArtifactRecord:
    """No route gave a good artifact: nothing under the final name (an older artifact
    there is removed too); the last candidate that converted is kept aside."""
    _discard(module, final)
    reasons = _dedupe([(t["name"], t["reason"]) for t in tried])
    if last is None:
        return ArtifactRecord(module.NAME, os.path.relpath(final, out), [], [], ok=False,
                              error=f"every route failed ({reasons})", routes=tried,
                              details={"quantization": {"mode": mode}} if mode else {})
    path, record, route = last
    aside = _aside(out, stem, module)
    _discard(module, aside)
    _place(module, path, aside, record, out)
    record.path = os.path.relpath(final, out)
    record.details["unverified"] = aside.name
    record.ok, record.route, record.routes = False, route.name, tried
    what = f"its {mode} tier" if mode else "the Keras model"
    record.error = f"no route's artifact matched {what} ({reasons}); kept aside as {aside.name}"
    return record


def _dedupe(items: list[tuple[str, str]]) -> str:
    """``"a: why | b: same as a"``: routes failing for the same reason are not repeated."""
    seen: dict[str, str] = {}
    parts = []
    for name, reason in items:
        if reason in seen:
            parts.append(f"{name}: same as {seen[reason]}")
        else:
            seen[reason] = name
            parts.append(f"{name}: {reason}")
    return " | ".join(parts)


def _place(module: FormatModule, staged: Path, dest: Path, record: ArtifactRecord,
           out: Path) -> None:
    """Move a checked candidate and its companion files to ``dest``; companions first, so
    the artifact never names a file that is not there yet. Companions of the artifact it
    replaces that it no longer uses are removed."""
    old = set(module.companions(dest)) if dest.exists() else set()
    new = []
    for c in module.companions(staged):
        publish(c, dest.parent / c.name)
        new.append((dest.parent / c.name).resolve())
    publish(staged, dest)
    for stale in old - set(new):
        remove(stale)
    record.path = os.path.relpath(dest, out)
    record.sha256 = sha256_of(dest)
    record.size = size_of(dest) + sum(size_of(c) for c in new)


def _discard(module: FormatModule, path: Path, keep: Path | None = None) -> None:
    """Remove an artifact and the companions only it uses."""
    if not path.exists():
        return
    shared = set(module.companions(keep)) if keep is not None and keep.exists() else set()
    for c in module.companions(path):
        if c not in shared:
            remove(c)
    remove(path)
