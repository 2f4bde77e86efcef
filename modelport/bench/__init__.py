"""``bench``: what each artifact costs in its own runtime, measured side by side on the
same inputs: size on disk, load time, first inference, latency percentiles, throughput and
peak memory, next to the Keras model when it is given.

Every artifact is measured in its own child process (``worker.py``), so one runtime's
memory and thread pools never mix with another's; each runtime gets the same number of
intra-op threads. The inputs are generated once in the model's domain, as ``validate``
generates them (or the user's ``--inputs``), and each artifact gets them in the layout its
manifest declares.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from modelport import converters
from modelport.bench.report import KERAS, BenchReport, BenchResult
from modelport.core.atomic import size_of
from modelport.core.errors import UserInputError
from modelport.core.manifest import read_manifest, tool_versions
from modelport.core.records import TensorInfo
from modelport.core.text import one_line
from modelport.validators.artifacts import Target, discover, fixed_feed_shapes
from modelport.validators.inputs import generate_inputs, parse_shape_overrides
from modelport.validators.user_inputs import conform_inputs, load_inputs

__all__ = ["bench", "BenchReport", "BenchResult"]

log = logging.getLogger(__name__)

TIMEOUT_S = 900  # per artifact


def bench(
    artifacts: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    model: str | os.PathLike[str] | None = None,
    *,
    threads: int = 1,
    runs: int = 50,
    warmup: int = 5,
    batch: int = 1,
    inputs: Any = None,
    seed: int = 0,
    shapes: Mapping[str, Sequence[int]] | Sequence[str] | None = None,
    custom_objects: str | Sequence[str] | None = None,
    trust_lambda: bool = False,
    timeout: float = TIMEOUT_S,
) -> BenchReport:
    """Measure every artifact (and the Keras ``model``) in its own child process.

    Args:
        artifacts: artifact paths and/or directories (every artifact in them).
        model: the Keras model file, measured too; its input domains shape the inputs.
        threads: intra-op threads given to every runtime (inter-op: 1).
        runs: timed calls per artifact, after ``warmup`` untimed ones.
        batch: samples per call (an artifact exported with a fixed batch gets that one).
        inputs: a ``.npz``/``.npy`` path or arrays by input name, instead of generated ones.
        seed: the generator's seed.
        shapes: concrete shapes for unknown dimensions (as ``validate --shape``).
        custom_objects, trust_lambda: how the Keras model is loaded (file or module names:
            the model is loaded in a child process).
        timeout: seconds each child may take.

    Returns:
        The report (``report.ok`` is False when an artifact could not be run).

    Raises:
        UserInputError: no artifacts, an unknown path, or bad options or inputs.
    """
    for name, value in (("threads", threads), ("runs", runs), ("batch", batch)):
        if int(value) < 1:
            raise UserInputError(f"--{name} must be at least 1, not {value}")
    if warmup < 0:
        raise UserInputError(f"--warmup must be 0 or more, not {warmup}")
    if model is not None and not Path(model).is_file():
        raise UserInputError(f"--model {model}: no such file; give the .h5/.keras file")
    objects = [custom_objects] if isinstance(custom_objects, (str, os.PathLike)) else \
        list(custom_objects or [])
    if any(not isinstance(o, (str, os.PathLike)) for o in objects):
        raise UserInputError("bench: custom_objects must be .py files or module names (the "
                             "Keras model is loaded in a child process)")
    paths = [artifacts] if isinstance(artifacts, (str, os.PathLike)) else list(artifacts)
    if not paths:
        raise UserInputError("no artifacts given; pass artifact files or a directory of them")
    targets, warnings = discover(paths, Path(model).stem if model else None)
    sources = sorted({str(read_manifest(t.manifest).source.get("path"))
                      for t in targets if t.manifest is not None})
    if len(sources) > 1:
        raise UserInputError(f"the artifacts come from {len(sources)} models "
                             f"({', '.join(Path(s).name for s in sources)}); bench one "
                             "model's artifacts at a time (they share the same inputs)")
    specs, layout, source = _specs(targets, model, objects, trust_lambda)
    user = shapes if isinstance(shapes, Mapping) else parse_shape_overrides(list(shapes or []))
    overrides = fixed_feed_shapes(
        specs, layout, [(str(t.path), t.record.inputs, t.record.layout)
                        for t in targets if t.record], {k: list(v) for k, v in user.items()})
    feeds, described = _feeds(specs, layout, source, inputs, batch, seed, overrides)
    report = BenchReport([], threads, runs, warmup, len(next(iter(feeds.values()), [0])),
                         described, tool_versions(), os.getpid(), warnings)
    with tempfile.TemporaryDirectory(prefix="modelport-bench-") as tmp:
        feeds_path = Path(tmp) / "feeds.npz"
        np.savez(feeds_path, **feeds)
        common = {"feeds": str(feeds_path), "threads": threads, "runs": runs,
                  "warmup": warmup, "model_layout": layout}
        jobs: list[tuple[str, str, dict[str, Any], int]] = []
        if model is not None:
            jobs.append((str(model), KERAS, {
                **common, "format": KERAS, "path": str(model), "runtime": "tensorflow",
                "custom_objects": [str(o) for o in objects], "trust_lambda": trust_lambda},
                size_of(Path(model))))
        for t in targets:
            module = converters.get(t.format)
            jobs.append((str(t.path), t.format, {
                **common, "format": t.format, "path": str(t.path), "runtime": module.RUNTIME,
                "declared_layout": dict(t.record.layout) if t.record else {}},
                size_of(t.path) + sum(size_of(c) for c in module.companions(t.path))))
        for i, (path, fmt, spec, size) in enumerate(jobs):
            log.info("benchmarking %s (%s)", path, fmt)
            result = _run_child(spec, Path(tmp) / f"job{i}", timeout)
            report.results.append(BenchResult(path=path, format=fmt, size_bytes=size,
                                              **{"threads": threads, **result}))
    return report


def _specs(targets: list[Target], model: Any, objects: list, trust: bool
           ) -> tuple[list[TensorInfo], dict[str, str], Any]:
    """The inputs to generate, in whose layout: the Keras model's when given, else the
    source's a manifest records, else the first artifact's own."""
    if model is not None:
        from modelport.loading.source import load

        source = load(model, custom_objects=[str(o) for o in objects] or None,
                      trust_lambda=trust)
        return list(source.inputs), dict(source.layout), source
    for t in targets:
        if t.manifest is not None:
            src = read_manifest(t.manifest).source
            if src.get("inputs"):
                return ([TensorInfo.from_dict(d) for d in src["inputs"]],
                        dict(src.get("layout") or {}), None)
    first = targets[0]
    desc = converters.get(first.format).describe(first.path, nodes=False)
    return [TensorInfo(t.name, t.shape, t.dtype) for t in desc.inputs], {}, None


def _feeds(specs: list[TensorInfo], layout: dict[str, str], source: Any, inputs: Any,
           batch: int, seed: int, shapes: dict) -> tuple[dict[str, np.ndarray], dict]:
    if inputs is not None:
        feeds = load_inputs(inputs, specs) if isinstance(inputs, (str, os.PathLike)) \
            else conform_inputs(inputs, specs)
        return feeds, {k: {"shape": list(v.shape), "dtype": str(v.dtype),
                           "distribution": "user-supplied"} for k, v in feeds.items()}
    from modelport.validators.inputs import choose_domains

    domains = None
    vocab = None
    if source is not None:
        from modelport.loading.domain import input_domains

        domains, vocab = input_domains(source.model), dict(source.embedding_vocab)
    chosen = choose_domains(specs, vocab, domains)
    feeds = generate_inputs(specs, batch, seed, None, shapes, layout, chosen)
    return feeds, {k: {"shape": list(v.shape), "dtype": str(v.dtype),
                       "distribution": chosen[k].describe()} for k, v in feeds.items()}


def _run_child(spec: dict[str, Any], stem: Path, timeout: float) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; a crash or hang is that artifact's
    error, not the run's."""
    spec = {**spec, "result": str(stem.with_suffix(".result.json"))}
    spec_path = stem.with_suffix(".spec.json")
    spec_path.write_text(json.dumps(spec))
    n = str(spec["threads"])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": n,
           "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": "1"}
    try:
        proc = subprocess.run([sys.executable, "-m", "modelport.bench.worker", str(spec_path)],
                              capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"did not finish in {timeout:g} s"}
    result_path = Path(spec["result"])
    if proc.returncode != 0 or not result_path.exists():
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        tail = one_line(Exception(proc.stderr.strip().splitlines()[-1]), with_type=False) \
            if proc.stderr.strip() else ""
        return {"ok": False, "error": f"the measuring process died ({how}) {tail}".strip()}
    return json.loads(result_path.read_text())
